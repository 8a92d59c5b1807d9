"""Pure ASGI middleware, one per module."""

from .errors import UnhandledErrorMiddleware
from .request_id import RequestIdMiddleware, current_request_id

__all__ = ["RequestIdMiddleware", "UnhandledErrorMiddleware", "current_request_id"]
