"""The Coderic kernel. Internal: plugins import ``coderic_sdk``, never this package."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coderic-kernel")
except PackageNotFoundError:  # pragma: no cover
    __version__ = "0.0.0"
