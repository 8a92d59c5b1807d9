"""File storage (issue 6): the same tests on local disk and on a real S3 server (SeaweedFS),
through the API and through ``plugin.files``.

The ``media`` fake plugin declares the purposes and sets the request's user from an
``X-Test-User`` header (identity does not exist yet), so owner checks are exercised for real.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx2
import pytest
from coderic_kernel.storage.records import FileRecord
from coderic_kernel.storage.service import store_for
from fakeplugins import FakePlugin, FakeSite, fake_plugins  # noqa: F401
from PIL import Image
from seaweed import SeaweedS3, seaweed  # noqa: F401

MEDIA = FakePlugin("media", """
from coderic_sdk import FilePurpose
from fakeplugins import UserFromHeader
from starlette.middleware import Middleware


@hookimpl
def register_middleware():
    return [Middleware(UserFromHeader)]


@hookimpl
def register_file_purposes():
    return [
        FilePurpose("document", max_bytes=64 * 1024, allowed_types=("application/pdf", "text/plain")),
        FilePurpose("avatar", max_bytes=2_000_000, allowed_types=("image/png", "image/jpeg"), visibility="public",
                    variants={"small": 16, "medium": 48}),
        FilePurpose("video", max_bytes=40 * 1024 * 1024, allowed_types=("video/mp4",), attach=True),
    ]
""")
OTHER = FakePlugin("other", """
from coderic_sdk import FilePurpose


@hookimpl
def register_file_purposes():
    return [FilePurpose("note", max_bytes=1024, allowed_types=("text/plain",))]
""")

ANA = {"X-Test-User": "ana"}
BEA = {"X-Test-User": "bea"}
PDF = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" * 50 + b"%%EOF\n"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 2000


@dataclass
class Backend:
    kind: str
    root: Path | None = None
    s3: SeaweedS3 | None = None
    bucket: str = ""

    def objects(self) -> list[str]:
        """Every object stored, bookkeeping folders of the disk backend excepted."""
        if self.kind == "local":
            assert self.root is not None
            if not self.root.exists():
                return []
            return sorted(
                p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                if p.is_file() and p.relative_to(self.root).parts[0] not in (".partial", ".versions")
            )
        assert self.s3 is not None
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return Backend("local", root=tmp_path / "files")
    server: SeaweedS3 = request.getfixturevalue("seaweed")
    return Backend("s3", s3=server, bucket=server.new_bucket())


@pytest.fixture
def coderic_plugins(fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(MEDIA, OTHER)
    return ["media", "other"]


@pytest.fixture
def coderic_config(request: pytest.FixtureRequest, backend: Backend) -> dict[str, Any]:
    marker = request.node.get_closest_marker("coderic")
    config = dict(marker.kwargs.get("config", {})) if marker else {}
    config["public_url"] = "http://testserver"
    if backend.kind == "local":
        config["storage_url"] = f"file://{backend.root}"
    else:
        assert backend.s3 is not None
        config.update(backend.s3.settings(backend.bucket))
    return config


async def upload(client: Any, purpose: str, content: bytes, filename: str = "file.bin",
                 headers: dict[str, str] | None = None, content_type: str = "application/octet-stream") -> Any:
    return await client.post(
        "/api/v1/files", data={"purpose": purpose}, files={"file": (filename, content, content_type)},
        headers=ANA if headers is None else headers,
    )


async def fetch(client: Any, url: str) -> Any:
    """GET a URL the API handed out: the kernel's own (in-process) or the S3 server's."""
    if url.startswith("http://testserver"):
        return await client.get(url)
    async with httpx2.AsyncClient() as direct:
        return await direct.get(url)


async def download(client: Any, file_id: str, headers: dict[str, str] | None = None, variant: str = "") -> Any:
    path = f"/api/v1/files/{file_id}/content" + (f"?variant={variant}" if variant else "")
    redirect = await client.get(path, headers=ANA if headers is None else headers)
    assert redirect.status_code == 302, redirect.text
    return await fetch(client, redirect.headers["location"])


def png(size: tuple[int, int] = (64, 40), exif: bool = True) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    info = Image.Exif()
    info[0x010F] = "SecretCameraMaker"
    image.save(out, "PNG", exif=info.tobytes() if exif else b"")
    return out.getvalue()


# --- upload and download ---------------------------------------------------------------------


async def test_an_upload_streams_to_storage_and_downloads_through_a_signed_url(coderic_client, backend: Backend) -> None:
    created = await upload(coderic_client, "media.document", PDF, "contract.pdf", content_type="text/html")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["content_type"] == "application/pdf"  # detected, not the client's header
    assert (body["size"], body["filename"]) == (len(PDF), "contract.pdf")
    assert len(body["checksum"]) == 64
    assert backend.objects() == [f"private/media/document/{body['id'][:2]}/{body['id']}/original"]

    metadata = await coderic_client.get(f"/api/v1/files/{body['id']}", headers=ANA)
    assert metadata.json() == body
    got = await download(coderic_client, body["id"])
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith('attachment; filename="contract.pdf"')
    if backend.kind == "local":
        assert got.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in got.headers["content-security-policy"]

    listed = await coderic_client.get("/api/v1/files", headers=ANA)
    assert [f["id"] for f in listed.json()["files"]] == [body["id"]]
    assert (await coderic_client.delete(f"/api/v1/files/{body['id']}", headers=ANA)).status_code == 204
    assert backend.objects() == []
    assert (await coderic_client.get(f"/api/v1/files/{body['id']}", headers=ANA)).status_code == 404


async def test_expired_and_tampered_urls_are_refused(coderic_kernel, backend: Backend) -> None:
    client = coderic_kernel.client
    file_id = (await upload(client, "media.document", b"just some notes\n", "notes.txt")).json()["id"]
    files = coderic_kernel.plugin("media").files
    url = await files.download_url(file_id, expires_in=60)
    short = await files.download_url(file_id, expires_in=1)  # S3 signs whole seconds: it may last just over 0 s
    assert (await fetch(client, url)).status_code == 200

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = "signature" if backend.kind == "local" else "X-Amz-Signature"
    query[signature] = ("0" if query[signature][0] != "0" else "1") + query[signature][1:]
    tampered = parts._replace(query=urlencode(query)).geturl()
    assert (await fetch(client, tampered)).status_code == 403
    if backend.kind == "local":  # another file's id under this signature
        assert (await fetch(client, url.replace(file_id, "0" * 32))).status_code == 403
    await asyncio.sleep(2.1)
    assert (await fetch(client, short)).status_code == 403
    assert (await fetch(client, url)).status_code == 200


# --- validation --------------------------------------------------------------------------------


async def test_an_oversized_upload_is_refused_before_it_is_stored(coderic_client, backend: Backend) -> None:
    for big in (b"a" * (64 * 1024 + 1), b"a" * 200_000):  # cut while streaming; refused by its Content-Length
        refused = await upload(coderic_client, "media.document", big, "big.txt")
        assert refused.status_code == 413
        assert refused.json()["type"] == "https://coderic.org/problems/file-too-large"

    async def endless() -> AsyncIterator[bytes]:  # no Content-Length: cut while streaming
        boundary = b"b0undary"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nmedia.document\r\n'
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\n\r\n'
        for _ in range(100):
            yield b"b" * 4096

    streamed = await coderic_client.post(
        "/api/v1/files", content=endless(), headers={**ANA, "Content-Type": "multipart/form-data; boundary=b0undary"}
    )
    assert streamed.status_code == 413
    assert backend.objects() == []
    assert await FileRecord.count() == 0
    if backend.kind == "local":
        assert not any((backend.root / ".partial").iterdir())  # type: ignore[operator]


@pytest.mark.parametrize(("content", "detected"), [
    (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "text/html"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>', "image/svg+xml"),
    (b"#!/bin/sh\nrm -rf /\n", "text/x-script"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "application/xml"),
])
async def test_disguised_html_svg_and_scripts_are_refused(coderic_client, backend: Backend, content: bytes, detected: str) -> None:
    refused = await upload(coderic_client, "media.document", content, "harmless.txt", content_type="text/plain")
    assert refused.status_code == 415, refused.text
    assert refused.json()["detected_type"] == detected
    disguised = await upload(coderic_client, "media.avatar", content, "face.png", content_type="image/png")
    assert disguised.status_code == 415
    assert backend.objects() == []


@pytest.mark.parametrize("name", ["../../../etc/passwd", "evil\x00.txt", "invoice\u202etxt.exe", "a" * 300 + ".txt", "..", "C:\\x\\..\\y.txt"])
async def test_hostile_filenames_are_metadata_only(coderic_client, backend: Backend, name: str) -> None:
    created = await upload(coderic_client, "media.document", b"plain text\n", name)
    assert created.status_code == 201, created.text
    body = created.json()
    stored = body["filename"]
    assert "/" not in stored and "\\" not in stored and "\x00" not in stored and "\u202e" not in stored
    assert len(stored) <= 200
    assert backend.objects() == [f"private/media/document/{body['id'][:2]}/{body['id']}/original"]
    got = await download(coderic_client, body["id"])
    assert got.status_code == 200 and got.content == b"plain text\n"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment") and "\n" not in disposition and "/" not in disposition.split("filename*=")[0]


# --- quotas, owners ----------------------------------------------------------------------------


@pytest.mark.coderic(config={"storage_user_quota_bytes": 100_000, "storage_plugin_quota_bytes": 150_000})
async def test_quotas_per_user_and_per_plugin_are_reported_and_enforced(coderic_client, backend: Backend) -> None:
    first = await upload(coderic_client, "media.document", b"x" * 60_000, "a.txt")
    assert first.status_code == 201
    usage = (await coderic_client.get("/api/v1/files/usage", headers=ANA)).json()
    assert usage == {"used_bytes": 60_000, "files": 1, "quota_bytes": 100_000, "remaining_bytes": 40_000}
    over = await upload(coderic_client, "media.document", b"y" * 50_000, "b.txt")
    assert over.status_code == 413
    assert over.json()["type"] == "https://coderic.org/problems/quota-exceeded"
    assert over.json()["quota"] == "user"
    assert (await upload(coderic_client, "media.document", b"z" * 60_000, "c.txt", headers=BEA)).status_code == 201
    plugin_over = await upload(coderic_client, "media.document", b"w" * 40_000, "d.txt", headers={"X-Test-User": "cy"})
    assert plugin_over.status_code == 413
    assert plugin_over.json()["quota"] == "plugin"
    assert len(backend.objects()) == 2


async def test_another_users_private_file_is_not_found_and_requests_without_a_user_are_401(coderic_client, backend: Backend) -> None:
    file_id = (await upload(coderic_client, "media.document", PDF, "mine.pdf")).json()["id"]
    for method, path in [("GET", ""), ("GET", "/content"), ("DELETE", "")]:
        answer = await coderic_client.request(method, f"/api/v1/files/{file_id}{path}", headers=BEA)
        assert answer.status_code == 404, (method, path)
        anonymous = await coderic_client.request(method, f"/api/v1/files/{file_id}{path}")
        assert anonymous.status_code in (401, 404)
    assert (await coderic_client.get("/api/v1/files", headers=BEA)).json() == {"files": []}
    assert (await upload(coderic_client, "media.document", PDF, headers={})).status_code == 401
    assert (await coderic_client.get("/api/v1/files/usage")).status_code == 401
    assert len(backend.objects()) == 1


async def test_signed_in_owners_and_admins_reach_private_files_and_others_do_not(coderic_kernel, backend: Backend) -> None:
    """The same rules with real sign-ins (access tokens) instead of the test header."""
    owner = await coderic_kernel.sign_in(await coderic_kernel.create_user("ana@example.org"))
    other = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))
    admin = await coderic_kernel.sign_in(await coderic_kernel.create_user("root@example.org", roles=["admin"]))
    file_id = (await upload(owner, "media.document", PDF, "mine.pdf", headers={})).json()["id"]
    assert (await owner.get(f"/api/v1/files/{file_id}")).status_code == 200
    assert (await other.get(f"/api/v1/files/{file_id}")).status_code == 404
    assert (await other.delete(f"/api/v1/files/{file_id}")).status_code == 404
    assert (await admin.get(f"/api/v1/files/{file_id}")).json()["id"] == file_id
    assert (await admin.get(f"/api/v1/files/{file_id}/content")).status_code == 302
    assert (await admin.delete(f"/api/v1/files/{file_id}")).status_code == 204
    assert (await owner.get(f"/api/v1/files/{file_id}")).status_code == 404
    assert backend.objects() == []


# --- images ------------------------------------------------------------------------------------


async def test_images_get_variants_without_metadata_and_public_files_are_readable_by_anyone(coderic_client, backend: Backend) -> None:
    original = png()
    assert b"SecretCameraMaker" in original
    created = await upload(coderic_client, "media.avatar", original + b"<html><script>alert(1)</script>", "me.png")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["visibility"], body["variants"]) == ("public", ["small", "medium"])
    got = await download(coderic_client, body["id"], headers=BEA)  # public: any user
    assert got.status_code == 200
    assert got.headers["content-disposition"].startswith("inline")
    assert b"SecretCameraMaker" not in got.content and b"<script>" not in got.content
    assert Image.open(io.BytesIO(got.content)).size == (64, 40)
    small = await download(coderic_client, body["id"], variant="small")
    assert Image.open(io.BytesIO(small.content)).size == (16, 10)
    assert len(backend.objects()) == 3
    missing = await coderic_client.get(f"/api/v1/files/{body['id']}/content?variant=huge", headers=ANA)
    assert missing.status_code == 404


@pytest.mark.coderic(config={"storage_public_base_url": "https://cdn.example.org/files"})
async def test_public_files_have_stable_cdn_urls(coderic_client, backend: Backend) -> None:
    body = (await upload(coderic_client, "media.avatar", png(exif=False), "me.png")).json()
    redirect = await coderic_client.get(f"/api/v1/files/{body['id']}/content", headers=BEA)
    key = f"public/media/avatar/{body['id'][:2]}/{body['id']}/original"
    assert redirect.headers["location"] == f"https://cdn.example.org/files/{key}"


# --- signed uploads -----------------------------------------------------------------------------


async def send_form(client: Any, signed: dict[str, Any], content: bytes, content_type: str = "video/mp4") -> int:
    files = {"file": ("clip.mp4", content, content_type)}
    if signed["url"].startswith("http://testserver"):
        return int((await client.post(signed["url"], data=signed["fields"], files=files)).status_code)
    async with httpx2.AsyncClient() as direct:
        return int((await direct.post(signed["url"], data=signed["fields"], files=files)).status_code)


async def test_a_signed_upload_is_limited_by_size_and_checked_on_confirmation(coderic_kernel, backend: Backend) -> None:
    client = coderic_kernel.client
    begun = await client.post("/api/v1/files/uploads", headers=ANA,
                              json={"purpose": "media.video", "size": len(MP4), "content_type": "video/mp4", "filename": "talk.mp4"})
    assert begun.status_code == 201, begun.text
    signed = begun.json()
    file_id = signed["file"]["id"]
    assert signed["file"]["status"] == "pending"
    assert (await client.post(f"/api/v1/files/uploads/{file_id}/confirm", headers=ANA)).status_code == 409
    assert await send_form(client, signed, MP4 + b"extra") >= 400  # larger than signed
    assert await send_form(client, signed, MP4) in (200, 201, 204)
    assert (await client.post(f"/api/v1/files/uploads/{file_id}/confirm", headers=BEA)).status_code == 404
    confirmed = await client.post(f"/api/v1/files/uploads/{file_id}/confirm", headers=ANA)
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["status"], confirmed.json()["content_type"], confirmed.json()["attached"]) == ("stored", "video/mp4", False)
    assert backend.objects() == [f"private/media/video/{file_id[:2]}/{file_id}/original"]
    assert (await download(client, file_id)).content == MP4

    disguised = (await client.post("/api/v1/files/uploads", headers=ANA,
                                   json={"purpose": "media.video", "size": 100, "content_type": "video/mp4"})).json()
    assert await send_form(client, disguised, b"<html><script>x</script></html>") in (200, 201, 204)
    refused = await client.post(f"/api/v1/files/uploads/{disguised['file']['id']}/confirm", headers=ANA)
    assert refused.status_code == 415
    assert backend.objects() == [f"private/media/video/{file_id[:2]}/{file_id}/original"]
    too_big = await client.post("/api/v1/files/uploads", headers=ANA,
                                json={"purpose": "media.video", "size": 41 * 1024 * 1024, "content_type": "video/mp4"})
    assert too_big.status_code == 413
    wrong_type = await client.post("/api/v1/files/uploads", headers=ANA,
                                   json={"purpose": "media.video", "size": 10, "content_type": "text/html"})
    assert wrong_type.status_code == 415


async def test_a_confirmed_signed_upload_gets_the_checksum_of_what_is_stored_read_as_a_stream(coderic_kernel, backend: Backend) -> None:
    client = coderic_kernel.client
    size = 3 * 1024 * 1024 + 17  # more than one read chunk (1 MiB)
    first = MP4 + b"\x01" * (size - len(MP4))
    second = MP4 + b"\x02" * (size - len(MP4))  # the same URL used again before confirming: this one stays
    signed = (await client.post("/api/v1/files/uploads", headers=ANA,
                                json={"purpose": "media.video", "size": size, "content_type": "video/mp4"})).json()
    file_id = signed["file"]["id"]
    assert signed["file"]["checksum"] == ""
    assert await send_form(client, signed, first) in (200, 201, 204)
    assert await send_form(client, signed, second) in (200, 201, 204)

    store = store_for(coderic_kernel.kernel)
    chunks: list[int] = []
    read = store.backend.read

    async def counted(key: str) -> AsyncIterator[bytes]:
        async for chunk in read(key):
            chunks.append(len(chunk))
            yield chunk

    store.backend.read = counted  # type: ignore[method-assign]
    try:
        confirmed = await client.post(f"/api/v1/files/uploads/{file_id}/confirm", headers=ANA)
    finally:
        del store.backend.read
    assert confirmed.status_code == 200, confirmed.text
    expected = hashlib.sha256(second).hexdigest()
    assert (confirmed.json()["checksum"], confirmed.json()["size"]) == (expected, size)
    assert sum(chunks) == size and len(chunks) > 1 and max(chunks) <= 1024 * 1024  # streamed, never whole
    assert (await client.get(f"/api/v1/files/{file_id}", headers=ANA)).json()["checksum"] == expected
    assert (await coderic_kernel.plugin("media").files.get(file_id)).checksum == expected
    assert hashlib.sha256((await download(client, file_id)).content).hexdigest() == expected


# --- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.coderic(config={"storage_lifecycle": [
    {"prefix": "tmp/", "expire_days": 1}, {"prefix": "", "noncurrent_days": 30}, {"prefix": "public/media/", "expire_days": 7},
]})
async def test_lifecycle_rules_are_set_on_the_bucket_and_applied_to_local_files(coderic_kernel, backend: Backend) -> None:
    from coderic_kernel.storage.lifecycle import clean_up

    client = coderic_kernel.client
    store = store_for(coderic_kernel.kernel)
    if backend.kind == "s3":
        rules = {rule["ID"]: rule for rule in await store.backend.lifecycle()}  # type: ignore[attr-defined]
        assert rules["coderic-1"]["Filter"] == {"Prefix": "tmp/"} and rules["coderic-1"]["Expiration"] == {"Days": 1}
        assert rules["coderic-2"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
        assert rules["coderic-3"]["Filter"] == {"Prefix": "public/media/"} and rules["coderic-3"]["Expiration"] == {"Days": 7}
        assert "coderic-abort-incomplete-uploads" in rules
    assert "files.clean_up" in {cron.name for cron in coderic_kernel.kernel.jobs.registry.crons}

    kept = (await upload(client, "media.document", b"kept\n", "kept.txt")).json()["id"]
    orphan = (await client.post("/api/v1/files", headers=ANA, data={"purpose": "media.video"},
                                files={"file": ("v.mp4", MP4, "video/mp4")})).json()["id"]
    attached = (await client.post("/api/v1/files", headers=ANA, data={"purpose": "media.video"},
                                  files={"file": ("w.mp4", MP4, "video/mp4")})).json()["id"]
    await coderic_kernel.plugin("media").files.attach(attached)
    expired = (await upload(client, "media.avatar", png(exif=False), "old.png")).json()["id"]
    fresh = (await upload(client, "media.avatar", png(exif=False), "new.png")).json()["id"]
    abandoned = (await client.post("/api/v1/files/uploads", headers=ANA,
                                   json={"purpose": "media.video", "size": 100, "content_type": "video/mp4"})).json()
    assert await send_form(client, abandoned, MP4[:100]) in (200, 201, 204)
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    await FileRecord.update({FileRecord.created_at: long_ago}).where(
        FileRecord.uid.is_in([orphan, attached, abandoned["file"]["id"], expired])
    )
    if backend.kind == "local":
        assert backend.root is not None
        old = backend.root / "tmp" / ("f" * 32)  # a stray upload with no record, two days old
        old.write_bytes(b"stray")
        os.utime(old, (1, 1))

    done = await clean_up(store)
    assert (done.pending, done.orphans, done.expired) == (1, 1, 1)
    remaining = {r["uid"] for r in await FileRecord.select(FileRecord.uid)}
    assert remaining == {kept, attached, fresh}
    assert all("tmp/" not in key and expired not in key for key in backend.objects())
    if backend.kind == "local":  # deleted files wait as old versions for noncurrent_days
        assert backend.root is not None
        versions = list((backend.root / ".versions").rglob("*"))
        assert any(p.is_file() for p in versions)
        for path in versions:
            if path.is_file():
                os.utime(path, (1, 1))
        assert (await clean_up(store)).objects >= 1
        assert not any(p.is_file() for p in (backend.root / ".versions").rglob("*"))


# --- the plugin API -------------------------------------------------------------------------------


async def test_plugins_store_and_read_their_own_files_only(coderic_kernel, backend: Backend) -> None:
    media = coderic_kernel.plugin("media").files
    other = coderic_kernel.plugin("other").files

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"0123456789" * 100

    stored = await media.put("document", chunks(), owner="ana", filename="log.txt")
    assert (stored.size, stored.content_type, stored.purpose) == (10_000, "text/plain", "media.document")
    assert await media.read(stored.id) == b"0123456789" * 1000
    assert [f.id for f in await media.list("ana")] == [stored.id]
    assert await other.get(stored.id) is None
    assert await other.list("ana") == []
    with pytest.raises(ValueError, match="unknown file purpose"):
        await other.put("media.document", b"x")
    assert (await media.usage("ana")).used_bytes == 10_000
    assert await media.delete(stored.id)
    assert not await media.delete(stored.id)
    assert backend.objects() == []


# --- boot-time checks ------------------------------------------------------------------------------


def test_a_purpose_registered_twice_stops_boot(fake_plugins: FakeSite) -> None:  # noqa: F811
    from fakeplugins import boot_error

    fake_plugins.install(FakePlugin("twice", """
from coderic_sdk import FilePurpose

@hookimpl
def register_file_purposes():
    return [FilePurpose("a", max_bytes=1, allowed_types=("text/plain",)), FilePurpose("twice.a", max_bytes=1, allowed_types=("text/plain",))]
"""))
    assert boot_error("twice") == "plugin 'twice' failed at register: two file purposes are named 'twice.a'"


def test_storage_settings_are_checked() -> None:
    from coderic_kernel.config import KernelSettings
    from pydantic import ValidationError

    assert KernelSettings(storage_url="s3://my-bucket").storage_url == "s3://my-bucket"
    for bad in ("ftp://x", "s3://A_B", "file://"):
        with pytest.raises(ValidationError):
            KernelSettings(storage_url=bad)
    with pytest.raises(ValidationError, match="expire_days or noncurrent_days"):
        KernelSettings(storage_lifecycle=[{"prefix": "tmp/"}])


@pytest.mark.coderic(config={"storage_buffer_bytes": 5 * 1024 * 1024})
async def test_a_file_larger_than_the_buffer_is_stored_in_parts_and_read_back_whole(coderic_kernel, backend: Backend) -> None:
    media = coderic_kernel.plugin("media").files
    size = 11 * 1024 * 1024 + 123  # three S3 parts of 5 MiB, 5 MiB and the rest

    async def chunks() -> AsyncIterator[bytes]:
        yield MP4
        sent = len(MP4)
        while sent < size:
            piece = bytes([sent % 251]) * min(256 * 1024, size - sent)
            sent += len(piece)
            yield piece

    stored = await media.put("video", chunks(), owner="ana", filename="long.mp4")
    assert (stored.size, stored.content_type) == (size, "video/mp4")
    digest = hashlib.sha256()
    received = 0
    async for chunk in media.open(stored.id):
        digest.update(chunk)
        received += len(chunk)
    assert (received, digest.hexdigest()) == (size, stored.checksum)


async def test_a_signed_image_upload_gets_its_variants_on_confirmation(coderic_client, backend: Backend) -> None:
    image = png((100, 50))
    signed = (await coderic_client.post("/api/v1/files/uploads", headers=ANA,
                                        json={"purpose": "media.avatar", "size": len(image), "content_type": "image/png"})).json()
    assert await send_form(coderic_client, signed, image, "image/png") in (200, 201, 204)
    confirmed = await coderic_client.post(f"/api/v1/files/uploads/{signed['file']['id']}/confirm", headers=ANA)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["variants"] == ["small", "medium"]
    medium = await download(coderic_client, signed["file"]["id"], variant="medium")
    assert Image.open(io.BytesIO(medium.content)).size == (48, 24)
    got = await download(coderic_client, signed["file"]["id"])
    assert b"SecretCameraMaker" not in got.content
    assert len(backend.objects()) == 3


async def test_a_record_whose_object_is_gone_answers_404(coderic_kernel, backend: Backend) -> None:
    client = coderic_kernel.client
    file_id = (await upload(client, "media.document", b"soon gone\n", "gone.txt")).json()["id"]
    url = await coderic_kernel.plugin("media").files.download_url(file_id)
    store = store_for(coderic_kernel.kernel)
    record = await store.record(file_id)
    await store.backend.delete([record.key], ())  # as an expiry rule of the bucket would
    assert (await fetch(client, url)).status_code == 404
    with pytest.raises(Exception, match="no content any more"):
        await coderic_kernel.plugin("media").files.read(file_id)
