"""Fake installed plugins, and a throw-away project for the ``coderic`` command.

A fake plugin is what ``pip install`` would leave behind: a package and a
``<dist>-<version>.dist-info`` folder with ``METADATA`` and ``entry_points.txt``, in a folder put
on ``sys.path``. The kernel finds it through its real discovery (``importlib.metadata`` entry
points), so these tests exercise the mechanism operators rely on, not a mock of it.

Test modules import the fixtures they use: ``from fakeplugins import fake_plugins``.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.cli import main
from coderic_kernel.config import Configuration, load_configuration
from coderic_kernel.errors import PluginError
from coderic_kernel.kernel import Kernel

#: The SDK range every well-behaved fake declares.
SDK_REQUIREMENT = "coderic-sdk>=0.1"
#: Put before every fake plugin's code.
HEADER = "from coderic_sdk import hookimpl\n"


@dataclass(frozen=True)
class FakePlugin:
    """One installed distribution providing the plugin ``name``.

    ``code`` is the body of the entry-point module (``hookimpl`` is already imported);
    ``requires`` are its ``Requires-Dist`` lines: the SDK range and other distributions.
    """

    name: str
    code: str = ""
    requires: Sequence[str] = (SDK_REQUIREMENT,)
    distribution: str = ""
    version: str = "1.0.0"
    summary: str = ""

    @property
    def dist(self) -> str:
        return self.distribution or f"fake-{self.name.replace('_', '-')}"

    @property
    def module(self) -> str:
        return self.dist.replace("-", "_")

    def write(self, site: Path) -> None:
        package = site / self.module
        package.mkdir()
        (package / "__init__.py").write_text(HEADER + textwrap.dedent(self.code), encoding="utf-8")
        info = site / f"{self.module}-{self.version}.dist-info"
        info.mkdir()
        metadata = [
            "Metadata-Version: 2.1",
            f"Name: {self.dist}",
            f"Version: {self.version}",
            f"Summary: {self.summary}",
            *(f"Requires-Dist: {line}" for line in self.requires),
        ]
        (info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[coderic.plugins]\n{self.name} = {self.module}\n", encoding="utf-8")


class FakeSite:
    """A folder on ``sys.path`` that fake plugins are installed into."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def install(self, *plugins: FakePlugin) -> None:
        for plugin in plugins:
            plugin.write(self.root)
            self.modules.append(plugin.module)
        importlib.invalidate_caches()  # also clears importlib.metadata's path cache

    def forget(self) -> None:
        for name in list(sys.modules):
            if name.split(".", 1)[0] in self.modules:
                del sys.modules[name]


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """Install fake plugins with ``fake_plugins.install(FakePlugin(...), ...)``."""
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    site = FakeSite(root)
    yield site
    site.forget()


# Booting a kernel in-process ------------------------------------------------------------


def configuration(
    *enabled: str, settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Configuration:
    """An isolated kernel's configuration: no files read; ``enabled`` plugins (when given) and
    ``settings`` (dotted keys: ``plugins.hello.greeting``) in the override layer."""
    overrides = {**({"plugins.enabled": list(enabled)} if enabled else {}), **(settings or {})}
    return load_configuration(environ=environ or {}, overrides=overrides, read_files=False)


def boot(*enabled: str, settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Kernel:
    return Kernel.boot(configuration(*enabled, settings=settings, environ=environ))


def boot_error(
    *enabled: str, settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The message of the ``PluginError`` that stops boot, checked to be one line."""
    with pytest.raises(PluginError) as caught:
        boot(*enabled, settings=settings, environ=environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


# The ``coderic`` command in a project folder --------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


class Project:
    """A folder with a ``plugins.toml``, the working directory of ``coderic`` runs."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.capsys = capsys
        self.database = root / "var" / "coderic.db"

    def configure(self, enabled: Sequence[str] = (), *, database_url: str | None = None, extra: str = "") -> None:
        """Write ``plugins.toml``: a SQLite file under the project unless told otherwise."""
        url = database_url or f"sqlite:///{self.database}"
        names = ", ".join(f'"{name}"' for name in enabled)
        text = f'[kernel]\ndatabase_url = "{url}"\n\n[plugins]\nenabled = [{names}]\n\n{textwrap.dedent(extra)}'
        (self.root / "plugins.toml").write_text(text, encoding="utf-8")

    def run(self, *argv: str) -> Result:
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    def fails_to_start(self, *argv: str) -> str:
        """Run a command that must stop with exit 2 and one ``coderic: error:`` line; the line."""
        result = self.run(*argv)
        assert result.code == 2, result
        assert result.err.count("\n") == 1, result.err
        assert result.err.startswith("coderic: error: "), result.err
        return result.err.rstrip("\n").removeprefix("coderic: error: ")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Project:
    """An empty project folder as the working directory, with no ``CODERIC_*`` settings around."""
    for name in list(os.environ):
        if name.startswith("CODERIC_"):
            monkeypatch.delenv(name)
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    project = Project(root, capsys)
    project.configure()
    return project


class UserFromHeader:
    """Stands in for the identity middleware in fake plugins' ``register_middleware``: the
    ``X-Test-User`` header becomes ``scope["state"]["user_id"]``."""

    def __init__(self, app):  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-user":
                    scope.setdefault("state", {})["user_id"] = value.decode()
        await self.app(scope, receive, send)
