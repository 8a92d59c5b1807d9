"""Security headers on every response, errors and static files included.

The API's policy forbids everything a browser could do with a JSON response; ``/docs``
gets what its bundled page needs (its own scripts and styles, nothing from elsewhere).
HSTS is sent only over HTTPS: directly, or behind a trusted proxy that says so.
"""

from __future__ import annotations

from starlette.types import Scope

# A JSON response is never a document: nothing may load, nothing may frame it. (base-uri and
# form-action only matter in HTML; the server checks every header byte on every response.)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Kept to what protects a JSON API: the server writes every header of every response, so
# each costs on every request. frame-ancestors in the CSP does X-Frame-Options' job.
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def is_docs_path(path: str) -> bool:
    return path == "/docs" or path.startswith("/docs/")


class SecurityHeaders:
    def __init__(self, hsts_max_age: int) -> None:
        self.api = [*COMMON, (b"content-security-policy", API_CSP)]
        self.docs = [*COMMON, (b"content-security-policy", DOCS_CSP)]
        self.api_https = self.api
        self.docs_https = self.docs
        if hsts_max_age:
            hsts = (b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode())
            self.api_https = [*self.api, hsts]
            self.docs_https = [*self.docs, hsts]

    def for_scope(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        https = scope.get("scheme") == "https"
        path = scope["path"]
        if path.startswith("/docs") and is_docs_path(path):
            return self.docs_https if https else self.docs
        return self.api_https if https else self.api


#: Every header the kernel may add; a response that sets one of these keeps its own.
ADDED_NAMES = frozenset(
    {b"x-content-type-options", b"referrer-policy", b"content-security-policy", b"strict-transport-security", b"x-request-id"}
)


def add_missing(headers: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus each of ``extra`` that the response did not set itself."""
    present = [name for name, _ in headers if name in ADDED_NAMES]  # ASGI header names are lower-case
    if not present:  # the usual case: nothing to reconcile
        return headers + extra
    return headers + [header for header in extra if header[0] not in present]
