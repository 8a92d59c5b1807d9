"""Slugs: derived from the name, unique, editable. A deleted project gives its slug back."""

from __future__ import annotations

import re
import unicodedata

from coderic_sdk import FieldError, Problem

from .tables import Project

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """``"Café Ñandú 2.0"`` -> ``"cafe-nandu-2-0"``; ``"project"`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:70].strip("-")
    return slug if len(slug) >= 2 else "project"


async def taken(slug: str, but: int | None = None) -> bool:
    where = Project.slug == slug
    if but is not None:
        where &= Project.id != but
    return bool(await Project.exists().where(where))


async def free_slug(name: str) -> str:
    """The name's slug, or the first free ``<slug>-2``, ``<slug>-3``..."""
    base = slugify(name)
    rows = await Project.select(Project.slug).where(Project.slug.like(f"{base}%"))
    used = {row["slug"] for row in rows}
    if base not in used:
        return base
    number = 2
    while f"{base}-{number}" in used:
        number += 1
    return f"{base}-{number}"


async def require_free(slug: str, but: int | None = None) -> str:
    if await taken(slug, but):
        raise Problem(409, "That slug is taken.", errors=[FieldError("body.slug", "another project uses it", "taken")])
    return slug
