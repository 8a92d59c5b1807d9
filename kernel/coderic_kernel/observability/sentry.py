"""Optional error tracking with Sentry: imported only when ``sentry_dsn`` is set."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..config import KernelSettings
from ..errors import ConfigError

_enabled = False


def init_sentry(settings: KernelSettings) -> None:
    global _enabled
    if settings.sentry_dsn is None:
        return
    try:
        import sentry_sdk
    except ImportError as exc:
        raise ConfigError(
            "sentry_dsn is set but sentry-sdk is not installed; install coderic-kernel[sentry]"
        ) from exc
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        release=f"coderic-kernel@{__version__}",
        default_integrations=False,  # no automatic patching of Starlette or logging: we report ourselves
        auto_enabling_integrations=False,
    )
    _enabled = True


def capture(exc: BaseException, **tags: Any) -> None:
    """Report an unhandled error with its tags (request id, plugin); a no-op without Sentry."""
    if not _enabled:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            if value:
                scope.set_tag(key, value)
        sentry_sdk.capture_exception(exc)
