"""Process-wide set-up that belongs to the server process, not to a kernel instance."""

from __future__ import annotations

from ..config import KernelSettings
from .logs import configure_logging
from .sentry import init_sentry


def prepare_process(settings: KernelSettings) -> None:
    configure_logging(settings.log_level, settings.effective_log_format())
    init_sentry(settings)
