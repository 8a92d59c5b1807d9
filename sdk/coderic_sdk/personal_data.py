"""Personal data: what a plugin keeps about a member, so that the member can take it out
(an export) and have it erased (a deletion), as the GDPR gives them the right to.

A plugin that stores anything about a user (rows with their id, their text, their files)
declares it through ``register_personal_data``. The kernel calls every declaration's
``export`` when a member asks for their data, and every ``delete`` when they delete their
account. ``coderic_sdk.testing.check_personal_data`` checks a plugin's declarations in its
tests. See ``docs/personal-data.md``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: ``async def export(user_id) -> dict | list``: everything of this kind about the user, JSON-safe.
Exporter = Callable[[str], Awaitable[Any]]
#: ``async def delete(user_id) -> None``: delete (or anonymise) it all. Runs again after a crash
#: and once more a little later: it must succeed, doing nothing, when there is nothing left.
Deleter = Callable[[str], Awaitable[None]]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True, slots=True)
class PersonalData:
    """One kind of personal data a plugin keeps (``projects``, ``comments``).

    ``export(user_id)`` returns what the plugin holds about the user as JSON-safe data (dicts
    with string keys, lists, strings, numbers, booleans, ``None``; dates as ISO 8601 strings);
    it goes into the member's archive as ``<plugin>.json``, under ``name``. Return an empty
    dict or list when there is nothing.

    ``delete(user_id)`` removes it, or anonymises what others still need (a comment in a
    thread may stay with its author removed). Afterwards ``export`` must find nothing. It may
    run more than once for the same user (a retried job, a second pass): it must then succeed
    and change nothing. The plugin's files owned by the user are removed by the kernel
    anyway; its search entries too, once search exists.
    """

    name: str
    export: Exporter
    delete: Deleter
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"personal data {self.name!r}: a name is a lower-case letter, then letters, digits or '_'")
        for role in ("export", "delete"):
            if not callable(getattr(self, role)):
                raise ValueError(f"personal data {self.name!r}: {role} must be an async function taking the user's id")
