"""Files in an S3 bucket: AWS S3, DigitalOcean Spaces, SeaweedFS, MinIO.

boto3 is imported with this module, which is imported only for ``s3://`` URLs. One client
is made per backend and reused by every request (boto3 clients are thread-safe). boto3 is
synchronous: each call runs in a thread. An upload holds at most one part in memory
(``storage_buffer_bytes``): small files are one ``PutObject``, larger ones a multipart upload
whose parts are sent as they fill, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..keys import check_key
from .base import UploadForm

if TYPE_CHECKING:
    from ...config.model import KernelSettings, LifecycleRule

READ_CHUNK = 1 << 20
RULE_PREFIX = "coderic-"


class S3Backend:
    kind = "s3"

    def __init__(self, bucket: str, client: Any, part_bytes: int) -> None:
        self.bucket = bucket
        self.client = client
        self.part_bytes = part_bytes

    @classmethod
    def from_settings(cls, settings: KernelSettings) -> S3Backend:
        bucket = settings.storage_url.removeprefix("s3://").rstrip("/")
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": settings.storage_s3_addressing},
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=32,
        )
        access, secret = settings.storage_s3_access_key, settings.storage_s3_secret_key
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.storage_s3_endpoint,
            region_name=settings.storage_s3_region,
            aws_access_key_id=access.get_secret_value() if access else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=config,
        )
        return cls(bucket, client, settings.storage_buffer_bytes)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.client, method), Bucket=self.bucket, **kwargs)

    async def write(self, key: str, chunks: AsyncIterator[bytes], content_type: str) -> None:
        check_key(key)
        part = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                part += chunk
                if len(part) >= self.part_bytes:
                    if upload_id is None:
                        created = await self._call("create_multipart_upload", Key=key, ContentType=content_type)
                        upload_id = created["UploadId"]
                    # The buffer itself is sent (no copy) and emptied once the part is stored.
                    parts.append(await self._part(key, upload_id, len(parts) + 1, part))
                    part.clear()
            if upload_id is None:
                await self._call("put_object", Key=key, Body=bytes(part), ContentType=content_type)
                return
            if part:
                parts.append(await self._part(key, upload_id, len(parts) + 1, part))
            await self._call("complete_multipart_upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(key, upload_id))
            raise

    async def _part(self, key: str, upload_id: str, number: int, body: bytearray) -> dict[str, Any]:
        answer = await self._call("upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"ETag": answer["ETag"], "PartNumber": number}

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
        except ClientError:
            pass  # the bucket's AbortIncompleteMultipartUpload rule sweeps it later

    async def read(self, key: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        try:
            answer = await self._call("get_object", Key=check_key(key))
        except ClientError as exc:
            raise _missing(exc, key) from exc
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, READ_CHUNK):
                yield chunk
        finally:
            body.close()

    async def head(self, key: str, length: int) -> bytes:
        try:
            answer = await self._call("get_object", Key=check_key(key), Range=f"bytes=0-{length - 1}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
                return b""
            raise _missing(exc, key) from exc
        return await asyncio.to_thread(answer["Body"].read)

    async def size(self, key: str) -> int | None:
        try:
            answer = await self._call("head_object", Key=check_key(key))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise
        return int(answer["ContentLength"])

    async def move(self, source: str, target: str) -> None:
        source, target = check_key(source), check_key(target)
        # Managed copy: one server-side CopyObject, or a multipart copy above 8 MiB; no bytes pass through us.
        await asyncio.to_thread(self.client.copy, {"Bucket": self.bucket, "Key": source}, self.bucket, target)
        await self._call("delete_object", Key=source)

    async def delete(self, keys: Sequence[str], rules: Sequence[LifecycleRule]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": check_key(key)} for key in keys[start : start + 1000]]
            await self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})

    def download_url(self, key: str, *, expires_in: int, disposition: str, content_type: str) -> str | None:
        params = {
            "Bucket": self.bucket, "Key": check_key(key),
            "ResponseContentDisposition": disposition, "ResponseContentType": content_type,
        }
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    def upload_form(self, key: str, *, size: int, content_type: str, expires_in: int) -> UploadForm | None:
        post = self.client.generate_presigned_post(
            self.bucket, check_key(key),
            Fields={"Content-Type": content_type},
            Conditions=[["content-length-range", 1, size], {"Content-Type": content_type}],
            ExpiresIn=expires_in,
        )
        return UploadForm(post["url"], dict(post["fields"]))

    async def configure_lifecycle(self, rules: Sequence[LifecycleRule]) -> None:
        await self._call("put_bucket_lifecycle_configuration", LifecycleConfiguration={"Rules": bucket_rules(rules)})

    async def expire(self, rules: Sequence[LifecycleRule]) -> int:
        return 0  # the bucket applies its lifecycle configuration itself

    async def lifecycle(self) -> list[dict[str, Any]]:
        """The bucket's rules as S3 reports them (for tests and ``coderic doctor``-like checks)."""
        try:
            return list((await self._call("get_bucket_lifecycle_configuration"))["Rules"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return []
            raise

    async def ping(self) -> None:
        await self._call("head_bucket")

    async def close(self) -> None:
        self.client.close()


def bucket_rules(rules: Sequence[LifecycleRule]) -> list[dict[str, Any]]:
    """The configuration's rules in S3's form, plus clean-up of abandoned multipart uploads."""
    made: list[dict[str, Any]] = []
    for number, rule in enumerate(rules, 1):
        entry: dict[str, Any] = {"ID": f"{RULE_PREFIX}{number}", "Filter": {"Prefix": rule.prefix}, "Status": "Enabled"}
        if rule.expire_days:
            entry["Expiration"] = {"Days": rule.expire_days}
        if rule.noncurrent_days:
            entry["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule.noncurrent_days}
        made.append(entry)
    made.append({
        "ID": f"{RULE_PREFIX}abort-incomplete-uploads", "Filter": {"Prefix": ""}, "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    })
    return made


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _missing(exc: ClientError, key: str) -> Exception:
    if _status(exc) == 404:
        return FileNotFoundError(key)
    return exc
