"""Pure ASGI middleware. Per-request concerns (request id, security headers, metrics and
access log) are separate modules composed into one layer by ``pipeline``."""

from .errors import UnhandledErrorMiddleware
from .pipeline import RequestPipeline
from .request_id import current_request_id

__all__ = ["RequestPipeline", "UnhandledErrorMiddleware", "current_request_id"]
