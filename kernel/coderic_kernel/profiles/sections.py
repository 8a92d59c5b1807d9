"""Profile sections plugins add (``register_profile_sections``), collected once at boot and
loaded for each profile shown."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from coderic_sdk import CurrentUser, ProfileSection

from ..errors import PluginError
from ..services.json_safe import to_json
from ..services.per_kernel import per_kernel

if TYPE_CHECKING:
    from ..kernel import Kernel

logger = logging.getLogger("coderic.profiles")


@per_kernel
def sections_for(kernel: Kernel) -> dict[str, ProfileSection]:
    """Every plugin's sections by full name (``<plugin>.<name>``), in plugin order. The ``auth``
    built-in asks while routes are collected, so a bad section stops boot naming its plugin."""
    found: dict[str, ProfileSection] = {}
    for plugin in kernel.contexts.values():
        for section in kernel.hooks.profile_sections(plugin):
            short = section.name.removeprefix(f"{plugin.name}.")
            if "." in short:
                raise PluginError(plugin.name, "register",
                                  f"profile section {section.name!r} must be named '{plugin.name}.<name>'")
            full = f"{plugin.name}.{short}"
            if full in found:
                raise PluginError(plugin.name, "register", f"two profile sections are named {full!r}")
            found[full] = dataclasses.replace(section, name=full)
    return found


async def load_sections(kernel: Kernel, user_id: str, viewer: CurrentUser | None) -> dict[str, dict[str, Any]]:
    """What each section shows ``viewer`` of the member's profile. A section that fails, or
    returns something other than a JSON-safe dict or ``None``, is left out and logged: one
    plugin's bug does not take every profile down."""
    shown: dict[str, dict[str, Any]] = {}
    for name, section in sections_for(kernel).items():
        try:
            data = await section.load(user_id, viewer)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise TypeError(f"load returned {type(data).__name__}, expected a dict or None")
            to_json(data, f"profile section {name}")
        except Exception:
            logger.exception("profile section %s failed for user %s; it is left out", name, user_id)
            continue
        shown[name] = data
    return shown
