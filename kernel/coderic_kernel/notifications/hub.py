"""The open streams of this process, by member, each with a bounded queue.

Deliveries arrive as the broadcast events ``notifications.delivered`` and ``.unread`` (through
Redis pub/sub, in every API process; in-process when embedded) and are handed to the queues
of the member's streams without ever waiting: a stream whose queue is full is ended (its
client reconnects and replays from its last id), so a slow or dead client never holds up
the others. Every ``notifications_session_check_seconds`` the built-in's lifespan has the
hub end streams whose session was revoked or expired (logout, "sign out everywhere"), and
every half heartbeat ping the silent ones.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..identity.tables import Session

Message = tuple[int, str, str]  # (notification id or 0, kind, JSON text)


class Ended(Exception):
    """The stream was ended by the server: ``reason`` is ``overflow`` or ``revoked``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stream:
    """One open WebSocket or SSE connection of a member.

    An SSE response pulls its messages (``next``). A WebSocket has them pushed (``start``):
    a writer task lives only while messages wait, and the hub's one heartbeat task pings
    silent sockets, so an idle connection costs no task and no timer of its own (memory
    per idle connection is what limits how many a process serves).
    """

    __slots__ = ("user_id", "session_id", "limit", "queue", "floor", "ended", "on_end", "_wake", "_send", "_writer",
                 "sent_at")

    def __init__(self, user_id: str, session_id: str | None, limit: int) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.limit = limit
        self.queue: list[Message] = []  # a list: an empty deque already holds a 64-slot block
        self.floor = 0  # notifications up to this id were replayed: not sent again
        self.ended: str | None = None
        self.on_end: Callable[[], Any] | None = None
        self._wake: asyncio.Event | None = None
        self._send: Callable[[str], Awaitable[None]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.sent_at = time.monotonic()  # when the last message went out (pushed streams)

    def offer(self, message: Message) -> None:
        """Queue ``message`` without waiting; end the stream when its queue is full."""
        if self.ended is not None:
            return
        if len(self.queue) >= self.limit:
            self.end("overflow")
            return
        self.queue.append(message)
        if self._send is not None:
            if self._writer is None:
                self._writer = asyncio.create_task(self._write())
        elif self._wake is not None:
            self._wake.set()

    def end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
            if self._wake is not None:
                self._wake.set()
            self.stop()
            if self.on_end is not None:
                self.on_end()

    def start(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Push from now on: every message queued is passed to ``send``, in order."""
        self._send = send
        if self.queue and self._writer is None and self.ended is None:
            self._writer = asyncio.create_task(self._write())

    def stop(self) -> None:
        """Stop pushing (the connection is over)."""
        self._send = None
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None

    @property
    def pushed(self) -> bool:
        return self._send is not None

    @property
    def idle(self) -> bool:
        return self._send is not None and self._writer is None

    def _take(self) -> Message | None:
        """The next queued message not already replayed."""
        while self.queue:
            message = self.queue.pop(0)
            if not (message[0] and message[0] <= self.floor):
                return message
        return None

    async def _write(self) -> None:
        try:
            while (send := self._send) is not None and (message := self._take()) is not None:
                await send(message[2])
                self.sent_at = time.monotonic()
        except OSError:
            pass  # the client is gone: the connection's own task sees the disconnect and closes the stream
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def next(self, timeout: float) -> Message | None:
        """The next message to send, or ``None`` after ``timeout`` seconds of nothing (a heartbeat is due)."""
        while True:
            if self.ended is not None:
                raise Ended(self.ended)
            message = self._take()
            if message is not None:
                return message
            wake = self._wake = asyncio.Event()
            try:
                async with asyncio.timeout(timeout):
                    await wake.wait()
            except TimeoutError:
                return None
            finally:
                self._wake = None


class Hub:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        # A list per member: most have one stream, and a one-item list is a third of a set.
        self.streams: dict[str, list[Stream]] = {}

    def open(self, user_id: str, session_id: str | None) -> Stream:
        stream = Stream(user_id, session_id, self.queue_size)
        self.streams.setdefault(user_id, []).append(stream)
        return stream

    def close(self, stream: Stream) -> None:
        streams = self.streams.get(stream.user_id)
        if streams is not None and stream in streams:
            streams.remove(stream)
            if not streams:
                del self.streams[stream.user_id]

    def count(self) -> int:
        return sum(len(s) for s in self.streams.values())

    def deliver(self, shared: Mapping[str, Any], recipients: Iterable[Sequence[Any]]) -> None:
        """Offer one notification to the streams of its recipients: ``shared`` is the
        notification without its id, ``recipients`` are ``(user id, notification id, unread)``.
        Its JSON is encoded once; each stream's text only adds the id and the count."""
        body: str | None = None
        for user_id, notification_id, unread in recipients:
            streams = self.streams.get(user_id)
            if not streams:
                continue
            if body is None:
                body = json.dumps(shared)[1:]  # '"type": ..., "read_at": null}'
            notification_id = int(notification_id)
            text = f'{{"type": "notification", "notification": {{"id": {notification_id}, {body}, "unread": {int(unread)}}}'
            for stream in list(streams):
                stream.offer((notification_id, "notification", text))

    def unread(self, user_id: str, count: int) -> None:
        streams = self.streams.get(user_id)
        if streams:
            text = json.dumps({"type": "unread", "unread": count})
            for stream in list(streams):
                stream.offer((0, "unread", text))

    def resync(self) -> int:
        """End every stream: notifications published while this process was not listening
        never reached them. Each client reconnects with its last id and the replay, read
        from the database, fills the gap in order. Returns how many streams were ended."""
        ended = [stream for streams in self.streams.values() for stream in streams]
        for stream in ended:
            stream.end("resync")
        return len(ended)

    async def check_sessions(self) -> int:
        """End the streams whose session has ended; return how many."""
        sessions = {s.session_id for streams in self.streams.values() for s in streams if s.session_id}
        if not sessions:
            return 0
        now, ids, live = datetime.now(timezone.utc), list(sessions), set()
        for i in range(0, len(ids), 500):
            rows = await Session.select(Session.uid).where(
                Session.uid.is_in(ids[i:i + 500]) & Session.revoked_at.is_null() & (Session.expires_at > now)
            )
            live.update(row["uid"] for row in rows)
        ended = 0
        for streams in list(self.streams.values()):
            for stream in list(streams):
                if stream.session_id in sessions and stream.session_id not in live:  # streams opened meanwhile wait
                    stream.end("revoked")
                    ended += 1
        return ended

    def ping_silent(self, heartbeat: float, ping: Callable[[], Message]) -> int:
        """Ping every pushed stream silent for ``heartbeat`` seconds; return how many."""
        due = time.monotonic() - heartbeat
        silent = [s for streams in self.streams.values() for s in streams if s.idle and s.sent_at <= due]
        if silent:
            message = ping()
            for stream in silent:
                stream.offer(message)
        return len(silent)
