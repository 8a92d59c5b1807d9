"""Turn the enabled plugin names into registered, configured plugins, failing fast.

Phases, in order: discover (installed?), resolve (SDK range, requirements, order),
import, register (hook signatures), settings. Every failure is a ``PluginError``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace

import pluggy
from coderic_sdk import PluginInfo, PluginSettings, hookspecs
from coderic_sdk._markers import PROJECT_NAME
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from pydantic import ValidationError

from ..config import Configuration
from ..errors import PluginError, describe
from .builtin import BUILTINS, BuiltinPlugin
from .context import NoSettings
from .discovery import Candidate, discover_installed, sdk_version
from .hooks import HookObserver, PluginHooks
from .ordering import dependency_order


@dataclass(frozen=True)
class LoadedPlugin:
    info: PluginInfo
    settings: PluginSettings


@dataclass(frozen=True)
class LoadedPlugins:
    pm: pluggy.PluginManager
    hooks: PluginHooks
    plugins: tuple[LoadedPlugin, ...]


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    config: Configuration,
    *,
    builtins: tuple[BuiltinPlugin, ...] = BUILTINS,
    installed: dict[str, list[Candidate]] | None = None,
    observe_hook: HookObserver | None = None,
) -> LoadedPlugins:
    installed = discover_installed() if installed is None else installed
    builtin_names = {b.name for b in builtins}
    candidates = _enabled_candidates(config, installed, builtin_names)
    order = _resolve(candidates, config)

    pm = new_plugin_manager()
    hooks = PluginHooks(pm, observe_hook)
    loaded: list[LoadedPlugin] = []
    for builtin in builtins:
        module = importlib.import_module(builtin.module)
        info = builtin.info()
        _register(pm, info.name, module)
        loaded.append(_configure(hooks, info, config))
    for name in order:
        candidate = candidates[name]
        module = _import(candidate)
        _register(pm, name, module)
        loaded.append(_configure(hooks, candidate.info, config))
    with_hooks = tuple(
        LoadedPlugin(replace(p.info, hooks=hooks.implemented(p.info.name)), p.settings) for p in loaded
    )
    return LoadedPlugins(pm, hooks, with_hooks)


def _enabled_candidates(
    config: Configuration, installed: dict[str, list[Candidate]], builtin_names: set[str]
) -> dict[str, Candidate]:
    chosen: dict[str, Candidate] = {}
    for name in config.enabled:
        if name in builtin_names:
            raise PluginError(name, "discover", "is built into the kernel and always on; remove it from [plugins] enabled")
        found = installed.get(name)
        if not found:
            available = ", ".join(sorted(installed)) or "none"
            raise PluginError(
                name, "discover",
                f"enabled ({config.source('plugins.enabled')}) but not installed; installed plugins: {available}",
            )
        if len(found) > 1:
            dists = " and ".join(sorted(f"'{c.info.distribution}'" for c in found))
            raise PluginError(name, "discover", f"provided by two installed distributions, {dists}; uninstall one")
        chosen[name] = found[0]
    return chosen


def _resolve(candidates: dict[str, Candidate], config: Configuration) -> list[str]:
    running_sdk = Version(sdk_version())
    for name, candidate in candidates.items():
        sdk_range = candidate.info.sdk_range
        if not sdk_range:
            raise PluginError(
                name, "resolve",
                "does not declare the coderic-sdk versions it supports; add e.g. 'coderic-sdk>=0.1,<0.2' to its dependencies",
            )
        try:
            supported = SpecifierSet(sdk_range)
        except InvalidSpecifier as exc:
            raise PluginError(name, "resolve", f"invalid coderic-sdk range {sdk_range!r}") from exc
        if not supported.contains(running_sdk, prereleases=True):
            raise PluginError(name, "resolve", f"supports coderic-sdk {sdk_range}, but {running_sdk} is installed")
        for required in candidate.info.requires:
            if required not in candidates:
                raise PluginError(
                    name, "resolve", f"requires plugin '{required}', which is not enabled; add it to [plugins] enabled"
                )
    return dependency_order({name: c.info.requires for name, c in candidates.items()})


def _import(candidate: Candidate) -> object:
    assert candidate.entry_point is not None
    try:
        return candidate.entry_point.load()
    except BaseException as exc:  # a plugin's import may raise anything, SystemExit included
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise PluginError(candidate.info.name, "import", describe(exc)) from exc


def _register(pm: pluggy.PluginManager, name: str, plugin: object) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(name, "register", describe(exc)) from exc
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.spec is None:
            raise PluginError(name, "register", f"implements unknown hook '{caller.name}'")


def _configure(hooks: PluginHooks, info: PluginInfo, config: Configuration) -> LoadedPlugin:
    model = hooks.settings_model(info.name) or NoSettings
    values = config.plugin_values.get(info.name, {})
    try:
        settings = model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "?"
            top = str(error["loc"][0]) if error["loc"] else key
            if error["type"] == "missing":
                how = f"set [plugins.{info.name}] {top} or CODERIC_PLUGINS__{info.name.upper()}__{top.upper()}"
                problems.append(f"{key}: required; {how}")
                continue
            reason = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{key}: {reason} (from {config.plugin_source(info.name, top)})")
        raise PluginError(info.name, "settings", "; ".join(problems)) from exc
    return LoadedPlugin(info, settings)

