"""Reading and moving outbox rows. Every state change is one conditional UPDATE, so two
relays or two workers racing for the same row cannot both win it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from piccolo.columns.combination import Or

from ..services.json_safe import to_json
from .tables import OutboxEntry

E = OutboxEntry


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Entry:
    id: int
    job: str
    payload: dict[str, Any]
    key: str | None
    status: str
    attempts: int
    max_attempts: int
    available_at: datetime
    last_error: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        payload = row["payload"]
        return cls(
            id=row["id"], job=row["job"], payload=json.loads(payload) if isinstance(payload, str) else payload,
            key=row["key"], status=row["status"], attempts=row["attempts"], max_attempts=row["max_attempts"],
            available_at=row["available_at"], last_error=row["last_error"], created_at=row["created_at"],
        )


class Outbox:
    async def add(
        self, job: str, payload: dict[str, Any], *, delay: float = 0, key: str | None = None, max_attempts: int = 5
    ) -> int:
        """Insert a row in the caller's transaction, if any. A known ``key`` returns the existing row's id."""
        values = {
            E.job: job, E.payload: to_json(payload, "a job payload"), E.key: key, E.max_attempts: max_attempts,
            E.available_at: now() + timedelta(seconds=delay),
        }
        if key is not None:
            inserted = await E.insert(E(**{c._meta.name: v for c, v in values.items()})).on_conflict(
                target=E.key, action="DO NOTHING"
            ).returning(E.id)
            if inserted:
                return int(inserted[0]["id"])
            existing = await E.select(E.id).where(E.key == key).first()
            assert existing is not None
            return int(existing["id"])
        inserted = await E.insert(E(**{c._meta.name: v for c, v in values.items()})).returning(E.id)
        return int(inserted[0]["id"])

    async def claim_due(self, limit: int, lease: float) -> list[Entry]:
        """Mark due rows as queued (leased for ``lease`` seconds) and return those this call won.

        Due: pending rows whose time has come, and queued or running rows whose lease ran out
        (their queue lost them, or their worker died).
        """
        moment = now()
        due = Or(
            (E.status == "pending") & (E.available_at <= moment),
            E.status.is_in(["queued", "running"]) & (E.lease_until < moment),
        )
        candidates = await E.select(E.id).where(due).order_by(E.available_at).limit(limit)
        if not candidates:
            return []
        ids = [row["id"] for row in candidates]
        rows = await E.update(
            {E.status: "queued", E.lease_until: moment + timedelta(seconds=lease), E.updated_at: moment}
        ).where(E.id.is_in(ids) & due).returning(*E.all_columns())
        return [Entry.from_row(row) for row in rows]

    async def release(self, ids: list[int]) -> None:
        """Queued rows that could not be handed to the queue go back to pending at once."""
        if ids:
            await E.update({E.status: "pending", E.lease_until: None}).where(E.id.is_in(ids) & (E.status == "queued"))

    async def start(self, entry_id: int, lease: float) -> Entry | None:
        """Take a row for running; ``None`` when it is done, dead, or running under a live lease."""
        moment = now()
        rows = await E.update(
            {
                E.status: "running", E.attempts: E.attempts + 1,
                E.lease_until: moment + timedelta(seconds=lease), E.updated_at: moment,
            }
        ).where(
            (E.id == entry_id)
            & Or(E.status.is_in(["pending", "queued"]), (E.status == "running") & (E.lease_until < moment))
        ).returning(*E.all_columns())
        return Entry.from_row(rows[0]) if rows else None

    async def succeed(self, entry_id: int) -> None:
        await E.update({E.status: "done", E.lease_until: None, E.last_error: None, E.updated_at: now()}).where(
            E.id == entry_id
        )

    async def fail(self, entry_id: int, error: str, retry_in: float | None) -> None:
        """Back to pending after ``retry_in`` seconds, or dead when ``None``."""
        moment = now()
        if retry_in is None:
            changes = {E.status: "dead", E.lease_until: None, E.last_error: error, E.updated_at: moment}
        else:
            changes = {
                E.status: "pending", E.lease_until: None, E.last_error: error, E.updated_at: moment,
                E.available_at: moment + timedelta(seconds=retry_in),
            }
        await E.update(changes).where(E.id == entry_id)

    async def retry(self, entry_id: int) -> bool:
        """Give a dead row a fresh set of attempts; ``False`` when it is not dead."""
        rows = await E.update(
            {E.status: "pending", E.attempts: 0, E.available_at: now(), E.updated_at: now()}
        ).where((E.id == entry_id) & (E.status == "dead")).returning(E.id)
        return bool(rows)

    async def list(self, status: str | None = None, limit: int = 50) -> list[Entry]:
        query = E.select(*E.all_columns()).order_by(E.id, ascending=False).limit(limit)
        if status is not None:
            query = query.where(E.status == status)
        return [Entry.from_row(row) for row in await query]

    async def get(self, entry_id: int) -> Entry | None:
        row = await E.select(*E.all_columns()).where(E.id == entry_id).first()
        return Entry.from_row(row) if row else None

    async def backlog(self) -> tuple[int, float]:
        """(rows not yet done nor dead, age in seconds of the oldest of them)."""
        open_rows = E.status.is_in(["pending", "queued", "running"])
        count = await E.count().where(open_rows)
        oldest = await E.select(E.created_at).where(open_rows).order_by(E.created_at).first()
        age = (now() - oldest["created_at"]).total_seconds() if oldest else 0.0
        return int(count), max(age, 0.0)
