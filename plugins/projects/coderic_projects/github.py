"""GitHub stats of a project's repository (stars, main language, last push), fetched by a job
so that no request ever waits on GitHub. Answers are cached, so many projects linking one
repository, or a refresh soon after another, cost one call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx2
from coderic_sdk import JobContext

from .tables import Project

P = Project
TIMEOUT = 10.0


def repository_of(url: str) -> str | None:
    """``https://github.com/owner/repo`` -> ``owner/repo``."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    return "/".join(parts[:2]) if len(parts) >= 2 else None


async def fetch(settings: Any, repository: str) -> dict[str, Any] | None:
    """The repository's stats from the GitHub API; ``None`` when GitHub says it does not exist."""
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "coderic-projects"}
    token = getattr(settings, "github_token", None)
    if token is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    async with httpx2.AsyncClient(base_url=settings.github_api_url, timeout=TIMEOUT, headers=headers) as client:
        response = await client.get(f"/repos/{repository}")
    if response.status_code == 404:
        return None
    response.raise_for_status()  # anything else: the job fails and is retried later
    data = response.json()
    return {"stars": int(data.get("stargazers_count") or 0), "language": data.get("language"),
            "pushed_at": data.get("pushed_at")}


async def sync(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    """Refresh one project's stats (``{"project_id": 1}``)."""
    plugin = ctx.plugin
    row = await P.select(P.repository_url).where((P.id == int(payload["project_id"])) & P.deleted_at.is_null()).first()
    repository = repository_of(row["repository_url"]) if row and row["repository_url"] else None
    if repository is None:
        return
    key = f"github:{repository.lower()}"
    stats = await plugin.cache.get(key)
    if stats is None:
        stats = await fetch(plugin.settings, repository) or {"stars": None, "language": None, "pushed_at": None}
        await plugin.cache.set(key, stats, ttl=plugin.settings.github_refresh_hours * 3600 / 2)  # type: ignore[attr-defined]
    pushed = datetime.fromisoformat(stats["pushed_at"].replace("Z", "+00:00")) if stats["pushed_at"] else None
    await P.update({P.github_stars: stats["stars"], P.github_language: (stats["language"] or None),
                    P.github_pushed_at: pushed, P.github_synced_at: datetime.now(timezone.utc)}).where(
        P.id == int(payload["project_id"]))


async def refresh_stale(ctx: JobContext) -> None:
    """Hourly: queue a sync for every linked project not refreshed within ``github_refresh_hours``."""
    plugin = ctx.plugin
    if not plugin.settings.github_sync:  # type: ignore[attr-defined]
        return
    stale = datetime.now(timezone.utc) - timedelta(hours=plugin.settings.github_refresh_hours)  # type: ignore[attr-defined]
    rows = await P.select(P.id).where(
        P.repository_url.is_not_null() & P.deleted_at.is_null() & (P.github_synced_at.is_null() | (P.github_synced_at < stale))
    ).limit(500)
    hour = datetime.now(timezone.utc).strftime("%Y%m%d%H")
    for row in rows:
        await plugin.jobs.enqueue("projects.github_sync", {"project_id": row["id"]}, key=f"github:{row['id']}:{hour}")
