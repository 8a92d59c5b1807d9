"""The root group: kernel commands plus one group per plugin that contributes commands."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from ..errors import PluginError, StartupError
from ..plugins.builtin import BUILTINS
from .config_cmd import config
from .doctor import doctor
from .email_cmd import email
from .migrate import migrate
from .openapi_cmd import openapi
from .plugin_cmd import plugin
from .plugins_cmd import plugins
from .serve import serve
from .state import CliState
from .worker import jobs, worker

KERNEL_COMMANDS: dict[str, click.Command] = {
    c.name or "": c for c in (serve, worker, migrate, jobs, plugins, plugin, config, doctor, openapi, email)
}


class KernelGroup(click.Group):
    """Kernel commands are always there; plugin groups appear for enabled plugins."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = list(KERNEL_COMMANDS)
        try:
            enabled = _state(ctx).configuration().enabled
        except StartupError:
            enabled = ()  # ``coderic --help`` must work with a broken configuration
        return names + [name for name in (*_builtins_with_commands(), *enabled) if name not in KERNEL_COMMANDS]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in KERNEL_COMMANDS:
            return KERNEL_COMMANDS[name]
        state = _state(ctx)
        if name not in _builtins_with_commands() and name not in state.configuration().enabled:
            return None
        return plugin_group(state, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, KERNEL_COMMANDS[name].get_short_help_str(60)) for name in KERNEL_COMMANDS]
        formatter.write_paragraph()
        with formatter.section("Kernel commands"):
            formatter.write_dl(rows)
        plugin_names = [n for n in self.list_commands(ctx) if n not in KERNEL_COMMANDS]
        if plugin_names:
            with formatter.section("Plugin commands"):
                formatter.write_dl([(n, f"commands of the {n} plugin ('coderic {n} --help')") for n in plugin_names])


def plugin_group(state: CliState, name: str) -> click.Group:
    """``coderic <plugin>``: the commands the plugin returns from ``register_commands``."""
    kernel = state.kernel()
    plugin = kernel.plugin(name)
    group = click.Group(name, help=plugin.info.description or f"Commands of the {name} plugin.")
    for command in kernel.hooks.commands(plugin):
        if command.name in group.commands:
            raise PluginError(name, "commands", f"two commands are named {command.name!r}")
        group.add_command(command)
    return group


def _builtins_with_commands() -> list[str]:
    """Built-in plugins offering commands (``coderic auth ...``): always there, like the kernel's."""
    return [builtin.name for builtin in BUILTINS
            if hasattr(importlib.import_module(builtin.module), "register_commands")]


def _state(ctx: click.Context) -> CliState:
    return ctx.ensure_object(CliState)


@click.group(cls=KernelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar="CODERIC_CONFIG",
    help="Configuration file (default: ./plugins.toml if present).",
)
@click.option("--debug", is_flag=True, help="Show the full traceback of a start-up error.")
@click.version_option(package_name="coderic-kernel", prog_name="coderic")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """Run and manage a Coderic platform kernel and its plugins."""
    state = ctx.ensure_object(CliState)
    state.config_path = config_path
    if ctx.invoked_subcommand in KERNEL_COMMANDS:
        check_command_names(state)


def check_command_names(state: CliState) -> None:
    """Plugin names share the command namespace: ``coderic <plugin>`` must not hide a kernel command."""
    try:
        enabled = state.configuration().enabled
    except StartupError:
        return  # the command itself reports the configuration error
    for name in enabled:
        if name in KERNEL_COMMANDS:
            raise PluginError(name, "commands", f"'coderic {name}' is a kernel command; the plugin needs another name")
