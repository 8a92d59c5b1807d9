"""The WebSocket protocol ``coderic serve`` gives uvicorn drops the handshake's request and
response once the handshake is answered (web/websocket_protocol.py), and works as uvicorn's
own otherwise. Run against uvicorn's own class too: if a uvicorn release stops keeping them,
the "uvicorn keeps them" half fails and says the subclass has outlived its use."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from coderic_kernel.web.websocket_protocol import WS_PROTOCOL, LeanWebSocketProtocol, ReceiveQueue
from services import free_port
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Accept with a subprotocol, say hello, echo one message, close with 4000."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept", "subprotocol": "echo.v1"})
    await send({"type": "websocket.send", "text": "hello"})
    message = await receive()
    await send({"type": "websocket.send", "text": message["text"]})
    await send({"type": "websocket.close", "code": 4000, "reason": "done"})


@pytest.mark.parametrize(("ws", "keeps_handshake"), [(WS_PROTOCOL, False), ("websockets-sansio", True)])
async def test_the_handshake_is_let_go_once_answered_and_the_socket_works_as_before(ws: str, keeps_handshake: bool) -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(echo, host="127.0.0.1", port=port, ws=ws, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with connect(f"ws://127.0.0.1:{port}/", subprotocols=["echo.v1"], compression=None) as client:  # type: ignore[list-item]
            assert client.subprotocol == "echo.v1"
            assert await client.recv() == "hello"
            [protocol] = [c for c in server.server_state.connections if isinstance(c, WebSocketsSansIOProtocol)]
            assert isinstance(protocol, LeanWebSocketProtocol) is (ws == WS_PROTOCOL)
            held = (protocol.request is not None, protocol.response is not None)
            assert held == (keeps_handshake, keeps_handshake)
            await client.send("echo me")
            assert await client.recv() == "echo me"
            await client.wait_closed()
            assert client.close_code == 4000 and client.close_reason == "done"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def test_the_receive_queue_keeps_order_wakes_a_waiting_getter_and_passes_a_wake_on() -> None:
    queue = ReceiveQueue()
    assert queue.empty()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert not queue.empty() and [await queue.get(), await queue.get()] == [1, 2] and queue.empty()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("woken")
    assert await asyncio.wait_for(waiting, 1) == "woken"
    # Two wait; the first is woken, then cancelled before it runs: the item goes to the second.
    first, second = asyncio.create_task(queue.get()), asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("for whoever is left")
    first.cancel()
    assert await asyncio.wait_for(second, 1) == "for whoever is left"
    assert first.cancelled() and queue.empty()
