"""File storage through the API against direct writes and reads of the same bytes, on local
disk and on S3 (SeaweedFS), and the server's memory while a file ten times larger than its
buffered-memory limit (``storage_buffer_bytes``) streams up and down. Always exits 0.

- Upload: ``POST /api/v1/files`` (multipart, streamed by the client) against writing the same
  chunks to a file on the same disk (local) or sending them as the same sequential 8 MiB
  multipart upload with boto3 (S3).
- Download: ``GET /api/v1/files/{id}/content`` followed to the signed URL (served by the
  kernel on disk; by S3 itself on S3) against reading the file (local) or ``GetObject`` (S3).
- Memory: the server's resident set size, sampled every 10 ms, before and during a transfer of
  ``--memory-factor`` x ``storage_buffer_bytes``. Target: it grows by less than twice
  ``storage_buffer_bytes`` (a server that buffered the file would grow by the file's size).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from _servers import (
    BENCH_DIR, HOST, BenchmarkError, Child, exit_on_sigterm, free_port, kernel_env, kernel_uvicorn_argv, median,
    serving, spread,
)

MiB = 1 << 20
BUFFER_BYTES = 8 * MiB
CHUNK = 256 * 1024
USER = "bench-user"
TESTS_DIR = BENCH_DIR.parent / "tests"

PLUGIN_MODULE = '''\
"""Benchmark plugin: a purpose for large files, and a user for every request."""

from coderic_sdk import FilePurpose, hookimpl
from starlette.middleware import Middleware


class BenchUser:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("state", {})["user_id"] = "bench-user"
        await self.app(scope, receive, send)


@hookimpl
def register_middleware():
    return [Middleware(BenchUser)]


@hookimpl
def register_file_purposes():
    return [FilePurpose("blob", max_bytes=8 * 1024 ** 3, allowed_types=("application/pdf",))]
'''


def make_plugin(site: Path) -> str:
    site.mkdir(parents=True, exist_ok=True)
    (site / "coderic_bench_storage.py").write_text(PLUGIN_MODULE)
    info = site / "coderic_bench_storage-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: coderic-bench-storage\nVersion: 0.1.0\n"
                                   "Requires-Dist: coderic-sdk>=0.1,<0.2\n")
    (info / "entry_points.txt").write_text("[coderic.plugins]\nbenchfiles = coderic_bench_storage\n")
    return "benchfiles"


def content(size: int) -> Iterator[bytes]:
    """``size`` bytes of a PDF-looking file (so its type is allowed), in chunks, never all at once."""
    block = hashlib.sha256(b"coderic").digest() * (CHUNK // 32)
    yield b"%PDF-1.7\n" + block[9:]
    sent = CHUNK
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        sent += len(piece)
        yield piece


def multipart(size: int, boundary: str = "coderic-bench-boundary") -> Iterator[bytes]:
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbenchfiles.blob\r\n'
           f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob.pdf"\r\n'
           "Content-Type: application/pdf\r\n\r\n").encode()
    yield from content(size)
    yield f"\r\n--{boundary}--\r\n".encode()


class RssSampler:
    """Peak resident set size of a process while the block runs (Linux ``/proc``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    @contextmanager
    def sampling(self) -> Iterator[RssSampler]:
        self.peak = self.rss()
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self._stop.clear()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.rss())


class Api:
    def __init__(self, child: Child) -> None:
        import httpx2

        self.base = f"http://{HOST}:{child.port}"
        self.client = httpx2.Client(base_url=self.base, timeout=300)

    def upload(self, size: int) -> str:
        answer = self.client.post("/api/v1/files", content=multipart(size),
                                  headers={"Content-Type": "multipart/form-data; boundary=coderic-bench-boundary"})
        if answer.status_code != 201:
            raise BenchmarkError(f"upload answered {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()["id"])

    def download(self, file_id: str) -> int:
        redirect = self.client.get(f"/api/v1/files/{file_id}/content")
        if redirect.status_code != 302:
            raise BenchmarkError(f"download answered {redirect.status_code}: {redirect.text[:300]}")
        received = 0
        with self.client.stream("GET", redirect.headers["location"]) as answer:
            for chunk in answer.iter_bytes(CHUNK):
                received += len(chunk)
        return received

    def delete(self, file_id: str) -> None:
        self.client.delete(f"/api/v1/files/{file_id}")


class DirectLocal:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def upload(self, size: int) -> str:
        path = self.root / f"direct-{time.monotonic_ns()}"
        with path.open("wb") as handle:
            for chunk in content(size):
                handle.write(chunk)
        return str(path)

    def download(self, name: str) -> int:
        received = 0
        with open(name, "rb") as handle:
            while chunk := handle.read(CHUNK):
                received += len(chunk)
        return received

    def delete(self, name: str) -> None:
        Path(name).unlink()


class DirectS3:
    """The same sequential multipart upload the kernel makes, from this process."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def upload(self, size: int) -> str:
        key = f"direct/{time.monotonic_ns()}"
        part = bytearray()
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        parts = []
        for chunk in content(size):
            part += chunk
            if len(part) >= BUFFER_BYTES:
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(part)))
                part.clear()
        if part:
            parts.append(self._part(key, upload_id, len(parts) + 1, bytes(part)))
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        return key

    def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        etag = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        return {"ETag": etag, "PartNumber": number}

    def download(self, key: str) -> int:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        received = 0
        while chunk := body.read(CHUNK):
            received += len(chunk)
        return received

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def throughput(api: Api, direct: Any, size: int, rounds: int) -> dict[str, list[float]]:
    """MiB/s of each way, interleaved: api up, direct up, api down, direct down, ..."""
    runs: dict[str, list[float]] = {"api upload": [], "direct upload": [], "api download": [], "direct download": []}
    for _ in range(rounds):
        for name, side in (("api", api), ("direct", direct)):
            seconds, handle = timed(lambda side=side: side.upload(size))
            runs[f"{name} upload"].append(size / MiB / seconds)
            seconds, received = timed(lambda side=side, handle=handle: side.download(handle))
            if received != size:
                raise BenchmarkError(f"{name} download returned {received} bytes, not {size}")
            runs[f"{name} download"].append(size / MiB / seconds)
            side.delete(handle)
    return runs


def memory(api: Api, child: Child, size: int) -> dict[str, float]:
    sampler = RssSampler(child.process.pid)
    api.delete(api.upload(BUFFER_BYTES))  # warm-up: imports, first part, connection
    before = sampler.rss()
    with sampler.sampling():
        file_id = api.upload(size)
    upload_peak = sampler.peak
    with sampler.sampling():
        api.download(file_id)
    download_peak = sampler.peak
    api.delete(file_id)
    return {"before": before / MiB, "upload_growth": (upload_peak - before) / MiB,
            "download_growth": (download_peak - before) / MiB, "file": size / MiB}


@contextmanager
def seaweed_server(workdir: Path) -> Iterator[Any]:
    sys.path.insert(0, str(TESTS_DIR))
    try:
        from seaweed import start_seaweed  # the tests' launcher: free ports, access key, readiness
    finally:
        sys.path.remove(str(TESTS_DIR))
    server = start_seaweed(workdir)
    try:
        yield server
    finally:
        server.stop()


def measure(backends: list[str], size: int, rounds: int, memory_factor: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="coderic-bench-storage-") as tmp, ExitStack() as stack:
        site = Path(tmp) / "site"
        plugin = make_plugin(site)
        for backend in backends:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            env = {**kernel_env(workdir, [plugin], [site]), "CODERIC_LOG_LEVEL": "WARNING",
                   "CODERIC_STORAGE_BUFFER_BYTES": str(BUFFER_BYTES), "CODERIC_STORAGE_USER_QUOTA_BYTES": str(1 << 50),
                   "CODERIC_RATE_LIMIT_ENABLED": "false"}
            if backend == "local":
                env["CODERIC_STORAGE_URL"] = f"file://{workdir / 'files'}"
                direct: Any = DirectLocal(workdir / "direct")
            else:
                try:
                    server = stack.enter_context(seaweed_server(workdir))
                except BaseException as exc:  # pytest's skip outside pytest: no weed binary
                    results[backend] = {"skipped": f"SeaweedFS did not start: {type(exc).__name__}: {exc}"}
                    continue
                bucket = server.new_bucket()
                env.update({f"CODERIC_{k.upper()}": str(v) for k, v in server.settings(bucket).items()})
                direct = DirectS3(server.client(), bucket)
            port = free_port()
            child = stack.enter_context(serving(kernel_uvicorn_argv(port), port, env, workdir))
            api = Api(child)
            throughput(api, direct, min(size, 4 * MiB), 1)  # warm-up, not counted
            runs = throughput(api, direct, size, rounds)
            results[backend] = {"runs": runs, "median": {k: median(v) for k, v in runs.items()},
                                "memory": memory(api, child, memory_factor * BUFFER_BYTES)}
    return {"backends": results, "size_mib": size / MiB, "rounds": rounds, "buffer_mib": BUFFER_BYTES / MiB,
            "memory_factor": memory_factor}


def report(result: dict[str, Any]) -> None:
    print(f"storage: {result['size_mib']:.0f} MiB files, {result['rounds']} interleaved rounds; "
          f"storage_buffer_bytes = {result['buffer_mib']:.0f} MiB")
    limit = 2 * result["buffer_mib"]
    for backend, data in result["backends"].items():
        if "skipped" in data:
            print(f"  {backend}: skipped ({data['skipped']})")
            continue
        medians = data["median"]
        for way in ("upload", "download"):
            api, direct = medians[f"api {way}"], medians[f"direct {way}"]
            print(f"  {backend:<5} {way:<8} api {api:7.1f} MiB/s (runs {spread(data['runs'][f'api {way}'], '.0f')})  "
                  f"direct {direct:7.1f} MiB/s (runs {spread(data['runs'][f'direct {way}'], '.0f')})  ratio {api / direct:.2f}")
        mem = data["memory"]
        worst = max(mem["upload_growth"], mem["download_growth"])
        verdict = "PASS" if worst < limit else "BELOW TARGET"
        print(f"  {backend:<5} memory   {mem['file']:.0f} MiB file: server RSS {mem['before']:.0f} MiB before, "
              f"+{mem['upload_growth']:.1f} MiB uploading, +{mem['download_growth']:.1f} MiB downloading "
              f"(target < +{limit:.0f} MiB)  {verdict}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local,s3", help="comma-separated: local, s3")
    parser.add_argument("--size-mib", type=int, default=32, help="size of each file of the throughput runs")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (interleaved api/direct)")
    parser.add_argument("--memory-factor", type=int, default=10, help="memory run: file size in storage_buffer_bytes")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    result = measure([b.strip() for b in args.backends.split(",") if b.strip()], args.size_mib * MiB, args.rounds,
                     args.memory_factor)
    report(result)
    return result


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
