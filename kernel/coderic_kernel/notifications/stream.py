"""``/api/v1/notifications/stream``: new notifications and unread counts as they happen.

WebSocket (a pure ASGI middleware answers the path's WebSocket handshakes; everything else
passes through) or, for a plain GET, Server-Sent Events. Both authenticate as any API route:
the session cookie (a WebSocket handshake must then come from an allowed ``Origin``: browsers
send cookies with cross-site WebSocket handshakes) or an access token, which browsers, unable
to set headers on a WebSocket, offer as the subprotocol ``bearer.<token>`` next to
``coderic.notifications.v1`` (the one the server picks). No token ever goes in the URL.

Messages are JSON: ``hello`` (unread count, newest id), ``notification``, ``unread`` and
``ping`` (every ``notifications_heartbeat_seconds`` of silence). ``?after=<id>`` (or SSE's
``Last-Event-ID``) first replays every notification newer than that id.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from coderic_sdk import CurrentUser, Problem, Unauthorized
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..identity.authenticate import origin_of
from .hub import Ended, Stream

if TYPE_CHECKING:
    from ..kernel import Kernel
    from .service import NotificationService

PATH = "/api/v1/notifications/stream"
SUBPROTOCOL = "coderic.notifications.v1"
TOKEN_PREFIX = "bearer."
REPLAY_LIMIT = 1000
CLOSE_CODES = {
    "overflow": (1013, "too slow: reconnect with after=<last id>"),
    "revoked": (1008, "the session has ended"),
    "resync": (1012, "notifications may have been missed: reconnect with after=<last id>"),
}


class StreamMiddleware:
    """Serves the WebSocket stream; every other request goes on untouched."""

    def __init__(self, app: ASGIApp, kernel: Kernel) -> None:
        self.app = app
        self.kernel = kernel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        from .service import notifications_for

        await serve_websocket(notifications_for(self.kernel), scope, receive, send)


def after_of(scope: Scope) -> int | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("after")
    if not values:
        return None
    return int(values[0]) if values[0].isdigit() else -1


async def handshake_user(service: NotificationService, scope: Scope) -> CurrentUser:
    """The member opening a WebSocket; ``Problem`` (401/403) when they may not."""
    authenticator = service.kernel.authenticator
    token = next((p[len(TOKEN_PREFIX):] for p in scope.get("subprotocols", ()) if p.startswith(TOKEN_PREFIX)), None)
    if token is not None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"cookie", b"authorization")]
        scope = {**scope, "headers": [*headers, (b"authorization", f"Bearer {token}".encode("latin-1"))]}
    user = await authenticator.authenticate(scope)
    if user is None:
        raise Unauthorized("Sign in: send the session cookie, or offer the subprotocol 'bearer.<access token>'.")
    if user.method == "personal_token":
        raise Problem(403, "Personal access tokens cannot open streams; use a session or an access token.")
    if user.method == "session":
        origin = dict(scope["headers"]).get(b"origin", b"").decode("latin-1")
        if not origin or origin_of(origin) not in authenticator.allowed_origins:
            raise Problem(403, f"Origin {origin or '(none)'!r} may not use the session cookie.")
    return user


async def deny(scope: Scope, send: Send, problem: Problem) -> None:
    """Refuse a handshake with a problem+json answer where the server can send one, else a close."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"type": problem.type, "title": problem.title, "status": problem.status,
                           "detail": problem.detail}).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
        await send({"type": "websocket.http.response.start", "status": problem.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def opening(service: NotificationService, stream: Stream, after: int | None) -> list[tuple[int, str, str]]:
    """The first messages of a stream: ``hello``, then the replay of what came after ``after``."""
    unread = await service.unread_count(stream.user_id)
    replay = await service.since(stream.user_id, after, REPLAY_LIMIT + 1) if after is not None else []
    complete = len(replay) <= REPLAY_LIMIT
    replay = replay[:REPLAY_LIMIT]
    if replay:
        stream.floor = replay[-1]["id"]
    hello = {"type": "hello", "unread": unread, "replayed": len(replay), "complete": complete}
    messages = [(0, "hello", json.dumps(hello))]
    messages += [(n["id"], "notification", json.dumps({"type": "notification", "notification": n})) for n in replay]
    return messages


def ping() -> tuple[int, str, str]:
    return (0, "ping", json.dumps({"type": "ping", "at": int(time.time())}))


async def serve_websocket(service: NotificationService, scope: Scope, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    try:
        user = await handshake_user(service, scope)
        after = after_of(scope)
        if after == -1:
            raise Problem(422, "after must be the id of the last notification seen (an integer).")
    except Problem as problem:
        await deny(scope, send, problem)
        return
    if SUBPROTOCOL in scope.get("subprotocols", ()):
        await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
    else:
        await send({"type": "websocket.accept"})
    # The handshake's headers, offered subprotocols and user (the stream keeps its ids) are
    # done with: kept in the scope for the life of the socket, they are KiBs per idle connection.
    scope["headers"], scope["subprotocols"] = [], []
    scope.get("state", {}).pop("user", None)
    hub = service.hub
    stream = hub.open(user.id, user.session_id)  # before the replay is read: nothing falls in between
    del user
    connection = asyncio.current_task()
    assert connection is not None
    # A full queue or an ended session interrupts this task wherever it waits (on a slow
    # client, or on the client's next message) so that it closes the socket.
    stream.on_end = connection.cancel

    send_text = partial(_send_text, send)
    try:
        for message in await opening(service, stream, after):
            await send_text(message[2])
        del message
        stream.start(send_text)  # from here the hub's deliveries and heartbeats are pushed
        while (await receive())["type"] != "websocket.disconnect":
            pass  # the client may say anything (pongs); it is not listened to
        return
    except asyncio.CancelledError:
        if stream.ended is None:
            raise  # the server is shutting down
        connection.uncancel()
    except OSError:
        return  # the client left while the opening was sent
    finally:
        stream.on_end = None
        hub.close(stream)
        stream.stop()
    code, reason = CLOSE_CODES.get(stream.ended, (1011, stream.ended))
    try:
        async with asyncio.timeout(1):  # a stalled client may never take it
            await send({"type": "websocket.close", "code": code, "reason": reason})
    except (TimeoutError, OSError, RuntimeError):
        pass


async def _send_text(send: Send, text: str) -> None:
    await send({"type": "websocket.send", "text": text})


def sse_response(service: NotificationService, user: CurrentUser, after: int | None) -> StreamingResponse:
    """The Server-Sent Events fallback: ``event:`` is the message's type, ``id:`` a notification's id."""
    hub, heartbeat = service.hub, service.settings.notifications_heartbeat_seconds

    async def events() -> AsyncIterator[str]:
        stream = hub.open(user.id, user.session_id)
        try:
            yield "retry: 3000\n\n"
            for message in await opening(service, stream, after):
                yield frame(message)
            while True:
                message = await stream.next(heartbeat)
                yield ": ping\n\n" if message is None else frame(message)
        except Ended:
            return
        finally:
            hub.close(stream)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def frame(message: tuple[int, str, str]) -> str:
    id_, kind, text = message
    return (f"id: {id_}\n" if id_ else "") + f"event: {kind}\ndata: {text}\n\n"
