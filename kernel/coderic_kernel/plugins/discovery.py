"""Find installed plugins through their entry points and packaging metadata, without
importing any plugin code: what a plugin is and needs is declared once, in its package."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
# The standard library's importlib.metadata, not the importlib_metadata backport: on first
# import the backport replaces the stdlib's distribution finder on sys.meta_path, which
# breaks tools (pytest's pytester) that save and restore that list.
from importlib import metadata
from importlib.metadata import version as installed_version

from coderic_sdk import ENTRY_POINT_GROUP, PluginInfo
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

SDK_DISTRIBUTION = "coderic-sdk"


@dataclass(frozen=True)
class Candidate:
    """An installed plugin: its metadata and how to import it."""

    info: PluginInfo
    entry_point: metadata.EntryPoint | None
    required_distributions: tuple[str, ...] = ()


def discover_installed() -> dict[str, list[Candidate]]:
    """Every installed plugin by name; a name with two candidates is a conflict to report."""
    entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    plugins_by_distribution: dict[str, list[str]] = defaultdict(list)
    for ep in entry_points:
        if ep.dist is not None:
            plugins_by_distribution[canonicalize_name(ep.dist.name)].append(ep.name)

    found: dict[str, list[Candidate]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for ep in entry_points:
        dist = ep.dist
        dist_name = dist.name if dist is not None else "<unknown>"
        if (ep.name, canonicalize_name(dist_name)) in seen:
            continue  # the same distribution seen twice on sys.path
        seen.add((ep.name, canonicalize_name(dist_name)))
        sdk_range, required = _requirements(dist)
        requires = tuple(
            name
            for dist_requirement in required
            for name in plugins_by_distribution.get(dist_requirement, ())
            if name != ep.name
        )
        info = PluginInfo(
            name=ep.name,
            version=dist.version if dist is not None else "0",
            description=(dist.metadata.get("Summary") or "") if dist is not None else "",
            distribution=dist_name,
            requires=requires,
            sdk_range=sdk_range,
        )
        found[ep.name].append(Candidate(info, ep, tuple(required)))
    return dict(found)


def _requirements(dist: metadata.Distribution | None) -> tuple[str, list[str]]:
    """The supported SDK range and the other distributions this one requires."""
    sdk_range = ""
    required: list[str] = []
    for line in (dist.requires or []) if dist is not None else []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an optional extra, not a requirement
        name = canonicalize_name(requirement.name)
        if name == SDK_DISTRIBUTION:
            sdk_range = str(requirement.specifier)
        else:
            required.append(name)
    return sdk_range, required


def sdk_version() -> str:
    return installed_version(SDK_DISTRIBUTION)
