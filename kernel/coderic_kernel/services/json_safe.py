"""Values that cross a process boundary (cache, jobs, events) are JSON, never pickle."""

from __future__ import annotations

import json
from typing import Any


def to_json(value: Any, what: str) -> str:
    """``value`` as compact JSON; ``TypeError`` naming ``what`` when it is not JSON-safe."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-safe: {exc}") from exc
