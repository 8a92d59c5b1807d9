"""Security headers on every response, errors and static files included.

The API's policy forbids everything a browser could do with a JSON response; ``/docs``
gets what its bundled page needs (its own scripts and styles, nothing from elsewhere).
HSTS is sent only over HTTPS: directly, or behind a trusted proxy that says so.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def is_docs_path(path: str) -> bool:
    return path == "/docs" or path.startswith("/docs/")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, hsts_max_age: int) -> None:
        self.app = app
        self.api = [*COMMON, (b"content-security-policy", API_CSP)]
        self.docs = [*COMMON, (b"content-security-policy", DOCS_CSP)]
        self.hsts = (b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode()) if hsts_max_age else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs if is_docs_path(scope["path"]) else self.api
        if self.hsts is not None and scope.get("scheme") == "https":
            extra = [*extra, self.hsts]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
