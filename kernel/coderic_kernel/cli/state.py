"""What the commands share: the configuration path, loaded once, and the kernel, booted once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from ..config import Configuration, load_configuration
from ..kernel import Kernel


@dataclass
class CliState:
    config_path: Path | None = None
    _configuration: Configuration | None = field(default=None, repr=False)
    _kernel: Kernel | None = field(default=None, repr=False)

    def configuration(self) -> Configuration:
        if self._configuration is None:
            self._configuration = load_configuration(self.config_path)
        return self._configuration

    def kernel(self) -> Kernel:
        if self._kernel is None:
            self._kernel = Kernel.boot(self.configuration())
        return self._kernel


pass_state = click.make_pass_decorator(CliState, ensure=True)
