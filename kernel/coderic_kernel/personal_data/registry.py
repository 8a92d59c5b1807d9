"""Every plugin's personal-data declarations, collected once per kernel at boot, and the
order the kernel calls them in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from coderic_sdk import PersonalData, PluginContext

from ..errors import PluginError
from ..plugins.hooks import PluginHooks
from ..services.per_kernel import per_kernel

if TYPE_CHECKING:
    from ..kernel import Kernel

#: The plugin holding the account itself: its deletes run last of all, so every other plugin's
#: delete can still read the account (its email address) while it runs.
ACCOUNT_PLUGIN = "auth"


class PersonalDataRegistry:
    def __init__(self, declared: dict[str, list[PersonalData]]) -> None:
        self.declared = declared  # plugin -> its declarations, plugins in load order

    @classmethod
    def collect(cls, hooks: PluginHooks, contexts: Sequence[PluginContext]) -> PersonalDataRegistry:
        declared: dict[str, list[PersonalData]] = {}
        for plugin in contexts:
            entries = hooks.personal_data(plugin)
            names = [entry.name for entry in entries]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise PluginError(plugin.name, "register", f"personal data {', '.join(map(repr, twice))} declared twice")
            if entries:
                declared[plugin.name] = entries
        return cls(declared)

    def of(self, plugin: str) -> list[PersonalData]:
        return list(self.declared.get(plugin, []))

    def export_order(self) -> list[tuple[str, PersonalData]]:
        """Plugins in load order (built-ins first), each plugin's declarations in its order."""
        return [(plugin, entry) for plugin, entries in self.declared.items() for entry in entries]

    def delete_order(self) -> list[tuple[str, PersonalData]]:
        """Plugins in reverse load order (a plugin before those it requires), the account last."""
        plugins = [p for p in reversed(self.declared) if p != ACCOUNT_PLUGIN]
        if ACCOUNT_PLUGIN in self.declared:
            plugins.append(ACCOUNT_PLUGIN)
        return [(plugin, entry) for plugin in plugins for entry in self.declared[plugin]]


@per_kernel
def personal_data_for(kernel: Kernel) -> PersonalDataRegistry:
    """The kernel's registry, made on first use: the ``auth`` built-in asks while routes are
    collected at boot, so a bad declaration stops boot naming its plugin."""
    return PersonalDataRegistry.collect(kernel.hooks, list(kernel.contexts.values()))
