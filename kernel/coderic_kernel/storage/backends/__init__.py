"""Where bytes go: a folder on disk or an S3 bucket, behind one small interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend, UploadForm

if TYPE_CHECKING:
    from ...config.model import KernelSettings

__all__ = ["Backend", "UploadForm", "open_backend"]


def open_backend(settings: KernelSettings) -> Backend:
    """The backend ``storage_url`` names. boto3 is imported only for ``s3://``."""
    if settings.storage_url.startswith("s3://"):
        from .s3 import S3Backend

        return S3Backend.from_settings(settings)
    from .local import LocalBackend

    return LocalBackend.from_url(settings.storage_url, settings.storage_buffer_bytes)
