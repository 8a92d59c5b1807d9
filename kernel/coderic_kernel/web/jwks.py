"""``/.well-known/jwks.json``: the public keys of access tokens, for services that verify them.

Caches may keep it for five minutes; a rotation publishes the new key at once, and the
previous key stays listed until every token it signed has expired."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..identity.service import identity_for
from ..kernel import Kernel

JWKS_PATH = "/.well-known/jwks.json"


def jwks_endpoint(kernel: Kernel) -> Callable[[Request], Awaitable[Response]]:
    keys = identity_for(kernel).keys

    async def jwks(request: Request) -> Response:
        return JSONResponse(
            keys.jwks(), media_type="application/jwk-set+json",
            headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
        )

    return jwks
