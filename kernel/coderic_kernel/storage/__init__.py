"""File storage: local disk or S3, signed URLs, validation, quotas, images and lifecycle.

One small module per concern: ``keys`` (kernel-made keys, safe filenames), ``signing``
(HMAC URLs for disk), ``sniff`` (types from magic bytes), ``quotas``, ``images`` (Pillow),
``multipart`` (streaming uploads), ``backends`` (disk and S3), ``records`` (the table),
``purposes``, ``lifecycle`` (rules and clean-up) and ``service`` (the pipeline every write
goes through). The built-in ``files`` plugin (``builtins/files.py``) serves the API.
"""

from .service import FileStore, PluginFiles

__all__ = ["FileStore", "PluginFiles"]
