"""Where Piccolo finds its engine.

Piccolo looks up a module-level ``DB`` through ``PICCOLO_CONF`` (its migration manager and
tables without an explicit engine do). That lookup is process-wide by Piccolo's design, so
the kernel points it at its engine when the database opens and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from piccolo.engine.base import Engine
from piccolo.table import Table

DB: Engine | None = None


def bind(engine: Engine, tables: Iterable[type[Table]]) -> None:
    global DB
    DB = engine
    os.environ["PICCOLO_CONF"] = __name__
    for table in tables:
        table._meta.db = engine
