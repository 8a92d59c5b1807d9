"""Errors a plugin raises to answer with RFC 9457 problem+json instead of a 500."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input: where it is (``body.email``, ``query.page``) and why it was refused."""

    field: str
    reason: str
    type: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason, "type": self.type}


class Problem(Exception):
    """Raise from a route to answer with ``application/problem+json``.

    ``type`` is a URI naming the kind of problem; ``about:blank`` means "see the status".
    ``errors`` lists invalid fields; ``extra`` adds members to the body (never secrets).
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title or _reason(status)
        self.detail = detail or self.title
        self.type = type
        self.errors = tuple(errors)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(f"{status} {self.title}: {self.detail}")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class NotFound(Problem):
    """404: the resource does not exist, or the caller may not know that it does."""

    def __init__(self, detail: str = "The resource was not found.") -> None:
        super().__init__(404, detail)


class Conflict(Problem):
    """409: the request clashes with the current state (a taken name, a stale version)."""

    def __init__(self, detail: str) -> None:
        super().__init__(409, detail)


class Forbidden(Problem):
    """403: the caller is known but may not do this."""

    def __init__(self, detail: str = "You may not do this.") -> None:
        super().__init__(403, detail)


class Unauthorized(Problem):
    """401: the request needs a signed-in user, or its credentials are invalid or expired.

    ``WWW-Authenticate`` names the accepted schemes (RFC 9110 section 11.6.1)."""

    def __init__(self, detail: str = "Sign in to do this.", *, error: str | None = None) -> None:
        challenge = 'Bearer realm="coderic"' + (f', error="{error}"' if error else "")
        super().__init__(401, detail, headers={"WWW-Authenticate": challenge})
