"""How the SQLite backend spells a search in SQL and FTS5: the visibility tokens each document
carries in its full-text row, the MATCH expression of the user's words, the tokenizer, and
filters compiled to SQL over the documents table with bound parameters."""

from __future__ import annotations

import hashlib
from typing import Any

from ..filters import Compare, Condition, Exists, In, Node, Range, render
from ..registry import RegisteredIndex
from .base import words

TYPES = {"keyword": "TEXT", "number": "REAL", "datetime": "REAL", "boolean": "INTEGER"}
ACCESS = "coderic_access"  # the FTS5 column of visibility tokens (a field may not take this name)
#: Visibility tokens: made-up words no text holds, matched like any word (same tokenizer both ways).
PUBLIC_TOKEN, MEMBERS_TOKEN, PRIVATE_TOKEN, PERMISSION_TOKEN = "qxvpub", "qxvmem", "qxvprv", "qxvprm"


def column_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    return int(value) if kind == "boolean" else value


def ident(name: str) -> str:
    assert name.replace("_", "").isalnum(), name
    return f'"{name}"'


def owner_token(owner: str) -> str:
    return "qxvo" + hashlib.sha256(owner.encode("utf-8")).hexdigest()[:20].translate(str.maketrans("0123456789", "ghijklmnop"))


def access_tokens(visibility: str, owner: str | None) -> str:
    token = {"public": PUBLIC_TOKEN, "members": MEMBERS_TOKEN, "private": PRIVATE_TOKEN}.get(visibility, PERMISSION_TOKEN)
    return token + (" " + owner_token(owner) if owner else "")


def hidden_expression(viewer: str | None) -> str:
    """What ``viewer`` may not see, as an FTS5 expression a query excludes with NOT: members-only
    and private documents for a guest, others' private ones for a member (permission-visible
    ones are checked after the backend). Excluding the few hidden documents, rather than
    matching the many visible ones, keeps the long list of public documents out of every query."""
    hidden = f"{MEMBERS_TOKEN} OR {PRIVATE_TOKEN}" if viewer is None else f"{PRIVATE_TOKEN} NOT {owner_token(viewer)}"
    return f"({ACCESS} : ({hidden}))"


def visibility_condition(viewer: str | None) -> tuple[str, list[Any]]:
    """The same rule as ``hidden_expression``, over the documents table (``d``)."""
    if viewer is None:
        return "d.visibility NOT IN ('members', 'private')", []
    return "(d.visibility != 'private' OR d.owner_id = ?)", [viewer]


def match_expression(q: str) -> str | None:
    """The FTS5 query for the user's words: every word must match, the last one as a prefix.
    Words are quoted, so nothing the user types is FTS5 syntax."""
    found = words(q)
    if not found:
        return None
    quoted = [f'"{w}"' for w in found]
    if len(found[-1]) > 1:
        quoted[-1] += "*"
    return " ".join(quoted)


def tokenizer(index: RegisteredIndex) -> str:
    return "porter unicode61 remove_diacritics 2" if index.spec.language == "english" else "unicode61 remove_diacritics 2"


def compile_filter(node: Node, index: RegisteredIndex, keywords: str) -> tuple[str, list[Any]]:
    """SQL for SQLite over the document's columns, two-valued (a missing value is false, never NULL)."""
    params: list[Any] = []
    table = ident(keywords)

    def value(attribute: str, v: Any) -> Any:
        return column_value(index.attributes[attribute].type, v)

    def condition(n: Condition, negated: bool) -> str:
        many = index.attributes[n.attribute].type == "keywords"
        column = f"d.{ident('a_' + n.attribute)}"
        if isinstance(n, Exists):
            if many:
                params.append(n.attribute)
                return f"(d.rowid IN (SELECT doc FROM {table} WHERE attr = ?))"
            return f"({column} IS NOT NULL)"
        if isinstance(n, In):
            marks = ", ".join("?" for _ in n.values)
            if many:
                params.append(n.attribute)
                params.extend(n.values)
                return f"(d.rowid IN (SELECT doc FROM {table} WHERE attr = ? AND value IN ({marks})))"
            params.extend(value(n.attribute, v) for v in n.values)
            return f"COALESCE({column} IN ({marks}), 0)"
        if isinstance(n, Range):
            params.extend([n.low, n.high])
            return f"COALESCE({column} BETWEEN ? AND ?, 0)"
        assert isinstance(n, Compare)
        if many:  # only = and != reach a list of keywords
            params.extend([n.attribute, n.value])
            sql = f"(d.rowid IN (SELECT doc FROM {table} WHERE attr = ? AND value = ?))"
        else:
            op = "=" if n.op == "!=" else n.op
            params.append(value(n.attribute, n.value))
            sql = f"COALESCE({column} {op} ?, 0)"
        return f"(NOT {sql})" if n.op == "!=" else sql

    return render(node, condition), params
