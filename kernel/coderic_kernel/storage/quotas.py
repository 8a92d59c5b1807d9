"""Quotas per user (across plugins) and per plugin, counted from the file records.

Checked before anything is written: the bytes an upload may take are bounded by what is
left of both quotas (and by the purpose's limit), and the stream is cut as soon as it goes
past that. Pending signed uploads count with the size they were allowed. Two uploads racing
for the last bytes are caught after writing: the later one is removed and refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from coderic_sdk import Problem
from piccolo.query.functions.aggregate import Count, Sum

from .records import FileRecord

QUOTA_PROBLEM = "https://coderic.org/problems/quota-exceeded"
TOO_LARGE_PROBLEM = "https://coderic.org/problems/file-too-large"


@dataclass(frozen=True)
class Usage:
    used_bytes: int
    files: int


async def usage(*, owner: str | None = None, plugin: str | None = None) -> Usage:
    query = FileRecord.select(Sum(FileRecord.size, alias="used"), Count(alias="files"))
    if owner is not None:
        query = query.where(FileRecord.owner == owner)
    if plugin is not None:
        query = query.where(FileRecord.plugin == plugin)
    row = (await query.first()) or {}
    return Usage(int(row.get("used") or 0), int(row.get("files") or 0))


@dataclass(frozen=True)
class Allowance:
    """How many bytes one upload may take, and which limit says so."""

    limit: int
    reason: str  # "purpose", "user" or "plugin"

    def refuse(self, size: int | None = None) -> Problem:
        if self.reason == "purpose":
            return Problem(413, f"The file is larger than this purpose allows ({self.limit} bytes).",
                           type=TOO_LARGE_PROBLEM, extra={"limit_bytes": self.limit})
        what = "your storage quota" if self.reason == "user" else "the storage quota of this plugin"
        return Problem(413, f"The file does not fit in {what} ({self.limit} bytes left).",
                       type=QUOTA_PROBLEM, extra={"quota": self.reason, "remaining_bytes": self.limit})


async def allowance(
    max_bytes: int, *, owner: str | None, plugin: str, user_quota: int | None, plugin_quota: int | None
) -> Allowance:
    best = Allowance(max_bytes, "purpose")
    if owner is not None and user_quota is not None:
        left = max(0, user_quota - (await usage(owner=owner)).used_bytes)
        if left < best.limit:
            best = Allowance(left, "user")
    if plugin_quota is not None:
        left = max(0, plugin_quota - (await usage(plugin=plugin)).used_bytes)
        if left < best.limit:
            best = Allowance(left, "plugin")
    return best


async def over_quota(*, owner: str | None, plugin: str, user_quota: int | None, plugin_quota: int | None) -> str | None:
    """After a write: which quota, if any, is now exceeded."""
    if owner is not None and user_quota is not None and (await usage(owner=owner)).used_bytes > user_quota:
        return "user"
    if plugin_quota is not None and (await usage(plugin=plugin)).used_bytes > plugin_quota:
        return "plugin"
    return None
