"""``coderic plugin new``: a separately installable plugin package to start from.

The package is rendered from ``template/`` (Jinja2; ``__package__`` in a path becomes the
Python package's name, ``.jinja`` is dropped). What it holds imports ``coderic_sdk`` only, never
``coderic_kernel``, and its tests pass as generated: ``tests/test_plugin_kit.py`` installs one
into a fresh environment and runs them.
"""

from __future__ import annotations

import keyword
import re
from datetime import datetime, timezone
from pathlib import Path

import jinja2

TEMPLATE = Path(__file__).parent / "template"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED = frozenset({"kernel", "email", "auth", "files", "notifications", "serve", "worker", "migrate", "jobs",
                      "plugins", "plugin", "config", "doctor", "openapi"})


class ScaffoldError(ValueError):
    """Why a plugin cannot be generated: one line for the command to print."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ScaffoldError(f"{name!r} is not a plugin name: a lower-case letter, then up to 39 letters, digits or '_'")
    if name in RESERVED or keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is taken by the kernel; choose another name")
    return name


def generate(name: str, destination: Path, *, description: str = "", author: str = "") -> list[Path]:
    """Write the package for plugin ``name`` into ``destination`` (which must not exist or be
    empty); return the files written, relative to it."""
    check_name(name)
    if destination.exists() and any(destination.iterdir()):
        raise ScaffoldError(f"{destination} exists and is not empty; choose another --directory")
    now = datetime.now(timezone.utc)
    context = {
        "name": name,
        "package": f"coderic_{name}",
        "distribution": f"coderic-{name.replace('_', '-')}",
        "title": name.replace("_", " ").title(),
        "description": description or f"The {name} plugin for the Coderic platform.",
        "author": author,
        "migration_id": now.strftime("%Y-%m-%dT%H:%M:%S:%f"),
        "migration_module": f"{name}_{now.strftime('%Y_%m_%dt%H_%M_%S_%f')}",
    }
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE), undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True, autoescape=False)
    written = []
    for source in sorted(p for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        relative = source.relative_to(TEMPLATE).as_posix()
        target = (relative.replace("__package__", context["package"]).replace("__migration__", context["migration_module"])
                  .replace("__name__", name))
        target = target.removesuffix(".jinja")
        path = destination / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(environment.get_template(relative).render(context), encoding="utf-8")
        written.append(Path(target))
    return written
