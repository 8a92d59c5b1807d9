"""``coderic email``: preview templates, test the backend, and the operator's trusted
controls over suppressions, newsletters and what happened to messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ..email import newsletter, store
from ..email.message import build, mailbox, message_id, normalise_address
from ..email.service import EmailService, service_for
from ..email.tables import EmailMessage
from ..kernel import Kernel
from .state import CliState, pass_state

T = TypeVar("T")
LANGUAGE = click.Choice(["es", "en"])


@click.group()
def email() -> None:
    """Email: preview templates, send a test, manage suppressions and newsletters."""


def _with_database(state: CliState, work: Callable[[Kernel, EmailService], Awaitable[T]]) -> T:
    async def run() -> T:
        kernel = state.kernel()
        async with kernel.opened():
            await kernel.settle_migrations(False)  # the email tables must exist
            return await work(kernel, service_for(kernel))

    return asyncio.run(run())


def _address(value: str) -> str:
    try:
        return normalise_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@email.command()
@click.argument("template")
@click.option("--lang", "language", type=LANGUAGE, help="Language (default: default_language).")
@click.option("--part", type=click.Choice(["all", "subject", "text", "html"]), default="all", show_default=True)
@pass_state
def preview(state: CliState, template: str, language: str | None, part: str) -> None:
    """Render TEMPLATE (like email.welcome, or welcome) with its sample data."""
    service = service_for(state.kernel())
    name = template if "." in template else f"email.{template}"
    try:
        _, rendered = service.sample(name, language or service.settings.default_language)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if part in {"all", "subject"}:
        click.echo(f"Subject: {rendered.subject}" if part == "all" else rendered.subject)
    if part == "all":
        click.echo(f"Language: {rendered.language}\n")
    if part in {"all", "text"}:
        click.echo(rendered.text)
    if part in {"all", "html"} and rendered.html is not None:
        click.echo(rendered.html)


@email.command("send-test")
@click.argument("address")
@click.option("--lang", "language", type=LANGUAGE, help="Language (default: default_language).")
@pass_state
def send_test(state: CliState, address: str, language: str | None) -> None:
    """Send the test template to ADDRESS now, through the configured backend (not the outbox)."""
    to = _address(address)
    service = service_for(state.kernel())
    _, rendered = service.sample("email.test", language or service.settings.default_language, to)
    uid = uuid.uuid4().hex
    built = build(sender=service.sender, to=mailbox(to), subject=rendered.subject, text=rendered.text,
                  html=rendered.html, message_id=message_id(uid, service.sender))
    asyncio.run(service.backend.send(built.as_bytes(), service.sender.addr_spec, [to], built["Message-ID"]))
    click.echo(f"sent {built['Message-ID']} to {to} via {type(service.backend).__name__}")


@email.command()
@click.argument("address")
@click.option("--reason", type=click.Choice(list(store.SUPPRESSION_REASONS)), required=True)
@click.option("--detail", help="A note kept with the suppression.")
@pass_state
def suppress(state: CliState, address: str, reason: str, detail: str | None) -> None:
    """Stop non-essential mail to ADDRESS (it bounced, complained, or asked)."""
    to = _address(address)
    _with_database(state, lambda kernel, service: store.suppress(to, reason, detail))
    click.echo(f"{to}: suppressed ({reason})")


@email.command()
@click.argument("address")
@pass_state
def unsuppress(state: CliState, address: str) -> None:
    """Let mail go to ADDRESS again."""
    to = _address(address)
    removed = _with_database(state, lambda kernel, service: store.unsuppress(to))
    click.echo(f"{to}: {'no longer suppressed' if removed else 'was not suppressed'}")


@email.command()
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@pass_state
def suppressions(state: CliState, limit: int) -> None:
    """List suppressed addresses, newest first."""
    rows = _with_database(state, lambda kernel, service: store.suppressions(limit))
    click.echo(f"{'ADDRESS':<40} {'REASON':<10} {'SINCE':<20} DETAIL")
    for row in rows:
        click.echo(f"{row['address']:<40} {row['reason']:<10} {row['created_at']:%Y-%m-%d %H:%M:%S}  {row['detail'] or ''}")


@email.command()
@click.option("--status", type=click.Choice(["queued", "sent", "suppressed", "failed"]), help="Only messages in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@pass_state
def messages(state: CliState, status: str | None, limit: int) -> None:
    """List messages, newest first: uid, status, recipient, template, subject."""

    async def work(kernel: Kernel, service: EmailService) -> list[dict[str, Any]]:
        M = EmailMessage
        query = M.select(M.uid, M.status, M.to_address, M.template, M.subject, M.error).order_by(M.id, ascending=False)
        return await (query.where(M.status == status) if status else query).limit(limit)

    for row in _with_database(state, work):
        click.echo(f"{row['uid']}  {row['status']:<10} {row['to_address']:<32} {row['template'] or '-':<24} {row['subject']}"
                   + (f"  [{row['error']}]" if row["error"] else ""))


@email.command()
@click.argument("uid", required=False)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@pass_state
def events(state: CliState, uid: str | None, limit: int) -> None:
    """Opens, clicks, bounces and complaints, newest first (of message UID, or of all)."""
    rows = _with_database(state, lambda kernel, service: store.events(uid, limit))
    for row in rows:
        click.echo(f"{row['created_at']:%Y-%m-%d %H:%M:%S}  {row['message_uid']}  {row['kind']:<10} {row['url'] or row['detail'] or ''}")


@email.command("newsletter")
@click.argument("template")
@click.option("--context", "context_json", default="{}", help="The template's context as a JSON object.")
@pass_state
def send_newsletter(state: CliState, template: str, context_json: str) -> None:
    """Send an issue of TEMPLATE (like email.newsletter) to every subscriber, in batches."""
    try:
        context = json.loads(context_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--context") from None
    if not isinstance(context, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--context")
    name = template if "." in template else f"email.{template}"
    try:
        issue = _with_database(state, lambda kernel, service: newsletter.start_issue(service, name, context))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"newsletter issue {issue} queued; workers send it in batches of {newsletter.BATCH}")


@email.command()
@click.argument("address")
@click.option("--source", required=True, help="Where consent was given (a form, an import), kept with it.")
@pass_state
def subscribe(state: CliState, address: str, source: str) -> None:
    """Subscribe ADDRESS to the newsletter, recording its consent."""
    to = _address(address)
    _with_database(state, lambda kernel, service: store.subscribe(to, source))
    click.echo(f"{to}: subscribed (consent from {source})")
