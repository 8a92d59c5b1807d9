"""Start-up errors: each becomes one line on the terminal and exit code 2."""

from __future__ import annotations

from typing import Literal

#: The phases of a plugin's life in which boot can fail, in the order they run.
Phase = Literal[
    "discover", "resolve", "import", "register", "settings", "database", "routes",
    "middleware", "commands", "migrate", "start",
]


class StartupError(Exception):
    """Boot cannot go on. ``str(error)`` is the one line shown to the operator."""


class ConfigError(StartupError):
    """A setting is invalid: names the key, where its value came from, and what is accepted."""


class PluginError(StartupError):
    """A plugin failed at one phase of boot. The cause stays chained for ``--debug``."""

    def __init__(self, plugin: str, phase: Phase, cause: str | BaseException) -> None:
        self.plugin = plugin
        self.phase = phase
        self.reason = cause if isinstance(cause, str) else describe(cause)
        super().__init__(f"plugin '{plugin}' failed at {phase}: {self.reason}")


def describe(exc: BaseException) -> str:
    """``ExceptionType: message`` on one line (tracebacks are for ``--debug``)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
