"""Refreshing a profile from GitHub: name, bio, location and avatar, read again from the
public profile of the member's linked GitHub account.

The kernel keeps no GitHub token after sign-in, so it asks GitHub's public API for the
account by its numeric id (``GET /user/{id}``, which follows renames where ``/users/{login}``
would not), at ``auth_github_api_url``. Unauthenticated, GitHub allows 60 such requests an
hour per address; the route's rate limit keeps members well below that.
"""

from __future__ import annotations

import httpx2
from coderic_sdk import Problem

from ..identity.oauth import GITHUB, GITHUB_API_HEADERS, HTTP_TIMEOUT
from ..identity.tables import LinkedIdentity

#: What a refresh takes from GitHub: account column -> (GitHub's key, longest kept).
FIELDS = {"name": ("name", 200), "bio": ("bio", 2000), "location": ("location", 200), "avatar_url": ("avatar_url", 2048)}


async def linked_github_id(user_id: str) -> int:
    """The id of the member's linked GitHub account; 409 when none is linked."""
    row = await LinkedIdentity.select(LinkedIdentity.subject).where(
        (LinkedIdentity.user_id == user_id) & (LinkedIdentity.provider == GITHUB)
    ).first()
    if row is None or not row["subject"].isdigit():
        raise Problem(409, "No GitHub account is linked to yours: link one first (POST /api/v1/me/identities/github).")
    return int(row["subject"])


async def public_profile(api_url: str, github_id: int) -> dict[str, str]:
    """GitHub's public profile of the account, as account columns; the values GitHub leaves
    empty are left out (a refresh never empties a field). 502 when GitHub does not answer well."""
    try:
        async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT, headers={**GITHUB_API_HEADERS, "User-Agent": "coderic"}) as client:
            response = await client.get(f"{api_url}/user/{github_id}")
        if response.status_code == 404:
            raise Problem(409, "GitHub has no account with the linked id any more.")
        response.raise_for_status()
        found = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise Problem(502, f"GitHub did not answer as expected ({type(exc).__name__}); try again later.") from None
    if not isinstance(found, dict) or found.get("id") != github_id:
        raise Problem(502, "GitHub answered for another account; try again later.")
    values = {}
    for column, (key, limit) in FIELDS.items():
        value = found.get(key)
        if column == "name" and not (isinstance(value, str) and value.strip()):
            value = found.get("login")  # as at sign-up: the login when no name is set
        if isinstance(value, str) and value.strip():
            values[column] = value.strip()[:limit]
    avatar = values.get("avatar_url", "")
    if avatar and not avatar.startswith("https://"):
        del values["avatar_url"]
    return values
