"""The test harness behind the SDK's pytest fixtures: a real kernel on a throw-away database.

Found by the SDK through the ``coderic.testing`` entry point, so plugin tests never import
this module. Test databases come from ``testing_databases``: PostgreSQL ones on the server
named by ``CODERIC_TEST_POSTGRES_URL``; when that server is missing the test fails under CI
(``CI`` set) and is skipped elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from coderic_sdk import Event, PersonalData, Resource
from coderic_sdk.testing import DeliveredNotification, PluginContract, SentEmail
from starlette.applications import Starlette

from .kernel import Kernel
from .plugins.context import PluginContextImpl
from .testing_databases import (  # postgres_admin_url, services_required, throwaway_database: for tests
    database_at,
    migrated_template,
    planned_database_url,
    postgres_admin_url,
    service_missing,
    services_required,
    kernel_configuration,
    throwaway_database,
)
from .web.app import create_app

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
#: A kernel's shutdown taking longer than this prints what every asyncio task is waiting for
#: (pytest-timeout's dump shows threads only, and an idle event loop tells nothing).
HUNG_TEARDOWN_SECONDS = 20.0


@dataclass
class RunningKernel:
    kernel: Kernel
    app: Starlette
    client: Any  # httpx2.AsyncClient
    _clients: list[Any] = field(default_factory=list)
    #: Every event published while the test runs, in order (rolled-back ones too).
    events: list[Event] = field(default_factory=list)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    def plugin(self, name: str) -> PluginContextImpl:
        return self.kernel.plugin(name)

    def personal_data(self, plugin: str) -> list[PersonalData]:
        """What ``plugin`` declared through ``register_personal_data`` (``coderic_sdk.testing`` checks it)."""
        from .personal_data.registry import personal_data_for

        return personal_data_for(self.kernel).of(plugin)

    async def create_user(self, email: str | None = None, *, password: str | None = None, verified: bool = True,
                          roles: Sequence[str] = (), two_factor: bool | None = None, **profile: Any) -> str:
        """A new active user (``profile``: name, bio, language, ...); returns the user's id.
        ``password`` is hashed as the password sign-in would. ``roles`` are granted globally;
        ``two_factor`` turns 2FA on (by default: when a role needs it, as ``admin`` does)."""
        from datetime import datetime, timezone

        import pyotp

        from .identity import users
        from .identity.crypto import Sealer
        from .identity.passwords import hash_password

        values: dict[str, Any] = {"email": users.normalised_email(email) if email else None,
                                  "email_verified": verified and email is not None, **profile}
        if password is not None:
            values["password_hash"] = hash_password(password)
        if two_factor is None:
            two_factor = bool(set(roles) & set(self.kernel.config.kernel.auth_require_2fa_roles))
        if two_factor:
            values["totp_secret"] = Sealer(self.kernel.config.kernel).seal(pyotp.random_base32())
            values["totp_enabled_at"] = datetime.now(timezone.utc)
        user_id = str((await users.create(**values))["uid"])
        for role in roles:
            await self.kernel.permissions.grant(user_id, role, reason="test harness")
        return user_id

    async def sign_in(self, user_id: str, *, mode: str = "token") -> Any:
        """A client signed in as the user, as after a real sign-in: ``mode="token"`` sends an
        access token; ``mode="session"`` holds the session cookies and sends the CSRF token."""
        import httpx2

        from .identity.service import identity_for
        from .identity.signin import Outcome

        service = identity_for(self.kernel)
        request = _FakeConnection()
        outcome: Outcome = await service.signin.finish(request, user_id, "test", "session" if mode == "session" else "token")  # type: ignore[arg-type]
        transport = self.client._transport
        if mode == "session":
            client = httpx2.AsyncClient(transport=transport, base_url="https://testserver",
                                        headers={"X-CSRF-Token": outcome.body["csrf_token"]})
            for name, value, _ in outcome.cookies:
                if value:
                    client.cookies.set(name, value)
        else:
            client = httpx2.AsyncClient(transport=transport, base_url="http://testserver",
                                        headers={"Authorization": f"Bearer {outcome.body['access_token']}"})
        self._clients.append(client)
        return client


    async def user(self, email: str | None = None, *, role: str | None = None, on: Resource | None = None,
                   mode: str = "token", **profile: Any) -> TestUser:
        """A new member signed in: ``role`` granted globally, or on the resource ``on``."""
        user_id = await self.create_user(email, roles=[role] if role and on is None else [], **profile)
        if role and on is not None:
            await self.kernel.permissions.grant(user_id, role, on, reason="test harness")
        return TestUser(user_id, await self.sign_in(user_id, mode=mode))

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the outbox has nothing due: every job, email and notification fan-out that
        the test's requests queued has run (chains included: a notification's email job too)."""
        import asyncio
        from datetime import datetime, timezone

        from .jobs.tables import OutboxEntry as E

        loop = asyncio.get_running_loop()
        deadline, quiet = loop.time() + timeout, 0
        while quiet < 2:
            due = E.available_at <= datetime.now(timezone.utc)
            busy = await E.count().where((E.status.is_in(["pending", "queued", "running"])) & due)
            quiet = quiet + 1 if busy == 0 else 0
            if loop.time() > deadline:
                raise AssertionError(f"the outbox still has {busy} job(s) due after {timeout} s")
            self.kernel.jobs.nudge()
            await asyncio.sleep(0.05)

    async def emails(self, to: str | None = None, template: str | None = None) -> list[SentEmail]:
        """Emails sent so far (after the outbox settles), oldest first."""
        import email
        import email.policy

        from .email.tables import EmailMessage as M

        await self.settle()
        where = M.status != "queued"
        if to is not None:
            where &= M.to_address == to.lower()
        if template is not None:
            where &= M.template == template
        found = []
        for row in await M.select().where(where).order_by(M.id):
            message = email.message_from_bytes(row["raw"].encode(), policy=email.policy.default)
            text = message.get_body(("plain",))
            html = message.get_body(("html",))
            found.append(SentEmail(to=row["to_address"], template=row["template"], subject=row["subject"],
                                   text=text.get_content() if text else "", html=html.get_content() if html else None,
                                   language=row["language"], category=row["category"]))
        return found

    async def notifications(self, user_id: str, type: str | None = None) -> list[DeliveredNotification]:
        """What ``user_id`` was notified of (after the outbox settles), oldest first."""
        from .notifications.tables import Notification as N

        await self.settle()
        where = N.user_id == user_id
        if type is not None:
            where &= N.type == type
        rows = await N.select().where(where).order_by(N.id).output(load_json=True)
        return [DeliveredNotification(id=r["id"], user_id=r["user_id"], type=r["type"], data=r["data"],
                                      in_app=r["in_app"], email=r["email"]) for r in rows]

    async def search(
        self, index: str | Sequence[str], q: str = "", *, user: str | None = None, filter: str | None = None,
        facets: Sequence[str] = (), sort: Sequence[str] = (), page: int = 1, per_page: int = 20,
    ) -> Any:
        """What ``user`` (a member's id; ``None``: a guest) finds, once queued index updates have
        run: the ``SearchResults`` that ``GET /api/v1/search`` answers with."""
        from coderic_sdk import CurrentUser

        from .search.service import search_for

        await self.settle()
        searcher = CurrentUser(user, "session", None) if user is not None else None
        return await search_for(self.kernel).query(index, q, user=searcher, filter=filter, facets=facets, sort=sort,
                                                   page=page, per_page=per_page)

    def realtime(self, user_id: str) -> Any:
        """A real-time stream of ``user_id`` (what their open page receives over WebSocket or
        SSE): ``await stream.next(timeout)`` gives ``(id, kind, json_text)`` or ``None``."""
        from .notifications.service import notifications_for

        return notifications_for(self.kernel).hub.open(user_id, None)

    async def contract(self, plugin: str) -> PluginContract:
        """The facts ``coderic_sdk.testing.check_plugin`` checks."""
        import json

        from .notifications.service import notifications_for
        from .storage.service import store_for
        from .web.openapi import document_bytes

        kernel = self.kernel
        loaded = any(info.name == plugin for info in kernel.plugins)
        apps = [entry.app for entry in kernel.apps if entry.plugin == plugin]
        registry = kernel.permissions.registry
        document = json.loads(document_bytes(kernel))
        operations: dict[str, Any] = {}
        by_id = {op.get("operationId"): op for item in document["paths"].values() for op in item.values()
                 if isinstance(op, dict)}
        for mounted in kernel.routes:
            if mounted.plugin.name == plugin:
                operations[mounted.operation_id] = by_id.get(mounted.operation_id)
        migrations = tuple(kernel.migrations.modules(plugin)) if apps else ()
        return PluginContract(
            name=plugin, loaded=loaded,
            tables=tuple(table._meta.tablename for app in apps for table in app.table_classes),
            permissions=tuple(n for n, owner in registry.owners.items() if owner == plugin),
            roles=tuple(n for n, info in registry.roles.items() if info.origin == plugin),
            notification_types=tuple(k for k, (owner, _) in notifications_for(kernel).types.items() if owner == plugin),
            file_purposes=tuple(n for n in store_for(kernel).purposes if n.split(".", 1)[0] == plugin),
            jobs=tuple(j.name for j in kernel.jobs.registry.jobs.values() if j.plugin.name == plugin
                       and not j.name.startswith("event:")),
            operations=operations,
            personal_data=tuple(entry.name for entry in self.personal_data(plugin)),
            migrations=migrations,
        )

    async def migrate_round_trip(self, plugin: str) -> list[str]:
        """Reverse every migration of ``plugin``, then apply them again; the ids that ran both ways."""
        back = await self.kernel.migrations.backwards(plugin, "all")
        forth = await self.kernel.migrations.forwards(plugin)
        return sorted({s.id for s in back} & {s.id for s in forth})


@dataclass(frozen=True)
class TestUser:
    """A member made for a test, and a client signed in as them."""

    __test__ = False  # not a pytest test class
    id: str
    client: Any


class _FakeConnection:
    """What the sign-in code reads of a request, for sessions made by the test harness."""

    client = None
    headers: dict[str, str] = {"user-agent": "coderic-test-harness"}
    scope: dict[str, Any] = {"state": {}}


def redis_test_url() -> str:
    """The test Redis database; with pytest-xdist, worker N takes the database N below it, so
    workers never empty each other's (``gw0``: 15, ``gw1``: 14, ...)."""
    url = os.environ.get("CODERIC_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) - int(worker[2:])
    if database < 0:
        raise RuntimeError(f"too many test workers for the Redis databases below {url}")
    return parts._replace(path=f"/{database}").geturl()


@asynccontextmanager
async def throwaway_redis() -> AsyncIterator[str]:
    """A Redis database emptied before and after use (tests run one at a time on it)."""
    from redis.asyncio import Redis

    url = redis_test_url()
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.flushdb()
    except Exception as exc:
        await client.aclose()
        service_missing(f"Redis at {url} is unreachable ({type(exc).__name__}: {exc})")
    try:
        yield url
    finally:
        await client.flushdb()
        await client.aclose()


@asynccontextmanager
async def start_kernel(
    *,
    plugins: Sequence[str],
    config: Mapping[str, Any],
    database: str,
    workdir: os.PathLike[str],
    services: str = "memory",
) -> AsyncIterator[RunningKernel]:
    """Boot a kernel with ``plugins`` enabled, migrate its database and serve it in-process.

    ``services="redis"`` backs cache, rate limits, events and jobs with a throw-away Redis
    database; ``"memory"`` keeps them in-process.
    """
    watch = HungTeardownWatch(HUNG_TEARDOWN_SECONDS)
    try:
        async with _serve_kernel(plugins, config, database, workdir, services) as running:
            try:
                yield running
            finally:
                watch.start()
    finally:
        watch.stop()


@asynccontextmanager
async def _serve_kernel(plugins: Sequence[str], config: Mapping[str, Any], database: str, workdir: os.PathLike[str],
                        services: str) -> AsyncIterator[RunningKernel]:
    import httpx2

    async with AsyncExitStack() as stack:
        overrides: dict[str, Any] = {"environment": "test", "plugins.enabled": list(plugins), **config}
        template_overrides = dict(overrides)
        if services == "redis":
            overrides["redis_url"] = await stack.enter_async_context(throwaway_redis())
        elif services != "memory":
            raise ValueError(f"unknown services backend {services!r}")
        # Booting connects to nothing: boot, learn the migrations, then create the database as
        # a copy of a template that has them applied.
        url = planned_database_url(database, Path(workdir))
        kernel = Kernel.boot(kernel_configuration(overrides, database_url=url))
        template = await migrated_template(database, kernel, template_overrides)
        await stack.enter_async_context(database_at(url, template=template))
        app = create_app(kernel, manage_lifespan=False)
        async with kernel.started(migrate=True, background=True):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
                running = RunningKernel(kernel, app, client)
                kernel.jobs.observers.append(running.events.append)
                try:
                    yield running
                finally:
                    await running.aclose()


class HungTeardownWatch:
    """Prints every asyncio task's stack to stderr when a kernel's shutdown outlasts ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._timer: Any = None

    def start(self) -> None:
        import asyncio

        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._report)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _report(self) -> None:
        import asyncio
        import sys

        print(f"\n+++ kernel shutdown still waiting after {self.seconds:.0f} s; asyncio tasks:", file=sys.stderr)
        for task in asyncio.all_tasks():
            print(f"--- {task!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        sys.stderr.flush()
