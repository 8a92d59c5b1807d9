"""The outbox: work that must not be lost, written in the same transaction as its cause."""

from __future__ import annotations

from piccolo.columns import JSON, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

#: pending: waiting for ``available_at``; queued: handed to the queue; running: a worker has
#: it; done: succeeded; dead: failed ``max_attempts`` times (see ``coderic jobs list``).
STATUSES = ("pending", "queued", "running", "done", "dead")


class OutboxEntry(Table, tablename="kernel_outbox"):
    job = Varchar(length=200)
    payload = JSON()
    key = Varchar(length=200, null=True, default=None, unique=True)
    status = Varchar(length=16, default="pending", index=True)
    attempts = Integer(default=0)
    max_attempts = Integer(default=5)
    available_at = Timestamptz(default=TimestamptzNow(), index=True)
    lease_until = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
