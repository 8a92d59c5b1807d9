"""Opaque cursors for keyset pagination: the last row's sort key and id, base64url JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

from coderic_sdk import FieldError, Problem


def encode(key: Any, row_id: int) -> str:
    raw = json.dumps([key, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[Any, int]:
    try:
        key, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(row_id, int) or isinstance(key, (list, dict)):
            raise ValueError(cursor)
    except (ValueError, TypeError):
        raise Problem(422, "The request query is invalid.",
                      errors=[FieldError("query.cursor", "not a cursor this API gave")]) from None
    return key, row_id
