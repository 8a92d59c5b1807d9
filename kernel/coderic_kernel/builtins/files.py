"""The ``files`` built-in plugin: the file API at ``/api/v1/files``, the clean-up cron job,
the ``storage`` health check and, on S3, the bucket's lifecycle rules.

The owner of a request is the signed-in user (``scope["state"]["user_id"]``, set by the
identity service); routes that need an owner answer 401 to guests. Another user's private file
is a 404, as if it did not exist, except for those holding ``files.manage_any`` (admins).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from coderic_sdk import (
    CronJob, FieldError, HealthCheck, JobContext, NotFound, Permission, PersonalData, PluginContext, Problem,
    RequestContext, Route, Schema, hookimpl,
)
from pydantic import Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ..personal_data import files as files_data
from ..storage.keys import content_disposition
from ..web import convertors  # noqa: F401  # {file_id:hex32}: /files/usage is never taken for an id
from ..storage.lifecycle import clean_up
from ..storage.multipart import read_upload
from ..storage.purposes import resolve
from ..storage.quotas import usage
from ..storage.records import FileRecord
from ..storage.service import FileStore, is_inline, store_for, to_stored

logger = logging.getLogger("coderic.files")
FILE_ID = r"^[0-9a-f]{32}$"
UNAUTHENTICATED = "Sign in to use files."
#: Served file bodies: nothing in them may run, even if a browser is tricked into rendering one.
FILE_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"




# --- schemas -------------------------------------------------------------------------------


class FileOut(Schema):
    id: str = Field(description="The file's id (32 hexadecimal characters).")
    purpose: str = Field(description="What the file is for, `<plugin>.<name>`.")
    filename: str = Field(description="The uploader's name for it: metadata only.")
    content_type: str = Field(description="Detected from the content's bytes, not taken from the client.")
    size: int = Field(description="Bytes (of a pending upload: the most it may have).")
    checksum: str = Field(description="SHA-256 of the stored content, hex (of a signed upload: once confirmed).")
    visibility: str = Field(description="`private` (the owner only) or `public` (anyone with the URL).")
    status: str = Field(description="`stored`, or `pending` for a signed upload not yet confirmed.")
    attached: bool = Field(description="Whether a plugin uses the file; unattached uploads of some purposes are deleted after a while.")
    variants: list[str] = Field(description="Resized copies of an image, by name.")
    created_at: datetime


class FileList(Schema):
    files: list[FileOut]


class UploadForm(Schema):
    """A multipart form: the text fields first, then the file."""

    purpose: str = Field(description="The purpose, `<plugin>.<name>`.")
    file: bytes = Field(description="The file. Its declared content type and filename extension are ignored.")


class UploadIn(Schema):
    purpose: str = Field(max_length=81, description="The purpose, `<plugin>.<name>`.")
    size: int = Field(ge=1, description="The file's exact size in bytes; the signed URL accepts no more.")
    content_type: str = Field(max_length=100, description="The type the upload must be sent as; checked again from the bytes on confirmation.")
    filename: str = Field("", max_length=1000, description="The uploader's name for the file (metadata only).")


class SignedUploadOut(Schema):
    file: FileOut
    method: str = Field(description="Always `POST`: a multipart form.")
    url: str = Field(description="Where to send the form.")
    fields: dict[str, str] = Field(description="Form fields to send, in this order, before the `file` part.")
    expires_at: datetime


class UsageOut(Schema):
    used_bytes: int = Field(description="Bytes the caller stores, across every plugin (pending uploads included).")
    files: int
    quota_bytes: int | None = Field(description="The per-user quota; `null`: unlimited.")
    remaining_bytes: int | None


class FilePath(Schema):
    file_id: str = Field(pattern=FILE_ID)


class ListQuery(Schema):
    purpose: str | None = Field(None, max_length=81)
    limit: int = Field(50, ge=1, le=200)


class ContentQuery(Schema):
    variant: str | None = Field(None, max_length=20, description="An image variant's name.")
    expires: str | None = Field(None, max_length=12, description="Expiry of a signed URL (disk storage), Unix time.")
    signature: str | None = Field(None, max_length=64, description="Signature of a signed URL (disk storage).")


class SignedQuery(Schema):
    expires: str = Field(max_length=12)
    signature: str = Field(max_length=64)


# --- helpers -------------------------------------------------------------------------------


def store_of(ctx: RequestContext[Any, Any, Any]) -> FileStore:
    return store_for(ctx.plugin.kernel)  # type: ignore[arg-type]  # the kernel's own plugin


def owner_of(request: Request, required: bool = True) -> str | None:
    owner = request.scope.get("state", {}).get("user_id")
    if owner is None and required:
        raise Problem(401, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    return None if owner is None else str(owner)


def out(record: FileRecord) -> FileOut:
    stored = to_stored(record)
    return FileOut(
        id=stored.id, purpose=stored.purpose, filename=stored.filename, content_type=stored.content_type,
        size=stored.size, checksum=stored.checksum, visibility=stored.visibility, status=stored.status,
        attached=stored.attached, variants=list(stored.variants), created_at=stored.created_at,
    )


async def readable(ctx: RequestContext[Any, Any, FilePath], owner: str | None) -> FileRecord:
    """The file, if the caller may read it: public, its owner's, or anyone's for those who may
    manage every file (admins). Otherwise a 404."""
    record = await store_of(ctx).record(ctx.path.file_id)
    if record is None or (record.visibility != "public" and (owner is None or record.owner != owner)
                          and not await ctx.plugin.permissions.allowed(ctx.user, MANAGE_ANY)):
        raise NotFound(f"File {ctx.path.file_id} does not exist.")
    return record


async def owned(ctx: RequestContext[Any, Any, FilePath]) -> FileRecord:
    """The file, if the caller may change it: their own, or anyone's for admins. Otherwise a 404."""
    owner = owner_of(ctx.request)
    record = await store_of(ctx).record(ctx.path.file_id)
    if record is None or (record.owner != owner and not await ctx.plugin.permissions.allowed(ctx.user, MANAGE_ANY)):
        raise NotFound(f"File {ctx.path.file_id} does not exist.")
    return record


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _purpose(store: FileStore, name: str) -> Any:
    purpose = resolve(store.purposes, None, name) if "." in name else None
    if purpose is None:
        known = ", ".join(sorted(store.purposes)) or "none"
        raise Problem(422, f"Unknown purpose {name!r}; known: {known}.",
                      errors=[FieldError("body.purpose", "not a registered file purpose", "unknown_purpose")])
    return purpose


# --- handlers ------------------------------------------------------------------------------


async def upload(ctx: RequestContext[None, None, dict[str, str]]) -> FileOut:
    owner = owner_of(ctx.request)
    store = store_of(ctx)
    form = await read_upload(ctx.request)
    purpose = _purpose(store, form.fields.get("purpose", ""))
    declared = ctx.request.headers.get("content-length")
    # The body's length bounds the file's: refuse at once what cannot fit, before reading it.
    allowance = await store.allowance(purpose, owner)
    if declared is not None and declared.isdigit() and int(declared) > allowance.limit + 64 * 1024:
        raise allowance.refuse(int(declared))
    record = await store.store(purpose, form.chunks, owner=owner, filename=form.filename, attached=False)
    return out(record)


async def list_files(ctx: RequestContext[None, ListQuery, dict[str, str]]) -> FileList:
    owner = owner_of(ctx.request)
    records = await store_of(ctx).list(str(owner), purpose=ctx.query.purpose, limit=ctx.query.limit)
    return FileList(files=[out(r) for r in records])


async def show_usage(ctx: RequestContext[None, None, dict[str, str]]) -> UsageOut:
    owner = owner_of(ctx.request)
    used = await usage(owner=owner)
    quota = store_of(ctx).settings.storage_user_quota_bytes
    remaining = None if quota is None else max(0, quota - used.used_bytes)
    return UsageOut(used_bytes=used.used_bytes, files=used.files, quota_bytes=quota, remaining_bytes=remaining)


async def begin_upload(ctx: RequestContext[UploadIn, None, dict[str, str]]) -> SignedUploadOut:
    owner = owner_of(ctx.request)
    store = store_of(ctx)
    body = ctx.body
    signed = await store.begin_upload(
        _purpose(store, body.purpose), owner=owner, size=body.size, content_type=body.content_type,
        filename=body.filename, base_url=base_url(ctx.request),
    )
    record = await store.record(signed.file.id)
    assert record is not None
    return SignedUploadOut(file=out(record), method=signed.method, url=signed.url, fields=dict(signed.fields),
                           expires_at=signed.expires_at)


async def receive_upload(ctx: RequestContext[None, SignedQuery, FilePath]) -> Response:
    store = store_of(ctx)
    file_id = ctx.path.file_id
    if not store.signer.valid("upload", file_id, "", ctx.query.expires, ctx.query.signature):
        raise Problem(403, "This upload URL is invalid or has expired.")
    record = await store.record(file_id)
    if record is None or record.status != "pending":
        raise NotFound(f"No upload is waiting for file {file_id}.")
    form = await read_upload(ctx.request)
    await store.receive_upload(record, form.chunks)
    return Response(status_code=204)


async def confirm_upload(ctx: RequestContext[None, None, FilePath]) -> FileOut:
    record = await owned(ctx)
    return out(await store_of(ctx).confirm_upload(record))


async def get_file(ctx: RequestContext[None, None, FilePath]) -> FileOut:
    return out(await readable(ctx, owner_of(ctx.request, required=False)))


async def file_content(ctx: RequestContext[None, ContentQuery, FilePath]) -> Response:
    store = store_of(ctx)
    query = ctx.query
    variant = query.variant or None
    if query.signature is not None or query.expires is not None:  # a signed URL of the disk backend
        if not store.signer.valid("download", ctx.path.file_id, variant or "", query.expires, query.signature):
            raise Problem(403, "This download URL is invalid or has expired.")
        record = await store.record(ctx.path.file_id)
        size = await store.backend.size(store.object_key(record, variant)) if record and record.status == "stored" else None
        if record is None or size is None:  # no record, or a lifecycle rule removed the object
            raise NotFound(f"File {ctx.path.file_id} does not exist.")
        return serve(store, record, variant, size)
    record = await readable(ctx, owner_of(ctx.request, required=False))
    if record.status != "stored":
        raise NotFound(f"File {ctx.path.file_id} has not been uploaded yet.")
    url = store.download_url(record, variant=variant, base_url=base_url(ctx.request))
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "private, no-store"})


def serve(store: FileStore, record: FileRecord, variant: str | None, size: int) -> Response:
    chunks = store.open(record, variant)
    headers = {
        "Content-Disposition": content_disposition(record.filename, is_inline(record.content_type)),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Cache-Control": "private, max-age=300" if record.visibility == "private" else "public, max-age=86400",
    }
    headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type=record.content_type, headers=headers)


async def delete_file(ctx: RequestContext[None, None, FilePath]) -> None:
    record = await owned(ctx)
    await store_of(ctx).remove(record)


# --- hooks ---------------------------------------------------------------------------------

TAGS = ("files",)
NEEDS_USER = {401: "No user is signed in."}
MANAGE_ANY = "files.manage_any"


@hookimpl
def register_permissions() -> list[Permission]:
    return [Permission(MANAGE_ANY, "Read and delete anyone's files, private ones included.", default_roles=())]


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    store_for(plugin.kernel)  # type: ignore[arg-type]  # collects every plugin's purposes now, at boot
    return [
        Route("POST", "", upload, name="upload", status_code=201, response=FileOut, raw_body={"multipart/form-data": UploadForm},
              responses={**NEEDS_USER, 413: "Larger than the purpose allows, or over a quota.",
                         415: "Not multipart, or the content's detected type is not allowed for the purpose.",
                         400: "The multipart body is malformed.", 422: "No file part, or an unknown purpose."},
              summary="Upload a file", tags=TAGS,
              description="A multipart form: `purpose` first, then `file`. The file is checked while it streams "
                          "(size, quotas, type detected from its bytes) and nothing refused is stored."),
        Route("GET", "", list_files, name="list_files", query=ListQuery, response=FileList, responses=NEEDS_USER,
              summary="The caller's files", description="Newest first.", tags=TAGS),
        Route("GET", "/usage", show_usage, name="usage", response=UsageOut, responses=NEEDS_USER,
              summary="Storage used and the quota", tags=TAGS),
        Route("POST", "/uploads", begin_upload, name="begin_upload", body=UploadIn, response=SignedUploadOut, status_code=201,
              responses={**NEEDS_USER, 413: "Larger than the purpose allows, or over a quota.", 415: "A type the purpose does not allow."},
              summary="Start a signed upload (large files)", tags=TAGS,
              description="Answers a URL and form fields to send the file to directly (an S3 presigned POST limited "
                          "to the size and type given), then confirm it with `POST /api/v1/files/uploads/{file_id}/confirm`."),
        Route("POST", "/uploads/{file_id:hex32}/content", receive_upload, name="receive_upload", path_params=FilePath,
              query=SignedQuery, status_code=204, raw_body={"multipart/form-data": UploadForm},
              responses={403: "The signature is wrong or expired.", 413: "Larger than the size signed.", 400: "Malformed multipart body."},
              summary="Receive a signed upload (disk storage)", tags=TAGS,
              description="The target of signed uploads when files are stored on disk; the URL is the credential."),
        Route("POST", "/uploads/{file_id:hex32}/confirm", confirm_upload, name="confirm_upload", path_params=FilePath, response=FileOut,
              responses={**NEEDS_USER, 409: "Nothing was uploaded yet.", 413: "Larger than signed.", 415: "A type the purpose does not allow."},
              summary="Confirm a signed upload", tags=TAGS,
              description="Checks the uploaded bytes (size, type from magic bytes; images re-encoded) and stores the file."),
        Route("GET", "/{file_id:hex32}", get_file, name="get_file", path_params=FilePath, response=FileOut,
              summary="A file's metadata", description="The owner's files, and public ones.", tags=TAGS),
        Route("GET", "/{file_id:hex32}/content", file_content, name="file_content", path_params=FilePath, query=ContentQuery,
              status_code=302, media_type=None,
              responses={200: "The file's bytes, at a signed URL of the disk backend.", 403: "The signature is wrong or expired."},
              summary="Download a file", tags=TAGS,
              description="Redirects to a signed URL (S3 presigned, or this path signed by the kernel), or to the CDN "
                          "for public files. Only raster images are served inline; everything else as an attachment."),
        Route("DELETE", "/{file_id:hex32}", delete_file, name="delete_file", path_params=FilePath, status_code=204,
              responses=NEEDS_USER, summary="Delete a file", description="The owner only.", tags=TAGS),
    ]


async def run_clean_up(ctx: JobContext) -> None:
    done = await clean_up(store_for(ctx.plugin.kernel))  # type: ignore[arg-type]
    if any((done.pending, done.orphans, done.expired, done.objects)):
        logger.info("storage clean-up: %s", done)


@hookimpl
def register_jobs() -> list[CronJob]:
    return [CronJob("clean_up", run_clean_up, minute=17)]  # hourly


@hookimpl
def register_personal_data(plugin: PluginContext) -> list[PersonalData]:
    return files_data.declarations(plugin.kernel)  # type: ignore[arg-type]


@hookimpl
def register_health_checks(plugin: PluginContext) -> list[HealthCheck]:
    store = store_for(plugin.kernel)  # type: ignore[arg-type]
    if not store.settings.storage_url.startswith("s3://"):
        return []  # a local folder is as reachable as the process itself

    async def storage() -> None:
        await store.backend.ping()

    return [HealthCheck("storage", storage)]


@hookimpl
def lifespan(plugin: PluginContext) -> Any:
    store = store_for(plugin.kernel)  # type: ignore[arg-type]

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        if store.settings.storage_url.startswith("s3://"):
            try:
                await store.backend.configure_lifecycle(store.settings.storage_lifecycle)
            except Exception as exc:  # serving matters more; the operator sees why
                logger.error("could not put the lifecycle rules on the bucket: %s: %s", type(exc).__name__, exc)
        try:
            yield
        finally:
            await store.close()

    return running()
