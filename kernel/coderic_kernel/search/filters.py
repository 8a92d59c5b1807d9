"""The filter syntax of search (``filter=`` of ``GET /api/v1/search``), parsed into a tree.

    status = open AND (budget >= 100 OR tags IN [python, "machine learning"]) AND NOT remote = false

Grammar (keywords in any case)::

    expression := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | "(" expression ")" | condition
    condition  := attribute ("=" | "!=" | ">" | ">=" | "<" | "<=") value
                | attribute ["NOT"] "IN" "[" value ("," value)* "]"
                | attribute ["NOT"] "EXISTS"
                | attribute value "TO" value            (inclusive range)
    value      := "double quoted" | 'single quoted' | a bare word or number (letters, digits, _ . : + -)

Every attribute must be a filterable attribute of the index, and every value must fit its type
(a number for ``number``, ``true``/``false`` for ``boolean``, an ISO 8601 date or time for
``datetime``); ``>``, ``<``, ranges only apply to numbers and dates. A bad filter raises
``FilterError`` naming the problem and where it is. The tree is compiled by each backend into
its own query with bound parameters (``compile_*``): user text never becomes query syntax.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Union

from coderic_sdk import SearchAttribute

MAX_LENGTH = 2000
MAX_DEPTH = 16
MAX_CONDITIONS = 64
MAX_VALUES = 100

OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>!=|>=|<=|=|>|<)
      | (?P<punct>[()\[\],])
      | "(?P<dq>(?:[^"\\]|\\.)*)"
      | '(?P<sq>(?:[^'\\]|\\.)*)'
      | (?P<word>[A-Za-z0-9_.:+\-]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "EXISTS", "TO"}


class FilterError(ValueError):
    """A filter that cannot be used: ``message`` says why, ``position`` where (0-based)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.message = message
        self.position = position
        super().__init__(message if position is None else f"{message} (at character {position + 1})")


@dataclass(frozen=True, slots=True)
class Compare:
    attribute: str
    op: str  # one of OPERATORS
    value: Any  # normalised: str, float, bool


@dataclass(frozen=True, slots=True)
class In:
    attribute: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Exists:
    attribute: str


@dataclass(frozen=True, slots=True)
class Range:
    attribute: str
    low: Any
    high: Any


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Union[Compare, In, Exists, Range, Not, And, Or]
Condition = Union[Compare, In, Exists, Range]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # op, punct, string, word, keyword, end
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            start = position + len(text[position:]) - len(text[position:].lstrip())
            raise FilterError(f"unexpected character {text[start]!r}", start)
        start = match.start(match.lastgroup) if match.lastgroup else position
        if match.lastgroup == "op":
            found.append(_Token("op", match.group("op"), start))
        elif match.lastgroup == "punct":
            found.append(_Token("punct", match.group("punct"), start))
        elif match.lastgroup in ("dq", "sq"):
            raw = match.group(match.lastgroup)
            found.append(_Token("string", re.sub(r"\\(.)", r"\1", raw), start - 1))
        else:
            word = match.group("word")
            kind = "keyword" if word.upper() in _KEYWORDS else "word"
            found.append(_Token(kind, word.upper() if kind == "keyword" else word, start))
        position = match.end()
    found.append(_Token("end", "", len(text)))
    return found


class _Parser:
    def __init__(self, text: str, attributes: Mapping[str, SearchAttribute]) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.attributes = attributes
        self.conditions = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, kind: str, text: str, what: str) -> _Token:
        token = self.take()
        if token.kind != kind or token.text != text:
            raise FilterError(f"expected {what}, found {describe(token)}", token.position)
        return token

    def parse(self) -> Node:
        node = self.or_(0)
        token = self.peek()
        if token.kind != "end":
            raise FilterError(f"expected AND, OR or the end of the filter, found {describe(token)}", token.position)
        return node

    def or_(self, depth: int) -> Node:
        operands = [self.and_(depth)]
        while self.peek().kind == "keyword" and self.peek().text == "OR":
            self.take()
            operands.append(self.and_(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_(self, depth: int) -> Node:
        operands = [self.not_(depth)]
        while self.peek().kind == "keyword" and self.peek().text == "AND":
            self.take()
            operands.append(self.not_(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise FilterError(f"the filter nests more than {MAX_DEPTH} levels deep", self.peek().position)
        token = self.peek()
        if token.kind == "keyword" and token.text == "NOT":
            self.take()
            return Not(self.not_(depth + 1))
        if token.kind == "punct" and token.text == "(":
            self.take()
            node = self.or_(depth + 1)
            self.expect("punct", ")", "')'")
            return node
        return self.condition()

    def condition(self) -> Node:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise FilterError(f"expected an attribute name, found {describe(token)}", token.position)
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(f"a filter has at most {MAX_CONDITIONS} conditions", token.position)
        attribute = self.attributes.get(token.text)
        if attribute is None:
            known = ", ".join(sorted(self.attributes)) or "none"
            raise FilterError(f"{token.text!r} is not a filterable attribute (filterable: {known})", token.position)
        nxt = self.take()
        negate = False
        if nxt.kind == "keyword" and nxt.text == "NOT":
            negate = True
            nxt = self.take()
            if not (nxt.kind == "keyword" and nxt.text in ("IN", "EXISTS")):
                raise FilterError(f"expected IN or EXISTS after NOT, found {describe(nxt)}", nxt.position)
        node: Node
        if nxt.kind == "op":
            value = self.value(attribute, ordered=nxt.text not in ("=", "!="))
            node = Compare(attribute.name, nxt.text, value)
        elif nxt.kind == "keyword" and nxt.text == "IN":
            self.expect("punct", "[", "'[' after IN")
            values = [self.value(attribute, ordered=False)]
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
                values.append(self.value(attribute, ordered=False))
                if len(values) > MAX_VALUES:
                    raise FilterError(f"IN takes at most {MAX_VALUES} values", self.peek().position)
            self.expect("punct", "]", "',' or ']'")
            node = In(attribute.name, tuple(dict.fromkeys(values)))
        elif nxt.kind == "keyword" and nxt.text == "EXISTS":
            node = Exists(attribute.name)
        elif nxt.kind in ("word", "string"):
            self.at -= 1
            low = self.value(attribute, ordered=True)
            self.expect("keyword", "TO", "TO (a range is 'attribute low TO high')")
            high = self.value(attribute, ordered=True)
            node = Range(attribute.name, low, high)
        else:
            raise FilterError(
                f"expected an operator (=, !=, >, >=, <, <=, IN, EXISTS or a range) after {attribute.name!r}, "
                f"found {describe(nxt)}", nxt.position,
            )
        return Not(node) if negate else node

    def value(self, attribute: SearchAttribute, *, ordered: bool) -> Any:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise FilterError(f"expected a value for {attribute.name!r}, found {describe(token)}", token.position)
        if ordered and attribute.type not in ("number", "datetime"):
            raise FilterError(f"{attribute.name!r} is a {attribute.type}: only numbers and dates compare with <, >, TO",
                              token.position)
        try:
            return normalise_value(attribute, token.text)
        except ValueError as exc:
            raise FilterError(str(exc), token.position) from None


def describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return f"the string {token.text[:40]!r}"
    return repr(token.text[:40])


def normalise_value(attribute: SearchAttribute, value: Any) -> Any:
    """A filter's or a document's value as the backends store it: strings for keywords,
    floats for numbers and dates (seconds since 1970, UTC), booleans for booleans."""
    kind = attribute.type
    if kind in ("keyword", "keywords"):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"{attribute.name!r} takes text, not {value!r}")
        text = str(value)
        if len(text) > 200:
            raise ValueError(f"a value of {attribute.name!r} is at most 200 characters")
        return text
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError(f"{attribute.name!r} is a number, not {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{attribute.name!r} is a number, not {str(value)[:40]!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{attribute.name!r} takes a finite number")
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"{attribute.name!r} is true or false, not {str(value)[:40]!r}")
    if kind == "datetime":
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{attribute.name!r} is a date or time (ISO 8601), not {str(value)[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise ValueError(f"unknown attribute type {kind!r}")  # pragma: no cover - SearchAttribute checks


def parse_filter(text: str | None, attributes: Mapping[str, SearchAttribute]) -> Node | None:
    """The tree of ``text`` over these filterable attributes (``None`` for no filter)."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_LENGTH:
        raise FilterError(f"a filter is at most {MAX_LENGTH} characters")
    if "\x00" in text:
        raise FilterError("a filter cannot contain NUL characters")
    return _Parser(text, attributes).parse()


def attributes_of(node: Node | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, (Compare, In, Exists, Range)):
        return {node.attribute}
    if isinstance(node, Not):
        return attributes_of(node.operand)
    return set().union(*(attributes_of(o) for o in node.operands))


def render(node: Node, condition: Callable[[Condition, bool], str]) -> str:
    """``node`` as text in the syntax SQL and Meilisearch share for its boolean structure,
    ``(a AND b)``, ``(a OR b)``, ``(NOT a)``, around each backend's own ``condition``, which
    is also told whether an odd number of ``NOT`` stand above it."""

    def walk(n: Node, negated: bool) -> str:
        if isinstance(n, And):
            return "(" + " AND ".join(walk(o, negated) for o in n.operands) + ")"
        if isinstance(n, Or):
            return "(" + " OR ".join(walk(o, negated) for o in n.operands) + ")"
        if isinstance(n, Not):
            return f"(NOT {walk(n.operand, not negated)})"
        return condition(n, negated)

    return walk(node, False)


# ------------------------------------------------------------------------------- evaluation


def evaluate(node: Node | None, attrs: Mapping[str, Any]) -> bool:
    """Whether a document with normalised attributes ``attrs`` matches: the reference meaning
    every backend must agree with (the shared tests compare them with this)."""
    if node is None:
        return True
    if isinstance(node, And):
        return all(evaluate(o, attrs) for o in node.operands)
    if isinstance(node, Or):
        return any(evaluate(o, attrs) for o in node.operands)
    if isinstance(node, Not):
        return not evaluate(node.operand, attrs)
    value = attrs.get(node.attribute)
    values = value if isinstance(value, list) else ([] if value is None else [value])
    if isinstance(node, Exists):
        return value is not None
    if isinstance(node, In):
        return any(v in node.values for v in values)
    if isinstance(node, Range):
        return any(node.low <= v <= node.high for v in values)
    compare: Callable[[Any], bool] = {
        "=": lambda v: v == node.value, "!=": lambda v: v == node.value,
        ">": lambda v: v > node.value, ">=": lambda v: v >= node.value,
        "<": lambda v: v < node.value, "<=": lambda v: v <= node.value,
    }[node.op]
    hit = any(compare(v) for v in values)
    return not hit if node.op == "!=" else hit
