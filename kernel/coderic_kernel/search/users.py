"""The kernel's ``auth.users`` index: active members by the profile fields they made public.

Only fields whose audience is ``public`` are indexed (name, bio, skills, location; never an
email). A field turned private, or an account disabled or deleted, stops showing at once:
results are re-checked with ``fetch``, which reads the accounts as they are now.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from coderic_sdk import SearchAttribute, SearchDocument, SearchField, SearchIndex

from ..identity.tables import User
from ..profiles.service import DEFAULT_VISIBILITY
from ..profiles.tables import Profile

PAGE = 1000
INDEX = "users"


def _document(row: Mapping[str, Any], visibility: Mapping[str, str] | None) -> SearchDocument:
    chosen = {**DEFAULT_VISIBILITY, **{k: v for k, v in (visibility or {}).items() if k in DEFAULT_VISIBILITY}}
    public = {field for field, audience in chosen.items() if audience == "public"}
    fields: dict[str, Any] = {}
    if "name" in public:
        fields["name"] = row["name"]
    if "bio" in public:
        fields["bio"] = row["bio"]
    if "skills" in public:
        skills = [str(s) for s in (row["skills"] or []) if isinstance(s, str)][:50]
        fields["skills"] = skills
        fields["skill_text"] = " ".join(skills)
    if "location" in public:
        fields["location"] = row["location"] or None
    return SearchDocument(id=row["uid"], fields=fields, visibility="public")


async def _profiles(uids: Sequence[str]) -> dict[str, Any]:
    if not uids:
        return {}
    rows = await Profile.select(Profile.user_id, Profile.visibility).where(Profile.user_id.is_in(list(uids))).output(load_json=True)
    return {r["user_id"]: r["visibility"] for r in rows}


COLUMNS = (User.id, User.uid, User.name, User.bio, User.skills, User.location)


async def documents(since: datetime | None) -> AsyncIterator[SearchDocument]:
    last = 0
    changed: set[str] | None = None
    if since is not None:
        touched = await Profile.select(Profile.user_id).where(Profile.updated_at >= since)
        changed = {r["user_id"] for r in touched}
    while True:
        query = User.select(*COLUMNS).where((User.status == "active") & (User.id > last))
        if since is not None:
            query = query.where((User.updated_at >= since) | User.uid.is_in(list(changed) or [""]))
        rows = await query.order_by(User.id).limit(PAGE).output(load_json=True)
        if not rows:
            return
        visibility = await _profiles([r["uid"] for r in rows])
        for row in rows:
            yield _document(row, visibility.get(row["uid"]))
        last = rows[-1]["id"]


async def fetch(ids: Sequence[str]) -> dict[str, SearchDocument]:
    wanted = [i for i in ids if isinstance(i, str) and len(i) == 32]
    if not wanted:
        return {}
    rows = await User.select(*COLUMNS).where(User.uid.is_in(wanted) & (User.status == "active")).output(load_json=True)
    visibility = await _profiles([r["uid"] for r in rows])
    return {r["uid"]: _document(r, visibility.get(r["uid"])) for r in rows}


def users_index() -> SearchIndex:
    return SearchIndex(
        INDEX,
        fields=(SearchField("name", 4.0), SearchField("skill_text", 2.0), SearchField("bio", 1.0)),
        attributes=(
            SearchAttribute("skills", "keywords", facetable=True),
            SearchAttribute("location", "keyword", facetable=True),
        ),
        documents=documents,
        fetch=fetch,
        language="simple",
        description="Members, by the profile fields they made public.",
    )
