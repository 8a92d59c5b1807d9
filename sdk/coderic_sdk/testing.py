"""Checks for plugin authors' tests, beside the fixtures of ``coderic_sdk.pytest_plugin``.

    from coderic_sdk.testing import check_personal_data

    @pytest.mark.coderic(plugins=["projects"])
    async def test_personal_data(coderic_kernel):
        ana = await coderic_kernel.create_user("ana@example.org")
        await make_a_project(coderic_kernel, owner=ana)
        exported = await check_personal_data(coderic_kernel, "projects", ana)
        assert exported["projects"][0]["title"] == "My project"

The checks raise ``AssertionError`` with a message saying what to fix; they work without
pytest's assertion rewriting (and under ``python -O``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .personal_data import PersonalData

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email the test kernel sent (``coderic_emails``): what its recipient would read."""

    to: str
    template: str | None
    subject: str
    text: str
    html: str | None
    language: str
    category: str


@dataclass(frozen=True, slots=True)
class DeliveredNotification:
    """A notification a member received (``coderic_notifications``). ``in_app``: it is in their
    inbox; ``email``: where its email stands (``""`` none, ``sent``, ``daily``, ``weekly``, ``held``)."""

    id: int
    user_id: str
    type: str
    data: Mapping[str, Any]
    in_app: bool
    email: str


@dataclass(frozen=True, slots=True)
class PluginContract:
    """What the kernel knows of a plugin, for ``check_plugin``: gathered by the harness."""

    name: str
    loaded: bool
    tables: tuple[str, ...]
    permissions: tuple[str, ...]
    roles: tuple[str, ...]
    notification_types: tuple[str, ...]
    file_purposes: tuple[str, ...]
    jobs: tuple[str, ...]
    #: operation id -> what the OpenAPI document says of it (``summary``, ``responses``), or ``None`` if absent.
    operations: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    personal_data: tuple[str, ...] = ()
    migrations: tuple[str, ...] = ()


class RunningKernel(Protocol):
    """What the checks need of the ``coderic_kernel`` fixture's value."""

    def personal_data(self, plugin: str) -> list[PersonalData]: ...

    async def contract(self, plugin: str) -> PluginContract: ...

    async def migrate_round_trip(self, plugin: str) -> list[str]: ...


async def check_personal_data(
    running: RunningKernel, plugin: str, user_id: str, *, bystander: str | None = None
) -> dict[str, Any]:
    """Check ``plugin``'s personal data for ``user_id``, who must have some: the plugin declares
    it (``register_personal_data``) with an export and a delete; each export is JSON-safe; after
    the deletes, exports find nothing; deleting again succeeds. ``bystander``, another user
    with data, must keep all of theirs. Returns the exports made before deleting, by name.

    The user's data is deleted: call this last, or on a user made for it.
    """
    declared = running.personal_data(plugin)
    _require(declared, f"plugin {plugin!r} declares no personal data: implement register_personal_data, returning "
                       "PersonalData(name, export, delete) for each kind of data it keeps about a user")
    before = {entry.name: await _export(plugin, entry, user_id) for entry in declared}
    _require(not all(is_empty(data) for data in before.values()),
             f"plugin {plugin!r}: every export is empty for user {user_id!r}; give the user some data first, "
             "or the check proves nothing")
    kept = {entry.name: await _export(plugin, entry, bystander) for entry in declared} if bystander else {}
    for entry in declared:
        await entry.delete(user_id)
    for entry in declared:
        after = await _export(plugin, entry, user_id)
        _require(is_empty(after), f"plugin {plugin!r}: personal data {entry.name!r} still exports {_short(after)} "
                                  f"for user {user_id!r} after its delete ran")
    for entry in declared:
        try:
            await entry.delete(user_id)
        except Exception as exc:
            raise AssertionError(f"plugin {plugin!r}: deleting personal data {entry.name!r} a second time raised "
                                 f"{type(exc).__name__}: {exc}; a delete must succeed when there is nothing left") from exc
    for entry in declared:
        if bystander:
            now = await _export(plugin, entry, bystander)
            _require(now == kept[entry.name], f"plugin {plugin!r}: deleting user {user_id!r} changed the "
                                              f"{entry.name!r} data of user {bystander!r}")
    return before


def is_empty(data: Any) -> bool:
    """Whether exported data holds nothing: ``None``, ``""``, or containers of only such values."""
    if data is None or data == "":
        return True
    if isinstance(data, Mapping):
        return all(is_empty(value) for value in data.values())
    if isinstance(data, (list, tuple)):
        return all(is_empty(value) for value in data)
    return False


def json_safe_problem(data: Any, where: str = "") -> str | None:
    """Where ``data`` stops being JSON-safe and why, or ``None`` when it is."""
    if data is None or isinstance(data, (str, bool, int)):
        return None
    if isinstance(data, float):
        return None if math.isfinite(data) else f"{where or 'the value'} is {data!r}"
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                return f"{where or 'a mapping'} has the key {key!r}, not a string"
            problem = json_safe_problem(value, f"{where}.{key}" if where else key)
            if problem:
                return problem
        return None
    if isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            problem = json_safe_problem(value, f"{where}[{index}]")
            if problem:
                return problem
        return None
    return f"{where or 'the value'} is a {type(data).__name__} (dates go as ISO 8601 strings)"


async def _export(plugin: str, entry: PersonalData, user_id: str) -> Any:
    data = await entry.export(user_id)
    problem = json_safe_problem(data)
    _require(problem is None, f"plugin {plugin!r}: the export of personal data {entry.name!r} is not JSON-safe: {problem}")
    return data


def _short(data: Any) -> str:
    text = json.dumps(data)
    return text if len(text) <= 200 else text[:200] + "..."


def _require(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


async def check_plugin(running: RunningKernel, plugin: str, *, access_table: Any = None) -> PluginContract:
    """The contract every plugin keeps, checked on a fresh test kernel (call it before the test
    adds data: the plugin's migrations are reversed and applied again):

    - it registered cleanly and its name is a valid plugin name;
    - every table, permission, role, notification type, file purpose and job is ``<plugin>_...``
      or ``<plugin>.<...>``;
    - its migrations run backwards to nothing and forwards again on the empty database;
    - a plugin with tables declares its personal data (export and delete);
    - every route is in the OpenAPI document with a summary and its responses;
    - with ``access_table`` (a path to a file like the kernel's ``tests/access_table.txt``), every
      route has a line in it.

    Raises ``AssertionError`` saying what to fix; returns what it checked.
    """
    contract = await running.contract(plugin)
    _require(contract.loaded, f"plugin {plugin!r} is not loaded: enable it with @pytest.mark.coderic(plugins=[{plugin!r}])")
    _require(_NAME.match(plugin) is not None and len(plugin) <= 40, f"plugin name {plugin!r} is not a valid name")
    for table in contract.tables:
        _require(table.startswith(f"{plugin}_"), f"plugin {plugin!r}: table {table!r} must be named '{plugin}_<table>'")
    for kind, names in (("permission", contract.permissions), ("role", contract.roles),
                        ("notification type", contract.notification_types), ("file purpose", contract.file_purposes),
                        ("job", contract.jobs)):
        for name in names:
            _require(name.startswith(f"{plugin}."), f"plugin {plugin!r}: {kind} {name!r} must be named '{plugin}.<name>'")
    if contract.migrations:
        reversed_and_applied = await running.migrate_round_trip(plugin)
        _require(sorted(reversed_and_applied) == sorted(contract.migrations),
                 f"plugin {plugin!r}: the migrations did not all run backwards and forwards: {reversed_and_applied}")
    _require(not contract.tables or contract.personal_data,
             f"plugin {plugin!r} keeps tables but declares no personal data: implement register_personal_data, "
             "returning PersonalData(name, export, delete) for what it keeps about a user (or an empty export)")
    for operation, documented in contract.operations.items():
        _require(documented is not None, f"plugin {plugin!r}: route {operation!r} is missing from the OpenAPI document")
        assert documented is not None
        _require(bool(documented.get("summary")), f"plugin {plugin!r}: route {operation!r} has no summary: give it Route(summary=...)")
        _require(bool(documented.get("responses")), f"plugin {plugin!r}: route {operation!r} documents no response")
    if access_table is not None:
        from pathlib import Path

        listed = {line.split()[0] for line in Path(access_table).read_text(encoding="utf-8").splitlines()
                  if line.strip() and not line.startswith("#")}
        missing = sorted(set(contract.operations) - listed)
        _require(not missing, f"plugin {plugin!r}: routes without a line in {access_table}: {missing}")
    return contract
