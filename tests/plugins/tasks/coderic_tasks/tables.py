from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Item(Table, tablename="tasks_item"):
    name = Varchar(length=100)


class Effect(Table, tablename="tasks_effect"):
    """One side effect, at most once per key: the idempotency a job handler must have."""

    key = Varchar(length=200, unique=True)
    kind = Varchar(length=100)
    created_at = Timestamptz(default=TimestamptzNow())
