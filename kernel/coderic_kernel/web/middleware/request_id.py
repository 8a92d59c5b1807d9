"""Every request's id: the caller's ``X-Request-ID`` when well-formed, else a new one.

The id is stored in ``scope["state"]["request_id"]`` and in a context variable for logs;
the request pipeline sends it back as ``X-Request-ID`` on every response, errors included.
"""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar, Token

from starlette.types import Scope

HEADER = b"x-request-id"
WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{8,128}")

_current: ContextVar[str] = ContextVar("coderic_request_id", default="")


def current_request_id() -> str:
    return _current.get()


class RequestIds:
    """Assigns each request its id and makes it current for logs."""

    def __init__(self) -> None:
        # A random prefix per process and a counter: unique across processes and restarts
        # without a system call per request (ids correlate logs; they are not secrets).
        # hex() is the cheapest formatting of the counter; its "0x" separates the two.
        prefix = os.urandom(8).hex()
        counter = itertools.count(1)
        self.new_id = lambda: prefix + hex(next(counter))

    def assign(self, scope: Scope) -> tuple[str, Token[str]]:
        """Store the id in ``scope["state"]`` and the context; reset the token when done."""
        request_id = _incoming(scope) or self.new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        return request_id, _current.set(request_id)

    @staticmethod
    def reset(token: Token[str]) -> None:
        _current.reset(token)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode() if WELL_FORMED.fullmatch(value) else None
    return None
