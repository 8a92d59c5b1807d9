"""Email templates: Jinja2, one subject, text and (optional) HTML part per language.

Files: ``<folder>/<language>/<name>.subject.txt``, ``<name>.txt``, ``<name>.html``. A template
named ``<plugin>.<name>`` is loaded as ``<plugin>/<language>/<name>.<part>`` from, in order:
the operator's ``email_templates_dir`` (same layout, so any template can be overridden file
by file), then the folders the plugin registered. HTML is autoescaped; text and subject are
not (they are not HTML), and a subject that renders with a line break is refused.

Every template may extend the shared layout: ``{% extends layout.html %}`` in HTML and
``{% extends layout.text %}`` in text (the email plugin's ``<language>/_layout.*``).

``collect`` gathers every plugin's templates at boot (the ``email`` plugin asks for them while
routes are collected), so a template named after another plugin, or registered twice, stops
boot with one line naming the plugin that registered it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from coderic_sdk import EmailTemplate, PluginContext

from ..errors import PluginError
from .message import check_header

if TYPE_CHECKING:
    from ..plugins.hooks import PluginHooks

PARTS = ("subject.txt", "txt", "html")
LAYOUT_PLUGIN = "email"


@dataclass(frozen=True)
class Registered:
    full_name: str
    plugin: str
    template: EmailTemplate


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    language: str


def discover(folder: Path) -> list[EmailTemplate]:
    """Every ``<language>/<name>.subject.txt`` under ``folder``, as a transactional template."""
    names = {path.name.removesuffix(".subject.txt") for path in folder.glob("*/*.subject.txt")}
    return [EmailTemplate(name, folder) for name in sorted(names)]


def collect(hooks: PluginHooks, contexts: Sequence[PluginContext]) -> list[Registered]:
    """Each plugin's templates, named ``<plugin>.<name>``; an ``EmailTemplate`` refines the
    template of that name found in a folder the plugin also returned."""
    registered: dict[str, Registered] = {}
    for plugin in contexts:
        items = hooks.email_templates(plugin)
        found: dict[str, EmailTemplate] = {}
        for folder in (item for item in items if not isinstance(item, EmailTemplate)):
            for template in discover(folder):
                _check_name(plugin.name, template.name, template.name)
                if template.name in found and found[template.name].folder != template.folder:
                    raise PluginError(plugin.name, "register", f"email template {plugin.name}.{template.name} "
                                      f"is in two folders: {found[template.name].folder} and {template.folder}")
                found[template.name] = template
        explicit: dict[str, EmailTemplate] = {}
        for item in items:
            if isinstance(item, EmailTemplate):
                short = _check_name(plugin.name, item.name, item.name.removeprefix(f"{plugin.name}."))
                if short in explicit:
                    raise PluginError(plugin.name, "register", f"email template {plugin.name}.{short} is registered twice")
                explicit[short] = dataclasses.replace(item, name=short)
        for template in {**found, **explicit}.values():  # a plugin's names start with its own: no clash across plugins
            full = f"{plugin.name}.{template.name}"
            registered[full] = Registered(full, plugin.name, template)
    return list(registered.values())


def _check_name(plugin: str, name: str, short: str) -> str:
    if not short or "." in short or "/" in short:
        raise PluginError(plugin, "register", f"email template {name!r} must be named '{plugin}.<name>' (or just '<name>')")
    return short


class Templates:
    def __init__(self, registered: Iterable[Registered], override_dir: Path | None, default_language: str) -> None:
        self.by_name = {entry.full_name: entry for entry in registered}
        self.default_language = default_language
        folders: dict[str, list[str]] = {}
        for entry in self.by_name.values():
            paths = folders.setdefault(entry.plugin, [])
            if str(entry.template.folder) not in paths:
                paths.append(str(entry.template.folder))
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.PrefixLoader({plugin: jinja2.FileSystemLoader(paths) for plugin, paths in folders.items()}))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def get(self, name: str) -> Registered:
        entry = self.by_name.get(name)
        if entry is None:
            known = ", ".join(sorted(self.by_name)) or "none"
            raise ValueError(f"unknown email template {name!r}; templates: {known}")
        return entry

    def _path(self, entry: Registered, language: str, part: str) -> str:
        return f"{entry.plugin}/{language}/{entry.template.name}.{part}"

    def has(self, entry: Registered, language: str, part: str) -> bool:
        try:
            self.env.get_template(self._path(entry, language, part))
        except jinja2.TemplateNotFound:
            return False
        return True

    def language_for(self, entry: Registered, wanted: Iterable[str | None]) -> str:
        """The first wanted language the template exists in, then the default, then any."""
        for language in [*wanted, self.default_language, "en", "es"]:
            if language and self.has(entry, language, "subject.txt"):
                return language
        raise ValueError(f"email template {entry.full_name!r} has no {entry.template.name}.subject.txt in any language")

    def render(self, name: str, context: Mapping[str, Any], languages: Iterable[str | None] = ()) -> Rendered:
        entry = self.get(name)
        language = self.language_for(entry, languages)
        values = {
            **context,
            "language": language,
            "layout": {
                "html": f"{LAYOUT_PLUGIN}/{language}/_layout.html",
                "text": f"{LAYOUT_PLUGIN}/{language}/_layout.txt",
            },
        }
        subject = self.env.get_template(self._path(entry, language, "subject.txt")).render(values).strip()
        check_header("Subject", subject)
        text = self.env.get_template(self._path(entry, language, "txt")).render(values)
        html = None
        if self.has(entry, language, "html"):
            html = self.env.get_template(self._path(entry, language, "html")).render(values)
        return Rendered(subject, text, html, language)
