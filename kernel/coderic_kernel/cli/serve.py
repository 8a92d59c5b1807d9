"""``coderic serve``: check everything, then hand the app to uvicorn."""

from __future__ import annotations

import asyncio
import os

import click
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ..errors import StartupError
from ..kernel import Kernel
from ..observability.process import prepare_process
from ..web.websocket_protocol import WS_PROTOCOL
from .state import CliState, pass_state

APP_FACTORY = "coderic_kernel.web.app:create_app"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.option("--migrate", is_flag=True, help="Apply pending migrations before serving.")
@pass_state
def serve(state: CliState, host: str, port: int, workers: int, reload: bool, migrate: bool) -> None:
    """Serve the combined API of the kernel and every enabled plugin."""
    kernel = state.kernel()  # every plugin check happens before a port is bound
    if workers > 1 and kernel.config.kernel.redis_url is None:
        raise StartupError(
            f"--workers {workers} needs redis_url: without Redis the cache, rate limits, events and jobs "
            "live in one process; run one worker, or set redis_url and run 'coderic worker' for the jobs"
        )
    prepare_process(kernel.config.kernel)
    asyncio.run(_prepare(kernel, migrate))
    common = {
        "host": host,
        "port": port,
        "log_config": None,  # logging is the kernel's (prepare_process)
        "access_log": False,  # the kernel writes its own access log
        "server_header": False,  # no server version on the wire
        "proxy_headers": False,  # X-Forwarded-* are trusted only from [kernel] trusted_proxies
        # WebSockets (the notification streams): uvicorn's sans-I/O implementation (no task of
        # its own per connection), lightened (web/websocket_protocol.py), and no compression: a
        # zlib context per socket would cost more memory than the whole idle connection, for
        # messages of a few hundred bytes.
        "ws": WS_PROTOCOL,
        "ws_per_message_deflate": False,
    }
    if workers == 1 and not reload:
        from ..web.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(kernel), **common))  # type: ignore[arg-type]
        try:
            server.run()
        except SystemExit as exit_:  # uvicorn exits 3 when start-up fails; ours is exit 2, one line
            if exit_.code != STARTUP_FAILURE:
                raise
            raise kernel.startup_error or StartupError(f"the server could not start on {host}:{port} (see the log)") from None
        return
    if state.config_path is not None:
        os.environ["CODERIC_CONFIG"] = str(state.config_path)  # read again by each worker
    uvicorn.run(APP_FACTORY, factory=True, workers=workers, reload=reload, **common)  # type: ignore[arg-type]


async def _prepare(kernel: Kernel, migrate: bool) -> None:
    """Apply migrations when asked; otherwise refuse to serve with any pending."""
    async with kernel.opened():
        await kernel.settle_migrations(migrate or None)
