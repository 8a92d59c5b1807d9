"""The identity audit trail: who signed in, failed, changed a credential, reused a token.

Each entry has its UTC time, the client address and user agent, the request id and a small
``detail`` mapping. Secrets never go in: callers pass what happened, never what was typed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import HTTPConnection

from .tables import AuthEvent

logger = logging.getLogger("coderic.auth.audit")
#: Keys that never go into ``detail``, whoever passes them.
FORBIDDEN = frozenset({"password", "token", "code", "secret", "refresh_token", "access_token", "recovery_code"})


def client_of(connection: HTTPConnection) -> tuple[str, str]:
    """The client's address (as the trusted-proxy rules leave it) and its user agent, trimmed."""
    ip = connection.client.host if connection.client else ""
    return ip[:45], connection.headers.get("user-agent", "")[:400]


async def record(kind: str, connection: HTTPConnection | None, user_id: str | None = None,
                 detail: Mapping[str, Any] | None = None) -> None:
    """Write one audit entry (``login.succeeded``, ``login.failed``, ``refresh.reused`` ...)."""
    clean = {key: value for key, value in (detail or {}).items() if key not in FORBIDDEN}
    ip, agent = client_of(connection) if connection is not None else ("", "")
    request_id = str(connection.scope.get("state", {}).get("request_id", "")) if connection is not None else ""
    await AuthEvent.insert(
        AuthEvent(kind=kind, user_id=user_id, ip=ip, user_agent=agent, request_id=request_id[:64], detail=clean)
    )
    logger.info("%s user=%s ip=%s request_id=%s", kind, user_id or "-", ip or "-", request_id or "-")
