"""Optional Sentry reporting, checked against a local HTTP server that speaks Sentry's
envelope endpoint (real HTTP on loopback; no Sentry service exists here)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from coderic_kernel.config import load_configuration
from coderic_kernel.observability import sentry


class _Ingest(BaseHTTPRequestHandler):
    envelopes: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).envelopes.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sentry_server() -> Iterator[str]:
    _Ingest.envelopes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    finally:
        server.shutdown()
        server.server_close()


def _events() -> list[dict[str, object]]:
    events = []
    for envelope in _Ingest.envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2]):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


@pytest.mark.coderic(plugins=["hello"])
async def test_unhandled_error_reaches_sentry_with_request_id_and_plugin(coderic_client, sentry_server) -> None:
    import sentry_sdk

    settings = load_configuration(environ={"CODERIC_SENTRY_DSN": sentry_server}, read_files=False).kernel
    sentry.init_sentry(settings)
    try:
        response = await coderic_client.get("/api/v1/hello/boom", headers={"X-Request-ID": "sentry-req-0001"})
        assert response.status_code == 500
        sentry_sdk.flush(timeout=5)
        [event] = _events()
        assert event["tags"]["request_id"] == "sentry-req-0001"
        assert event["tags"]["plugin"] == "hello"
        assert event["tags"]["route"] == "/api/v1/hello/boom"
        assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    finally:
        sentry_sdk.get_client().close()
        sentry._enabled = False


def test_sentry_costs_nothing_when_not_configured(tmp_path) -> None:
    program = (
        "import sys\n"
        "from coderic_kernel.config import load_configuration\n"
        "from coderic_kernel.kernel import Kernel\n"
        "from coderic_kernel.web.app import create_app\n"
        "from coderic_kernel.observability.process import prepare_process\n"
        f"config = load_configuration(environ={{'CODERIC_DATABASE_URL': 'sqlite:///{tmp_path}/x.db'}}, read_files=False)\n"
        "prepare_process(config.kernel)\n"
        "create_app(Kernel.boot(config))\n"
        "assert 'sentry_sdk' not in sys.modules, 'sentry_sdk was imported'\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, cwd=tmp_path)
