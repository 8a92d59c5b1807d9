"""The documentation keeps up with the code.

Every hook spec has a heading in docs/plugins.md, every kernel setting is in the
configuration reference, and every ``coderic`` command and option is in docs/cli.md.
Adding one of these without documenting it fails here, naming what is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pluggy
import pytest
from coderic_kernel.cli.root import KERNEL_COMMANDS, cli
from coderic_kernel.config import KernelSettings
from coderic_sdk import hookspecs
from coderic_sdk._markers import PROJECT_NAME

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"
CLI_DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"
HOOK_REFERENCE = "## Hook reference"


def hook_names() -> list[str]:
    """Every hook spec, as pluggy sees it after ``add_hookspecs``."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return sorted(name for name, caller in vars(pm.hook).items() if isinstance(caller, pluggy.HookCaller))


def hook_reference() -> str:
    """The "Hook reference" section of docs/plugins.md, up to the next level-2 heading."""
    text = PLUGINS_DOC.read_text(encoding="utf-8")
    assert HOOK_REFERENCE in text, f"docs/plugins.md has no '{HOOK_REFERENCE}' section"
    section = text.split(HOOK_REFERENCE, 1)[1]
    following = re.search(r"^## ", section, flags=re.MULTILINE)
    return section[: following.start()] if following else section


def kernel_commands() -> list[tuple[str, click.Command]]:
    """``(path, command)`` for every kernel command and subcommand: ``serve``, ``plugins list``."""
    found: list[tuple[str, click.Command]] = []

    def walk(path: str, command: click.Command) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{path} {name}", sub)

    for name, command in KERNEL_COMMANDS.items():
        walk(name, command)
    return found


def test_the_lists_checked_here_are_not_empty() -> None:
    assert hook_names()
    assert KernelSettings.model_fields
    assert kernel_commands()


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_spec_has_a_heading_in_the_hook_reference(hook: str) -> None:
    headings = re.findall(r"^### `([^`]+)`\s*$", hook_reference(), flags=re.MULTILINE)
    assert hook in headings, f"hook spec {hook!r} has no '### `{hook}`' heading under '{HOOK_REFERENCE}' in docs/plugins.md"


def test_the_hook_reference_documents_no_hook_that_does_not_exist() -> None:
    headings = re.findall(r"^### `([^`]+)`\s*$", hook_reference(), flags=re.MULTILINE)
    stale = sorted(set(headings) - set(hook_names()))
    assert not stale, f"docs/plugins.md documents hooks that coderic_sdk.hookspecs does not define: {stale}"


@pytest.mark.parametrize("key", list(KernelSettings.model_fields))
def test_every_kernel_setting_is_in_the_configuration_reference(key: str) -> None:
    variable = f"CODERIC_{key.upper()}"
    configuration = CONFIGURATION_DOC.read_text(encoding="utf-8")
    assert f"`{key}`" in configuration, f"kernel setting `{key}` is not described in docs/configuration.md"
    assert variable in configuration, f"{variable} is not named in docs/configuration.md"
    assert variable in README.read_text(encoding="utf-8"), f"{variable} is missing from the table in README.md"


@pytest.mark.parametrize(("path", "command"), kernel_commands(), ids=[p for p, _ in kernel_commands()])
def test_every_kernel_command_and_option_is_in_the_cli_reference(path: str, command: click.Command) -> None:
    text = CLI_DOC.read_text(encoding="utf-8")
    headings = re.findall(r"^#+ `coderic ([^`]+)`", text, flags=re.MULTILINE)
    assert any(heading.split()[: len(path.split())] == path.split() for heading in headings), (
        f"'coderic {path}' has no heading in docs/cli.md"
    )
    for param in command.params:
        if isinstance(param, click.Option):
            for option in param.opts:
                if option.startswith("--") and option != "--help":
                    assert f"`{option}" in text, f"option {option} of 'coderic {path}' is not in docs/cli.md"


def test_every_global_option_is_in_the_cli_reference() -> None:
    text = CLI_DOC.read_text(encoding="utf-8")
    options = [o for p in cli.params if isinstance(p, click.Option) for o in p.opts if o.startswith("--")]
    assert options
    missing = [option for option in options if f"`{option}" not in text]
    assert not missing, f"global options missing from docs/cli.md: {missing}"
