"""Every plugin's file purposes, each named ``<plugin>.<name>``, collected once at boot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from coderic_sdk import FilePurpose, PluginContext

from ..errors import PluginError
from ..plugins.hooks import PluginHooks

#: Purposes with image variants are decoded in memory: their files must stay small.
IMAGE_MAX_BYTES = 32 * 1024 * 1024


def collect_purposes(hooks: PluginHooks, contexts: Sequence[PluginContext]) -> dict[str, FilePurpose]:
    purposes: dict[str, FilePurpose] = {}
    for plugin in contexts:
        for purpose in hooks.file_purposes(plugin):
            short = purpose.name.removeprefix(f"{plugin.name}.")
            if "." in short:
                raise PluginError(plugin.name, "register", f"file purpose {purpose.name!r} must be named '{plugin.name}.<name>'")
            full = f"{plugin.name}.{short}"
            if full in purposes:
                raise PluginError(plugin.name, "register", f"two file purposes are named {full!r}")
            if purpose.variants and purpose.max_bytes > IMAGE_MAX_BYTES:
                raise PluginError(
                    plugin.name, "register", f"file purpose {full!r}: images with variants are at most {IMAGE_MAX_BYTES} bytes"
                )
            purposes[full] = dataclasses.replace(purpose, name=full)
    return purposes


def resolve(purposes: Mapping[str, FilePurpose], plugin: str | None, name: str) -> FilePurpose | None:
    """``name`` in full, or short within ``plugin``; ``None`` when unknown (or another plugin's)."""
    full = name if "." in name else f"{plugin}.{name}"
    purpose = purposes.get(full)
    if purpose is None or (plugin is not None and not full.startswith(f"{plugin}.")):
        return None
    return purpose
