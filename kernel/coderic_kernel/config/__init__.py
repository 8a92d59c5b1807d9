"""Configuration: one typed object from defaults, ``plugins.toml``, ``.env`` and ``CODERIC_*``."""

from .loader import Configuration, load_configuration
from .model import DatabaseURL, KernelSettings

__all__ = ["Configuration", "DatabaseURL", "KernelSettings", "load_configuration"]
