"""Who is calling: the signed-in user as route handlers see it (``ctx.user``).

The kernel's identity service authenticates every API request that carries credentials: a
session cookie (browsers), a JWT access token or a personal access token (``Authorization:
Bearer``). A route declared with ``Route(..., authenticated=True)`` is answered with 401
before its handler runs when no user is signed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthMethod = Literal["session", "access_token", "personal_token"]

#: Scopes of personal access tokens: ``read`` (GET and HEAD on any route), ``write`` (every
#: method), and the same limited to one plugin's routes: ``<plugin>:read``, ``<plugin>:write``.
#: Personal tokens never reach the routes that manage identity (sign-in, passwords, tokens).
BASE_SCOPES = ("read", "write")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The caller. ``id`` is the user's stable id (the ``sub`` of their tokens).

    ``session_id`` is the sign-in this request belongs to (``None`` for personal tokens).
    ``scopes`` limit what a personal access token may do; sessions and access tokens have
    none and may do whatever the user may.
    """

    id: str
    method: AuthMethod
    session_id: str | None = None
    scopes: tuple[str, ...] = ()

    def allows(self, plugin: str, method: str) -> bool:
        """Whether the credential may call a route of ``plugin`` with HTTP ``method``."""
        if self.method != "personal_token":
            return True
        wanted = "read" if method.upper() in SAFE_METHODS else "write"
        return any(
            scope == "write" or scope == f"{plugin}:write" or (wanted == "read" and scope in {"read", f"{plugin}:read"})
            for scope in self.scopes
        )


def valid_scope(scope: str) -> bool:
    base = scope.rsplit(":", 1)[-1]
    return base in BASE_SCOPES and (":" not in scope or scope.split(":", 1)[0].isidentifier())
