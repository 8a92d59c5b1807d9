"""Every plugin's search indexes (``register_search_indexes``), named ``<plugin>.<name>``, and
documents as the backends store them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from coderic_sdk import SearchAttribute, SearchDocument, SearchIndex

from ..errors import PluginError
from .filters import normalise_value

if TYPE_CHECKING:
    from ..plugins.hooks import PluginHooks
    from coderic_sdk import PluginContext

MAX_DATA_BYTES = 65_536
MAX_TEXT = 100_000
#: Characters no document keeps: the highlighting markers of every backend, and NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MARK_START = "\x02"
MARK_END = "\x03"


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document ready for a backend: texts per field, normalised attributes, and what the
    hit shows (``data``) and who may see it."""

    id: str
    texts: Mapping[str, str]
    attrs: Mapping[str, Any]
    data: Mapping[str, Any]
    visibility: str
    owner_id: str | None
    resource_type: str | None
    resource_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "texts": dict(self.texts), "attrs": dict(self.attrs), "data": dict(self.data),
                "visibility": self.visibility, "owner_id": self.owner_id, "resource_type": self.resource_type,
                "resource_id": self.resource_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredDocument:
        return cls(**{k: data[k] for k in ("id", "texts", "attrs", "data", "visibility", "owner_id",
                                            "resource_type", "resource_id")})


def clean_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(clean_text(v) for v in value)
    return _CONTROL.sub(" ", str(value))[:MAX_TEXT]


@dataclass(frozen=True, eq=False)
class RegisteredIndex:
    """One declared index, under its full name."""

    name: str
    plugin: str
    spec: SearchIndex
    attributes: dict[str, SearchAttribute] = field(init=False)
    filterable: dict[str, SearchAttribute] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", {a.name: a for a in self.spec.attributes})
        object.__setattr__(self, "filterable", {a.name: a for a in self.spec.attributes if a.filterable})

    @property
    def slug(self) -> str:
        """``<plugin>__<name>``: the name backends give its tables and indexes."""
        return self.name.replace(".", "__")

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.spec.fields)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(f.weight for f in self.spec.fields)

    @property
    def title(self) -> str:
        """The heaviest field (the first of them on a tie)."""
        return max(self.spec.fields, key=lambda f: f.weight).name

    def signature(self) -> str:
        """What a backend's stored layout depends on: a change means a reindex."""
        return json.dumps({
            "fields": [[f.name, f.weight] for f in self.spec.fields],
            "attributes": [[a.name, a.type, a.filterable, a.facetable, a.sortable] for a in self.spec.attributes],
            "language": self.spec.language,
        }, sort_keys=True)

    def store(self, document: SearchDocument) -> StoredDocument:
        """``document`` as backends keep it; ``ValueError`` naming what is wrong."""
        fields = document.fields
        texts = {name: clean_text(fields.get(name)) for name in self.fields}
        attrs: dict[str, Any] = {}
        for name, attribute in self.attributes.items():
            value = fields.get(name)
            if value is None:
                continue
            try:
                if attribute.type == "keywords":
                    items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
                    normalised = sorted({normalise_value(attribute, v) for v in items if v is not None})
                    if normalised:
                        attrs[name] = normalised
                else:
                    attrs[name] = normalise_value(attribute, value)
            except ValueError as exc:
                raise ValueError(f"search document {document.id!r} of {self.name}: {exc}") from None
        data = {k: v for k, v in fields.items()}
        try:
            encoded = json.dumps(data, allow_nan=False, default=str, separators=(",", ":"))
        except ValueError as exc:
            raise ValueError(f"search document {document.id!r} of {self.name}: {exc}") from None
        if len(encoded) > MAX_DATA_BYTES:
            raise ValueError(f"search document {document.id!r} of {self.name} is over {MAX_DATA_BYTES} bytes as JSON")
        resource = document.resource
        return StoredDocument(
            id=document.id, texts=texts, attrs=attrs, data=json.loads(encoded), visibility=document.visibility,
            owner_id=document.owner_id, resource_type=None if resource is None else resource.type,
            resource_id=None if resource is None else resource.id,
        )


class SearchRegistry:
    def __init__(self, indexes: Iterable[RegisteredIndex] = ()) -> None:
        self.indexes: dict[str, RegisteredIndex] = {}
        for index in indexes:
            self.add(index)

    def add(self, index: RegisteredIndex) -> None:
        if index.name in self.indexes:
            raise PluginError(index.plugin, "register", f"search index {index.name!r} is declared twice")
        self.indexes[index.name] = index

    @classmethod
    def collect(cls, hooks: PluginHooks, plugins: Iterable[PluginContext]) -> SearchRegistry:
        registry = cls()
        for plugin in plugins:
            for spec in hooks.search_indexes(plugin):
                name = spec.name if "." in spec.name else f"{plugin.name}.{spec.name}"
                if not name.startswith(f"{plugin.name}."):
                    raise PluginError(plugin.name, "register", f"search index {spec.name!r} must be named '{plugin.name}.<name>'")
                registry.add(RegisteredIndex(name, plugin.name, replace(spec, name=name)))
        return registry

    def resolve(self, name: str, plugin: str | None = None) -> RegisteredIndex:
        """The index ``name`` (``<plugin>.<name>``, or ``<name>`` of ``plugin``); ``KeyError`` if none."""
        if plugin is not None and "." not in name:
            name = f"{plugin}.{name}"
        return self.indexes[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.indexes.values())

    def __len__(self) -> int:
        return len(self.indexes)
