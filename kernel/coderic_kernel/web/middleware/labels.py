"""Which route template and plugin answered a request, for metrics, logs and error reports."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Scope

UNMATCHED = "<unmatched>"


def route_labels(scope: Scope, owners: Mapping[str, str]) -> tuple[str, str]:
    """``(route template, plugin)``; unmatched paths share one label so series stay bounded."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return UNMATCHED, "kernel"
    return template, owners.get(template, "kernel")
