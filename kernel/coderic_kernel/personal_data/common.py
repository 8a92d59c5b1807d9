"""What the kernel's own exports share: rows made JSON-safe."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any


def plain(value: Any) -> Any:
    """``value`` with dates as ISO 8601 strings, recursively."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def rows(found: Iterable[Mapping[str, Any]], *keys: str, rename: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Only ``keys`` of each row (never a hash or a secret by accident), JSON-safe."""
    rename = rename or {}
    return [{rename.get(key, key): plain(row[key]) for key in keys} for row in found]
