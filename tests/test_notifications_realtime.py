"""Real-time notifications across processes (issue 9): two ``uvicorn`` servers on loopback share
one database and Redis; the fan-out job runs in a worker (this test's process). A
notification sent through one server reaches the member's WebSocket on the other, never
anyone else's; foreign origins and anonymous handshakes are refused; a reconnect with the
last id replays what was missed; logging out closes the socket; SSE is the fallback.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx2
import pytest
from coderic_kernel.identity.tables import Session
from coderic_kernel.notifications.hub import Hub
from coderic_kernel.notifications.tables import Notification
from coderic_kernel.testing import start_kernel
from coderic_kernel.web.websocket_protocol import WS_PROTOCOL
from services import eventually, free_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

PUBLIC = "https://coderic.example"
SECRET = "test-secret-key-that-is-long-enough-0123456789"
PROTOCOL = "coderic.notifications.v1"
CONFIG = {
    "public_url": PUBLIC, "secret_key": SECRET, "rate_limit_enabled": False, "auth_require_2fa_roles": [],
    "outbox_poll_seconds": 0.05, "notifications_heartbeat_seconds": 1, "notifications_session_check_seconds": 0.3,
}


@contextmanager
def server(env: dict[str, str], cwd: Path) -> Iterator[int]:
    """The kernel under ``uvicorn`` in its own process; yields its port once /healthz answers."""
    port = free_port()
    log = (cwd / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "coderic_kernel.web.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--ws", WS_PROTOCOL, "--ws-per-message-deflate", "false"],  # as coderic serve
        env=env, cwd=cwd, stdout=log, stderr=log, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {(cwd / f'server-{port}.log').read_text()[-2000:]}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return connection.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@asynccontextmanager
async def platform(database: str, tmp_path: Path) -> AsyncIterator[tuple[Any, int, int]]:
    """The test's kernel (its worker runs the jobs) and two API servers on the same database and Redis."""
    async with start_kernel(plugins=[], config=CONFIG, database=database, workdir=tmp_path, services="redis") as api:
        settings = api.kernel.config.kernel
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODERIC_")} | {
            "CODERIC_DATABASE_URL": settings.database_url.url, "CODERIC_REDIS_URL": str(settings.redis_url),
            "CODERIC_PUBLIC_URL": PUBLIC, "CODERIC_SECRET_KEY": SECRET, "CODERIC_PLUGINS": "",
            "CODERIC_RATE_LIMIT_ENABLED": "false", "CODERIC_AUTH_REQUIRE_2FA_ROLES": "", "CODERIC_LOG_LEVEL": "WARNING",
            "CODERIC_NOTIFICATIONS_HEARTBEAT_SECONDS": "1", "CODERIC_NOTIFICATIONS_SESSION_CHECK_SECONDS": "0.3",
        }
        worker = asyncio.create_task(api.kernel.jobs.run_worker_forever())
        try:
            with server(env, tmp_path) as first, server(env, tmp_path) as second:
                yield api, first, second
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


def token_of(client: Any) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def ws(port: int, token: str | None = None, *, after: int | None = None, **options: Any) -> Any:
    url = f"ws://127.0.0.1:{port}/api/v1/notifications/stream" + (f"?after={after}" if after is not None else "")
    protocols = [PROTOCOL, f"bearer.{token}"] if token else [PROTOCOL]
    return connect(url, subprotocols=protocols, compression=None, open_timeout=10, **options)  # type: ignore[arg-type]


async def next_message(socket_: ClientConnection, kind: str = "notification", timeout: float = 10) -> dict[str, Any]:
    """The next message of ``kind``, skipping pings (and anything else)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind} message within {timeout}s")
        message = json.loads(await asyncio.wait_for(socket_.recv(), left))
        if message["type"] == kind:
            return message  # type: ignore[no-any-return]


async def nothing_but_pings(socket_: ClientConnection, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            message = json.loads(await asyncio.wait_for(socket_.recv(), left))
            assert message["type"] == "ping", message
    except TimeoutError:
        pass


async def refused(port: int, token: str | None = None, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as caught:
        async with ws(port, token, **options):
            pass
    return int(caught.value.response.status_code)


async def test_notifications_cross_processes_to_the_right_member_only(coderic_database: str, tmp_path: Path) -> None:
    async with platform(coderic_database, tmp_path) as (api, first, second):
        admin, ana, bea = [await api.create_user(f"{n}@example.org") for n in ("admin", "ana", "bea")]
        await api.kernel.permissions.grant(admin, "admin", reason="test")
        await api.kernel.permissions.grant(ana, "moderator", reason="test")
        as_admin, as_ana, as_bea = [await api.sign_in(u) for u in (admin, ana, bea)]
        ana_cookie = await api.sign_in(ana, mode="session")
        cookie = f"__Host-coderic_session={ana_cookie.cookies['__Host-coderic_session']}"
        async with (
            ws(second, token_of(as_ana)) as ana_on_second,
            ws(first, additional_headers={"Cookie": cookie}, origin=PUBLIC) as ana_on_first,
            ws(second, token_of(as_bea)) as bea_on_second,
        ):
            assert ana_on_second.subprotocol == PROTOCOL  # never the token
            for socket_ in (ana_on_second, ana_on_first, bea_on_second):
                assert (await next_message(socket_, "hello"))["unread"] == 0
            # through the first server, to the moderators: Ana, on both servers; never Bea
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{first}", headers=as_admin.headers) as http:
                sent = await http.post("/api/v1/notifications/announcements", json={"title": "Mods' meeting", "role": "moderator"})
                assert sent.status_code == 202, sent.text
            got = await next_message(ana_on_second)
            assert got["notification"]["data"]["title"] == "Mods' meeting" and got["unread"] == 1
            assert (await next_message(ana_on_first))["notification"]["id"] == got["notification"]["id"]
            await api.plugin("auth").notifications.notify([bea], "notifications.announcement", {"title": "Bea only"})
            assert (await next_message(bea_on_second))["notification"]["data"]["title"] == "Bea only"
            await nothing_but_pings(ana_on_second, 1.5)  # heartbeats only: Bea's was not Ana's
            # reading on the first server updates the count on the second
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{first}", headers=as_ana.headers) as http:
                assert (await http.post(f"/api/v1/notifications/{got['notification']['id']}/read")).json() == {"unread": 0}
            assert (await next_message(ana_on_second, "unread"))["unread"] == 0
            last_seen = got["notification"]["id"]
        # missed while away: replayed on reconnect from the last id seen, oldest first. Each send is a
        # job of its own and jobs run concurrently, so the second is sent once the first has landed.
        for count, title in enumerate(("While away 1", "While away 2"), start=2):
            await api.plugin("auth").notifications.notify([ana], "notifications.announcement", {"title": title})

            async def delivered(count: int = count) -> bool:
                return await Notification.count().where(Notification.user_id == ana) == count

            await eventually(delivered, what=f"{title!r}, sent while Ana was away")
        async with ws(first, token_of(as_ana), after=last_seen) as again:
            hello = await next_message(again, "hello")
            assert hello["replayed"] == 2 and hello["complete"] and hello["unread"] == 2
            titles = [(await next_message(again))["notification"]["data"]["title"] for _ in range(2)]
            assert titles == ["While away 1", "While away 2"]
            await nothing_but_pings(again, 1.2)  # delivered live meanwhile too, but never twice


async def test_handshakes_are_refused_without_credentials_or_from_a_foreign_origin(coderic_database: str, tmp_path: Path) -> None:
    async with platform(coderic_database, tmp_path) as (api, first, second):
        ana = await api.create_user("ana@example.org")
        session = await api.sign_in(ana, mode="session")
        cookie = {"Cookie": f"__Host-coderic_session={session.cookies['__Host-coderic_session']}"}
        assert await refused(first) == 401
        assert await refused(first, "not-a-token") == 401
        assert await refused(second, additional_headers=cookie, origin="https://evil.example") == 403
        assert await refused(second, additional_headers=cookie) == 403  # a cookie without an Origin
        # logging out (or revoking the session) closes the socket
        async with ws(second, additional_headers=cookie, origin=PUBLIC) as socket_:
            await next_message(socket_, "hello")
            revoked = await Session.update({Session.revoked_at: datetime.now(timezone.utc)}).where(Session.user_id == ana)
            assert revoked is not None
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(socket_.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        # Server-Sent Events, the fallback, with an access token
        as_ana = await api.sign_in(ana)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{first}", headers=as_ana.headers, timeout=10) as http:
            assert (await http.get("/api/v1/notifications/stream")).status_code == 406  # only for event streams
            async with http.stream("GET", "/api/v1/notifications/stream", headers={"Accept": "text/event-stream"}) as response:
                assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
                await api.plugin("auth").notifications.notify([ana], "notifications.announcement", {"title": "Over SSE"})
                seen = ""
                async for chunk in response.aiter_text():
                    seen += chunk
                    if "Over SSE" in seen:
                        break
                assert "event: hello" in seen and "event: notification" in seen


async def test_a_lost_redis_subscription_makes_streams_resync_and_nothing_is_missed(coderic_database: str, tmp_path: Path) -> None:
    """Redis pub/sub does not keep what a disconnected subscriber missed: after resubscribing,
    a server closes its streams (1012) and the clients' replay fills the gap."""
    async with platform(coderic_database, tmp_path) as (api, first, _):
        ana = await api.create_user("ana@example.org")
        as_ana = await api.sign_in(ana)
        notifier = api.plugin("auth").notifications
        redis = api.kernel.redis.client
        database = str(redis.connection_pool.connection_kwargs.get("db", 0))
        seen: list[str] = []
        last_id = 0
        async with ws(first, token_of(as_ana)) as live:
            await next_message(live, "hello")
            subscribers = [c["id"] for c in await redis.client_list(_type="pubsub") if str(c["db"]) == database]
            assert subscribers, "every process subscribes to the events channel"
            for client_id in subscribers:  # as when Redis restarts or drops a slow subscriber
                await redis.client_kill_filter(_id=client_id)
            await notifier.notify([ana], "notifications.announcement", {"title": "During the gap"})
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(15):  # pings keep coming: only the close ends this
                    while True:
                        message = json.loads(await live.recv())
                        if message["type"] == "notification":
                            seen.append(message["notification"]["data"]["title"])
                            last_id = message["notification"]["id"]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        async with ws(first, token_of(as_ana), after=last_id) as again:
            hello = await next_message(again, "hello")
            seen += [(await next_message(again))["notification"]["data"]["title"] for _ in range(hello["replayed"])]
        assert seen == ["During the gap"]  # live or replayed, once


def test_a_full_queue_ends_only_that_stream() -> None:
    hub = Hub(queue_size=3)
    slow, fast = hub.open("u1", "s1"), hub.open("u1", "s2")
    ended: list[str] = []
    slow.on_end = lambda: ended.append("slow")
    for n in range(1, 5):
        hub.deliver({"type": "t.x", "data": {"title": f"n{n}"}}, [["u1", n, n]])
        _, _, text = fast.queue.pop(0)  # the fast client keeps up
        assert json.loads(text) == {"type": "notification", "notification": {"id": n, "type": "t.x", "data": {"title": f"n{n}"}}, "unread": n}
    assert slow.ended == "overflow" and ended == ["slow"] and fast.ended is None
    hub.deliver({"type": "t.x", "data": {"title": "n9"}}, [["u2", 9, 1]])  # nobody's stream but u2's
    assert not fast.queue


async def test_a_pushed_stream_sends_in_order_is_pinged_when_silent_and_ends_when_its_client_stalls() -> None:
    hub = Hub(queue_size=3)
    stream = hub.open("u1", "s1")
    sent: list[str] = []
    stalled = asyncio.Event()

    async def send(text: str) -> None:
        if text == "stall":
            await stalled.wait()  # a client that stops reading: the send never completes
        sent.append(text)

    stream.offer((1, "notification", "queued before the start"))
    stream.start(send)
    stream.offer((2, "notification", "after"))
    await asyncio.sleep(0.01)
    assert sent == ["queued before the start", "after"] and stream.idle  # no task left while idle
    assert hub.ping_silent(60, lambda: (0, "ping", "ping")) == 0  # it spoke just now
    assert hub.ping_silent(0, lambda: (0, "ping", "ping")) == 1
    await asyncio.sleep(0.01)
    assert sent[-1] == "ping"
    ended: list[str] = []
    stream.on_end = lambda: ended.append(str(stream.ended))
    stream.offer((0, "unread", "stall"))
    for n in range(3, 7):
        stream.offer((n, "notification", f"n{n}"))
    assert ended == ["overflow"] and not stream.pushed  # the writer stuck on the client was stopped
    await asyncio.sleep(0.01)
    assert sent[-1] == "ping" and hub.ping_silent(0, lambda: (0, "ping", "ping")) == 0  # an ended stream hears nothing more
