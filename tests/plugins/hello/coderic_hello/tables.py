from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Greeting(Table, tablename="hello_greeting"):
    text = Varchar(length=200)
    language = Varchar(length=8, default="en")
    created_at = Timestamptz(default=TimestamptzNow())
    author = Varchar(length=100, null=True, default=None)
