"""Start and stop the kernel with the server, speaking the ASGI lifespan protocol directly.

Starlette's own lifespan handling reports a failed start-up with a full traceback; the
kernel's start-up errors are meant to be one line (``plugin 'x' failed at start: ...``), so
``run_lifespan`` sends exactly that line to the server and keeps the error for the CLI.
The request pipeline calls it for lifespan scopes (one ASGI layer fewer per request).
"""

from __future__ import annotations

import gc
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from starlette.types import Receive, Send

from ...errors import StartupError, describe

if TYPE_CHECKING:
    from ...kernel import Kernel

logger = logging.getLogger("coderic.kernel")


async def run_lifespan(kernel: Kernel, receive: Receive, send: Send) -> None:
    """Answer the server's lifespan messages: start the kernel, and stop it at shutdown."""
    await receive()  # lifespan.startup
    stack = AsyncExitStack()
    try:
        await stack.enter_async_context(kernel.started(background=True))
    except StartupError as exc:
        kernel.startup_error = exc
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    except Exception as exc:
        logger.exception("the kernel failed to start")
        kernel.startup_error = StartupError(f"the kernel failed to start: {describe(exc)}")
        await send({"type": "lifespan.startup.failed", "message": str(kernel.startup_error)})
        return
    # Everything loaded so far (modules, plugins, schemas) lives as long as the process:
    # moving it out of the collector's sight keeps each collection as cheap as in a
    # small app, instead of re-scanning a large heap many times a second under load.
    gc.collect()
    gc.freeze()
    await send({"type": "lifespan.startup.complete"})
    await receive()  # lifespan.shutdown
    try:
        await stack.aclose()
    except Exception as exc:
        logger.exception("the kernel failed to stop cleanly")
        await send({"type": "lifespan.shutdown.failed", "message": describe(exc)})
        return
    await send({"type": "lifespan.shutdown.complete"})
