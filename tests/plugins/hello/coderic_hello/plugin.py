"""Hook implementations of the hello test plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import click
from coderic_sdk import NotFound, PluginContext, PluginSettings, RequestContext, Route, Schema, hookimpl
from pydantic import Field

from .piccolo_app import APP_CONFIG
from .tables import Greeting


class HelloSettings(PluginSettings):
    greeting: str = "hello"
    max_greetings: int = Field(100, ge=1)


class GreetingIn(Schema):
    text: str = Field(min_length=1, max_length=200)
    language: str = Field("en", pattern=r"^[a-z]{2}$")


class GreetingOut(Schema):
    id: int
    text: str
    language: str
    created_at: datetime
    author: str | None = None


class GreetingList(Schema):
    greetings: list[GreetingOut]


class ListQuery(Schema):
    language: list[str] = []
    limit: int = Field(20, ge=1, le=100)


class GreetingPath(Schema):
    greeting_id: int = Field(ge=1, le=2**31 - 1)  # a PostgreSQL serial; larger ids would overflow the query


class Salutation(Schema):
    greeting: str


async def salute(ctx: RequestContext[None, None, dict[str, str]]) -> Salutation:
    settings = ctx.plugin.settings
    assert isinstance(settings, HelloSettings)
    return Salutation(greeting=settings.greeting)


async def create_greeting(ctx: RequestContext[GreetingIn, None, dict[str, str]]) -> GreetingOut:
    row = Greeting(text=ctx.body.text, language=ctx.body.language)
    await row.save()
    return GreetingOut.model_validate(row.to_dict())


async def list_greetings(ctx: RequestContext[None, ListQuery, dict[str, str]]) -> GreetingList:
    query = Greeting.select().order_by(Greeting.id).limit(ctx.query.limit)
    if ctx.query.language:
        query = query.where(Greeting.language.is_in(ctx.query.language))
    return GreetingList(greetings=[GreetingOut.model_validate(row) for row in await query])


async def get_greeting(ctx: RequestContext[None, None, GreetingPath]) -> GreetingOut:
    row = await Greeting.objects().get(Greeting.id == ctx.path.greeting_id)
    if row is None:
        raise NotFound(f"Greeting {ctx.path.greeting_id} does not exist.")
    return GreetingOut.model_validate(row.to_dict())


async def delete_greeting(ctx: RequestContext[None, None, GreetingPath]) -> None:
    await Greeting.delete().where(Greeting.id == ctx.path.greeting_id)


async def fail(ctx: RequestContext[None, None, dict[str, str]]) -> None:
    raise RuntimeError("secret /etc/passwd SELECT * FROM users")


@hookimpl
def register_settings_model() -> type[PluginSettings]:
    return HelloSettings


@hookimpl
def register_piccolo_app():  # type: ignore[no-untyped-def]
    return APP_CONFIG


@hookimpl
def register_routes() -> list[Route]:
    return [
        Route("GET", "/greeting", salute, name="salute", response=Salutation, summary="The configured greeting"),
        Route("POST", "/greetings", create_greeting, name="create_greeting", body=GreetingIn,
              response=GreetingOut, status_code=201, summary="Store a greeting"),
        Route("GET", "/greetings", list_greetings, name="list_greetings", query=ListQuery,
              response=GreetingList, summary="List greetings"),
        Route("GET", "/greetings/{greeting_id}", get_greeting, name="get_greeting",
              path_params=GreetingPath, response=GreetingOut, summary="One greeting"),
        Route("DELETE", "/greetings/{greeting_id}", delete_greeting, name="delete_greeting",
              path_params=GreetingPath, status_code=204, summary="Delete a greeting"),
        Route("GET", "/boom", fail, name="boom", summary="Always fails (tests the 500 problem)"),
    ]


@hookimpl
def lifespan(plugin: PluginContext):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        plugin.logger.info("hello plugin started")
        yield
        plugin.logger.info("hello plugin stopped")

    return running()


@hookimpl
def register_commands(plugin: PluginContext) -> list[click.Command]:
    @click.command()
    @click.argument("name")
    def greet(name: str) -> None:
        """Print the configured greeting for NAME."""
        settings = plugin.settings
        assert isinstance(settings, HelloSettings)
        click.echo(f"{settings.greeting}, {name}!")

    return [greet]
