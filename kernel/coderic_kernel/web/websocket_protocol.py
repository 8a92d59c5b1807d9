"""The WebSocket protocol ``coderic serve`` gives uvicorn: its sans-I/O one, lighter per idle
connection.

An idle notification stream is mostly uvicorn's own state, so that is where memory per
connection is saved. uvicorn keeps the handshake's request and response, headers and all,
for the life of the connection, though it reads neither once the handshake is answered:
this subclass lets them go then. And the queue of messages for the application is an
``asyncio.Queue``, whose three deques hold a 64-slot block each even when empty (some 2 KiB):
here it is ``ReceiveQueue``, the three methods uvicorn uses over one list.
uvicorn takes it by import path for its ``ws`` setting (``--ws`` on its command line):
``WS_PROTOCOL``. ``tests/test_websocket_protocol.py`` checks that what it clears is still
what uvicorn keeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


WS_PROTOCOL = "coderic_kernel.web.websocket_protocol:LeanWebSocketProtocol"


class ReceiveQueue:
    """``asyncio.Queue``'s ``put_nowait``, ``get`` and ``empty``, unbounded, in a list."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._getters: list[asyncio.Future[None]] | None = None  # made when someone waits

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_one()

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled():
                    self._wake_one()  # it was woken for an item it will not take: the next one may
                raise
            finally:
                self._getters.remove(getter)
                if not self._getters:
                    self._getters = None
        return self._items.pop(0)

    def _wake_one(self) -> None:
        for getter in self._getters or ():
            if not getter.done():
                getter.set_result(None)
                return


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # After the handshake uvicorn reads neither; each holds a copy of the headers.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
