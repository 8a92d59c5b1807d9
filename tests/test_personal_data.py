"""Personal data (issue 8): a member's export holds what every plugin keeps about them and their
files, reachable by them alone and for a while; deleting the account leaves nothing personal in
the database or the storage, closes the account at once, is idempotent and audited; and the
SDK's check catches a plugin whose export or delete is wrong.

Two members get data everywhere the kernel keeps it, and in ``notes``, a fake plugin with a
table, a file purpose and personal data. The deletion test then reads every row of every table
looking for the deleted member's id, addresses, name and texts.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from coderic_kernel.email.tables import EmailMessage, EmailSuppression
from coderic_kernel.identity import personal_tokens
from coderic_kernel.identity.crypto import token_hash
from coderic_kernel.identity.tables import (
    AuthEvent, LinkedIdentity, OneTimeToken, PersonalToken, RecoveryCode, Session, User,
)
from coderic_kernel.personal_data import deletion, exports
from coderic_kernel.personal_data.tables import DataExport
from coderic_kernel.profiles import service as profiles
from coderic_kernel.storage import signing
from coderic_kernel.storage.records import FileRecord
from coderic_sdk import Recipient
from coderic_sdk.testing import check_personal_data
from fakeplugins import FakePlugin, FakeSite, boot_error, fake_plugins  # noqa: F401
from services import eventually

PASSWORD = "a long and unusual passphrase"

NOTES = FakePlugin("notes", """
from contextlib import asynccontextmanager
from pathlib import Path

from coderic_sdk import FilePurpose, PersonalData, RequestContext, Route, Schema
from piccolo.columns import Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.conf.apps import AppConfig
from piccolo.table import Table


class Note(Table, tablename="notes_note"):
    author = Varchar(length=32, index=True)
    text = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class NoteIn(Schema):
    text: str


async def create_note(ctx):
    note = Note(author=ctx.require_user().id, text=ctx.body.text)
    await note.save()
    return {"id": note.id}


async def export_notes(user_id):
    rows = await Note.select(Note.text, Note.created_at).where(Note.author == user_id).order_by(Note.id)
    return [{"text": row["text"], "created_at": row["created_at"].isoformat()} for row in rows]


async def delete_notes(user_id):
    await Note.delete().where(Note.author == user_id)


@hookimpl
def register_piccolo_app():
    return AppConfig(app_name="notes", migrations_folder_path=str(Path(__file__).parent), table_classes=[Note])


@hookimpl
def lifespan():
    @asynccontextmanager
    async def tables():
        await Note.create_table(if_not_exists=True)
        yield

    return tables()


@hookimpl
def register_routes():
    return [Route("POST", "", create_note, name="create_note", body=NoteIn, status_code=201, authenticated=True)]


@hookimpl
def register_file_purposes():
    return [FilePurpose("attachment", max_bytes=10_000, allowed_types=("text/plain",))]


@hookimpl
def register_personal_data():
    return [PersonalData("notes", export_notes, delete_notes, "The member's notes.")]
""")

#: A plugin getting personal data wrong in the way its ``mode`` setting says.
CARELESS = FakePlugin("careless", """
from datetime import datetime, timezone

from coderic_sdk import PersonalData, PluginSettings

STORE = {}


class Settings(PluginSettings):
    mode: str = "right"


@hookimpl
def register_settings_model():
    return Settings


@hookimpl
def register_personal_data(plugin):
    mode = plugin.settings.mode

    async def export(user_id):
        if user_id not in STORE:
            return {"things": []}
        if mode == "dates":
            return {"things": [{"at": datetime.now(timezone.utc)}]}
        return {"things": [STORE[user_id]]}

    async def delete(user_id):
        if mode == "keeps":
            return
        if mode == "once" and user_id not in STORE:
            raise KeyError(user_id)
        if mode == "everyone":
            STORE.clear()
        STORE.pop(user_id, None)

    return [PersonalData("things", export, delete)]
""")


@pytest.fixture
def coderic_plugins(request: pytest.FixtureRequest, fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(NOTES, CARELESS)
    marker = request.node.get_closest_marker("coderic")
    return list(marker.kwargs.get("plugins", ["notes"])) if marker else ["notes"]


@pytest.fixture
def coderic_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Files and mail under the test's folder; ``careless``'s mode from the test's ``mode`` parameter."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    return {
        "public_url": "http://testserver", "secret_key": "s" * 40, "outbox_poll_seconds": 0.05,
        "storage_url": f"file://{tmp_path / 'files'}", "email_url": f"file://{tmp_path / 'mail'}",
        **({"plugins.careless.mode": params["mode"]} if "mode" in params else {}),
    }


# --- helpers -----------------------------------------------------------------------------------


def job_context(kernel: Any) -> Any:
    """What a job handler receives, for running one again by hand (as a retry would)."""
    return SimpleNamespace(plugin=kernel.plugin("auth"), job_id="by-hand", attempt=1)


async def member(kernel: Any, local: str, name: str) -> dict[str, Any]:
    """A member with data in every part of the kernel and in ``notes``; what a scan looks for."""
    address = f"{local}@example.org"
    alias = f"{local}.github@example.org"
    user = await kernel.create_user(address, password=PASSWORD, name=name, bio=f"{name} writes code",
                                    location="Medellín", roles=["mentor"])
    client = await kernel.sign_in(user)
    _, token = await personal_tokens.create(user, "backup script", ["read"], None)
    await LinkedIdentity.insert(LinkedIdentity(key=f"github:{local}-42", user_id=user, provider="github",
                                               subject=f"{local}-42", email=alias, email_verified=True))
    await OneTimeToken.insert(OneTimeToken(purpose="email_change", token_hash=token_hash(secrets.token_hex(8)),
                                           user_id=user, data={"new": f"{local}.new@example.org"},
                                           expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    await RecoveryCode.insert(RecoveryCode(user_id=user, code_hash=token_hash(secrets.token_hex(8))))
    # A failed sign-in with the address before the account existed: no user id, the address in the detail.
    await AuthEvent.insert(AuthEvent(kind="login.failed", detail={"method": "password", "reason": "unknown_account",
                                                                  "email": address}))
    mailer = kernel.plugin("email").email
    await mailer.set_preferences(address, user_id=user, language="es", digest=False)
    await mailer.subscribe(address, "the sign-up form")
    await EmailSuppression.insert(EmailSuppression(address=alias, reason="bounce"))
    sent = await mailer.send("email.test", Recipient(address, name, user))

    async def delivered() -> bool:  # settled before anything is compared
        return await EmailMessage.count().where((EmailMessage.uid == sent) & (EmailMessage.status == "sent")) == 1

    await eventually(delivered, what="the test message sent")
    notes = kernel.plugin("notes")
    attachment = await notes.files.put("attachment", f"{name}'s shopping list".encode(), owner=user, filename="list.txt")
    answer = await client.post("/api/v1/notes", json={"text": f"{name}'s secret plan"})
    assert answer.status_code == 201, answer.text
    await profiles.save_settings(user, links=[{"label": "blog", "url": f"https://{local}.example.org/"}])
    await notes.activity.record(user, "notes.created", metadata={"title": f"{name}'s secret plan"})
    return {"id": user, "email": address, "alias": alias, "name": name, "client": client, "token": token,
            "file": attachment.id, "texts": [f"{name}'s secret plan", f"{name}'s shopping list",
                                             f"https://{local}.example.org/", f"{local}-42"]}


async def exported(kernel: Any, client: Any) -> tuple[dict[str, Any], zipfile.ZipFile]:
    """Ask for an export, wait until it is ready, download it: the last answer and the zip."""
    asked = await client.post("/api/v1/me/export")
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "building" and asked.json()["download_url"] is None
    location = asked.headers["location"]

    async def ready() -> bool:
        return (await client.get(location)).json()["status"] == "ready"

    await eventually(ready, what="the export built")
    answer = (await client.get(location)).json()
    download = await client.get(answer["download_url"])
    assert download.status_code == 200, download.text
    return answer, zipfile.ZipFile(io.BytesIO(download.content))


async def every_row(kernel: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of every enabled plugin, by table name (JSON columns parsed, so
    that text in them is compared as written, not as JSON escapes)."""
    found = {}
    for table in kernel.kernel.tables():
        found[table._meta.tablename] = list(await table.select().output(load_json=True))
    return found


def mentions(rows: dict[str, list[dict[str, Any]]], needles: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, row) for name, table in rows.items() for row in table
            if any(needle in json.dumps(row, default=str, ensure_ascii=False) for needle in needles)]


async def deletion_done(kernel: Any) -> None:
    async def done() -> bool:
        entries = [e for e in await kernel.kernel.jobs.outbox.list() if e.job == "auth.delete_account"]
        return any(e.status == "done" for e in entries)

    await eventually(done, what="the deletion job done")


# --- export ------------------------------------------------------------------------------------


async def test_the_export_holds_every_plugins_data_and_the_members_files(coderic_kernel: Any) -> None:
    ana = await member(coderic_kernel, "ana", "Ana Pérez")
    bob = await member(coderic_kernel, "bob", "Bob Smith")
    answer, archive = await exported(coderic_kernel, ana["client"])
    names = set(archive.namelist())
    assert names == {"README.txt", "manifest.json", "email.json", "auth.json", "files.json", "notifications.json", "notes.json",
                     f"files/{ana['file']}/list.txt"}
    assert archive.read(f"files/{ana['file']}/list.txt") == b"Ana P\xc3\xa9rez's shopping list"
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["user_id"] == ana["id"] and manifest["files"] == 1 and manifest["missing_files"] == []
    assert manifest["plugins"]["auth"] == {"file": "auth.json", "data": ["profile", "activity", "roles", "account"]}
    auth = json.loads(archive.read("auth.json"))
    assert auth["plugin"] == "auth"
    data = auth["data"]
    account = data["account"]
    assert (account["account"]["email"], account["account"]["name"]) == ("ana@example.org", "Ana Pérez")
    assert account["account"]["has_password"] is True
    assert [i["email"] for i in account["linked_identities"]] == ["ana.github@example.org"]
    assert [t["name"] for t in account["personal_tokens"]] == ["backup script"]
    assert account["recovery_codes"] == {"total": 1, "unused": 1}
    assert {e["kind"] for e in account["audit"]} >= {"login.succeeded", "role.granted", "data.export_requested"}
    assert len(account["sessions"]) == 1 and account["pending_links"][0]["purpose"] == "email_change"
    assert [g["role"] for g in data["roles"]] == ["mentor"]
    assert data["profile"]["links"] == [{"label": "blog", "url": "https://ana.example.org/"}]
    assert "notes.created" in [a["type"] for a in data["activity"]]
    email = json.loads(archive.read("email.json"))["data"]["email"]
    assert email["addresses"][0]["address"] == "ana@example.org" and email["addresses"][0]["language"] == "es"
    assert email["newsletter"][0]["consent_source"] == "the sign-up form"
    assert email["suppressions"] == [{"address": "ana.github@example.org", "reason": "bounce",
                                      "created_at": email["suppressions"][0]["created_at"]}]
    assert [m["template"] for m in email["messages"]] == ["email.test"]
    assert "raw" not in email["messages"][0]
    files = json.loads(archive.read("files.json"))["data"]["files"]
    assert [(f["id"], f["archive_path"]) for f in files] == [(ana["file"], f"files/{ana['file']}/list.txt")]
    assert json.loads(archive.read("notes.json"))["data"]["notes"][0]["text"] == "Ana Pérez's secret plan"
    # Nothing of Bob's, and no secret: no password hash, token, token hash or 2FA secret.
    everything = b"".join(archive.read(name) for name in names).decode()
    user = await User.select().where(User.uid == ana["id"]).first()
    hashes = [row["token_hash"] for row in await PersonalToken.select(PersonalToken.token_hash)]
    hashes += [row["token_hash"] for row in await Session.select(Session.token_hash) if row["token_hash"]]
    for secret in [user["password_hash"], ana["token"], *hashes, bob["id"], bob["email"], "Bob Smith", *bob["texts"]]:
        assert secret not in everything, secret
    # The member is told, in their language, with a link to the page, not to the file.
    [mail] = await EmailMessage.select().where(EmailMessage.template == "email.data_export_ready")
    assert (mail["to_address"], mail["user_id"], mail["language"]) == ("ana@example.org", ana["id"], "es")
    assert mail["subject"] == "Tus datos de Coderic están listos para descargar"
    assert "http://testserver/account/data" in mail["raw"] and answer["download_url"] not in mail["raw"]
    stored = await FileRecord.objects().where(FileRecord.purpose == "auth.export").first()
    assert (stored.owner, stored.visibility, stored.content_type) == (None, "private", "application/zip")


async def test_an_export_is_the_owners_alone_once_a_day_and_expires(coderic_kernel: Any, monkeypatch: Any) -> None:
    ana = await member(coderic_kernel, "ana", "Ana Pérez")
    bob = await coderic_kernel.create_user("bob@example.org", name="Bob")
    bob_client = await coderic_kernel.sign_in(bob)
    answer, _ = await exported(coderic_kernel, ana["client"])
    export_id, url = answer["id"], answer["download_url"]
    again = await ana["client"].post("/api/v1/me/export")
    assert again.status_code == 429 and again.json()["export_id"] == export_id
    assert 86_000 < int(again.headers["retry-after"]) <= 86_400
    # Another member, a guest and a personal token (even the owner's) see nothing.
    assert (await bob_client.get(f"/api/v1/me/export/{export_id}")).status_code == 404
    assert (await coderic_kernel.client.get(f"/api/v1/me/export/{export_id}")).status_code == 401
    personal = {"Authorization": f"Bearer {ana['token']}"}
    assert (await coderic_kernel.client.get(f"/api/v1/me/export/{export_id}", headers=personal)).status_code == 403
    assert (await coderic_kernel.client.post("/api/v1/me/export", headers=personal)).status_code == 403
    file_id = (await DataExport.objects().where(DataExport.uid == export_id).first()).file_id
    for client in (bob_client, ana["client"]):  # through the file API: an ownerless private file is no one's
        assert (await client.get(f"/api/v1/files/{file_id}")).status_code == 404
        assert (await client.get(f"/api/v1/files/{file_id}/content")).status_code == 404
    assert (await bob_client.get("/api/v1/me/export/" + "0" * 32)).status_code == 404
    # The signed URL stops working when it expires, and a changed one never works.
    signature = url.rsplit("signature=", 1)[1]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert (await coderic_kernel.client.get(tampered)).status_code == 403
    later = time.time() + 3600
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: later))
    assert (await coderic_kernel.client.get(url)).status_code == 403
    monkeypatch.undo()
    # After its days, the clean-up removes the archive (record and object) and the export.
    record = await FileRecord.objects().where(FileRecord.uid == file_id).first()
    path = Path(coderic_kernel.kernel.config.kernel.storage_url.removeprefix("file://")) / record.key
    assert path.exists()
    await exports.expire_exports(job_context(coderic_kernel))
    assert await DataExport.count() == 1
    await DataExport.update({DataExport.expires_at: datetime.now(timezone.utc) - timedelta(seconds=1)}).where(
        DataExport.uid == export_id
    )
    await exports.expire_exports(job_context(coderic_kernel))
    assert await DataExport.count() == 0 and await FileRecord.count().where(FileRecord.uid == file_id) == 0
    assert not path.exists()
    assert (await ana["client"].get(f"/api/v1/me/export/{export_id}")).status_code == 404
    assert (await coderic_kernel.client.get(url)).status_code == 404
    # A build job run again for it (a retry) finds nothing to do.
    await exports.build_export(job_context(coderic_kernel), {"export": export_id})
    assert await FileRecord.count().where(FileRecord.purpose == "auth.export") == 0


# --- delete ------------------------------------------------------------------------------------


async def test_deleting_the_account_leaves_nothing_personal_behind(coderic_kernel: Any) -> None:
    ana = await member(coderic_kernel, "ana", "Ana Pérez")
    bob = await member(coderic_kernel, "bob", "Bob Smith")
    await exported(coderic_kernel, ana["client"])
    browser = await coderic_kernel.sign_in(ana["id"], mode="session")
    storage = Path(coderic_kernel.kernel.config.kernel.storage_url.removeprefix("file://"))
    ana_file = storage / (await FileRecord.objects().where(FileRecord.uid == ana["file"]).first()).key
    assert ana_file.exists()
    before = await every_row(coderic_kernel)
    needles = [ana["id"], ana["email"], ana["alias"], "ana.new@example.org", ana["name"], *ana["texts"]]
    assert {name for name, _ in mentions(before, needles)} >= {
        "kernel_user", "kernel_identity", "kernel_session", "kernel_refresh_token", "kernel_personal_token",
        "kernel_auth_token", "kernel_recovery_code", "kernel_auth_event", "kernel_role_grant", "kernel_email_message",
        "kernel_email_address", "kernel_email_subscription", "kernel_email_suppression", "kernel_file",
        "kernel_profile", "kernel_activity", "kernel_data_export", "notes_note",
    }

    answer = await browser.delete("/api/v1/me")
    assert answer.status_code == 202 and answer.json() == {"status": "deleting"}
    assert any(c.startswith("__Host-coderic_session=") and "Max-Age=0" in c for c in answer.headers.get_list("set-cookie"))
    # Closed at once: the session, other sessions and personal tokens no longer work.
    assert (await browser.get("/api/v1/me")).status_code == 401
    assert (await coderic_kernel.client.get("/api/v1/me", headers={"Authorization": f"Bearer {ana['token']}"})).status_code == 401
    await deletion_done(coderic_kernel)

    after = await every_row(coderic_kernel)
    left = mentions(after, needles)
    allowed = [(name, row) for name, row in left if name == "kernel_user"
               or (name == "kernel_auth_event" and row["kind"] == "account.deleted")
               or (name == "kernel_outbox" and row["job"] in ("auth.delete_account", "search.update"))]
    assert left == allowed, [name for name, _ in left]
    [(_, tombstone)] = [entry for entry in left if entry[0] == "kernel_user"]
    assert tombstone["status"] == "deleted" and tombstone["email"] is None and tombstone["github_id"] is None
    assert (tombstone["name"], tombstone["bio"], tombstone["location"], tombstone["password_hash"]) == ("", "", "", None)
    personal_values = [ana["email"], ana["name"], "Medellín", "Ana Pérez writes code"]
    assert not mentions({"kernel_user": [tombstone]}, personal_values)
    [(_, entry)] = [entry for entry in left if entry[0] == "kernel_auth_event"]
    assert (entry["ip"], entry["user_agent"], entry["request_id"], entry["detail"]) == ("", "", "", {})
    # Storage: the member's file and the archive are gone; Bob's file stays.
    assert not ana_file.exists()
    assert not [p for p in storage.rglob("*") if p.is_file() and ana["file"] in str(p)]
    assert not [p for p in storage.rglob("*") if "/export/" in str(p) and p.is_file()]
    # Bob keeps everything.
    bob_rows = mentions(after, [bob["id"], bob["email"], *bob["texts"]])
    assert len(bob_rows) == len(mentions(before, [bob["id"], bob["email"], *bob["texts"]]))
    assert (await bob["client"].get("/api/v1/me")).json()["email"] == "bob@example.org"


async def test_deletion_is_idempotent_and_its_second_run_catches_late_writes(coderic_kernel: Any) -> None:
    ana = await member(coderic_kernel, "ana", "Ana Pérez")
    answer = await ana["client"].delete("/api/v1/me")  # an access token, signed in just now
    assert answer.status_code == 202
    await deletion_done(coderic_kernel)
    jobs = [(e.key, e.available_at > datetime.now(timezone.utc) + timedelta(minutes=10))
            for e in await coderic_kernel.kernel.jobs.outbox.list() if e.job == "auth.delete_account"]
    assert sorted(jobs) == [(f"auth.delete_account:{ana['id']}", False), (f"auth.delete_account:{ana['id']}:again", True)]
    settled = await every_row(coderic_kernel)
    # The account's sessions ended with it: its access token, unexpired, is refused.
    assert (await ana["client"].delete("/api/v1/me")).status_code == 401
    # A retried job changes nothing and does not fail.
    await deletion.delete_account(job_context(coderic_kernel), {"user": ana["id"]})
    outbox = "kernel_outbox"
    now = {name: rows for name, rows in (await every_row(coderic_kernel)).items() if name != outbox}
    assert now == {name: rows for name, rows in settled.items() if name != outbox}
    assert await AuthEvent.count().where(AuthEvent.kind == "account.deleted") == 1
    # A request that was under way when the account was deleted writes after the first run;
    # the second run removes it.
    await User.raw("INSERT INTO notes_note (author, text, created_at) VALUES ({}, {}, {})",
                   ana["id"], "written late", datetime.now(timezone.utc))
    assert mentions(await every_row(coderic_kernel), ["written late"])
    await deletion.delete_account(job_context(coderic_kernel), {"user": ana["id"]})
    assert not mentions(await every_row(coderic_kernel), ["written late"])
    # A job for an account that is not deleted does nothing.
    bob = await coderic_kernel.create_user("bob@example.org", name="Bob")
    await deletion.delete_account(job_context(coderic_kernel), {"user": bob})
    assert (await User.select(User.email).where(User.uid == bob).first())["email"] == "bob@example.org"


async def test_deleting_needs_a_recent_sign_in_by_the_member(coderic_kernel: Any) -> None:
    ana = await member(coderic_kernel, "ana", "Ana Pérez")
    assert (await coderic_kernel.client.delete("/api/v1/me")).status_code == 401
    personal = {"Authorization": f"Bearer {ana['token']}"}
    assert (await coderic_kernel.client.delete("/api/v1/me", headers=personal)).status_code == 403
    await Session.update({Session.authenticated_at: datetime.now(timezone.utc) - timedelta(minutes=11)}).where(
        Session.user_id == ana["id"]
    )
    stale = await ana["client"].delete("/api/v1/me")
    assert stale.status_code == 403
    assert stale.json()["type"] == "https://coderic.org/problems/reauthentication-required"
    assert (await User.select(User.status).where(User.uid == ana["id"]).first())["status"] == "active"
    assert not [e for e in await coderic_kernel.kernel.jobs.outbox.list() if e.job == "auth.delete_account"]


# --- the SDK's check ---------------------------------------------------------------------------


async def test_the_sdk_check_passes_for_the_kernel_and_a_plugin_doing_it_right(coderic_kernel: Any) -> None:
    for plugin in ("notes", "files", "email", "auth"):
        ana = await member(coderic_kernel, f"ana{plugin}", "Ana Pérez")
        bob = await member(coderic_kernel, f"bob{plugin}", "Bob Smith")
        found = await check_personal_data(coderic_kernel, plugin, ana["id"], bystander=bob["id"])
        assert found, plugin
    assert found["account"]["account"]["name"] == "Ana Pérez"


@pytest.mark.coderic(plugins=["careless"])
@pytest.mark.parametrize(("mode", "complaint"), [
    ("right", None),
    ("keeps", "personal data 'things' still exports"),
    ("dates", "is not JSON-safe: things[0].at is a datetime"),
    ("once", "deleting personal data 'things' a second time raised KeyError"),
    ("everyone", "changed the 'things' data of user 'bob'"),
])
async def test_the_sdk_check_fails_for_a_plugin_doing_it_wrong(coderic_kernel: Any, mode: str, complaint: str | None) -> None:
    sys.modules["fake_careless"].STORE.update({"ana": {"thing": 1}, "bob": {"thing": 2}})
    if complaint is None:
        found = await check_personal_data(coderic_kernel, "careless", "ana", bystander="bob")
        assert found == {"things": {"things": [{"thing": 1}]}}
        return
    with pytest.raises(AssertionError, match=re.escape(complaint)):
        await check_personal_data(coderic_kernel, "careless", "ana", bystander="bob")


async def test_the_sdk_check_fails_without_declarations_or_data(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    with pytest.raises(AssertionError, match="plugin 'kernel' declares no personal data: implement register_personal_data"):
        await check_personal_data(coderic_kernel, "kernel", ana)
    with pytest.raises(AssertionError, match="every export is empty for user"):
        await check_personal_data(coderic_kernel, "notes", ana)


def test_a_declaration_without_a_delete_stops_boot(fake_plugins: FakeSite) -> None:  # noqa: F811
    fake_plugins.install(FakePlugin("forgetful", """
from coderic_sdk import PersonalData


async def export(user_id):
    return []


@hookimpl
def register_personal_data():
    return [PersonalData("things", export, None)]
"""), FakePlugin("twice", """
from coderic_sdk import PersonalData


async def export(user_id):
    return []


@hookimpl
def register_personal_data():
    return [PersonalData("things", export, export), PersonalData("things", export, export)]
"""))
    assert boot_error("forgetful") == (
        "plugin 'forgetful' failed at register: register_personal_data raised ValueError: personal data 'things': "
        "delete must be an async function taking the user's id"
    )
    assert boot_error("twice") == "plugin 'twice' failed at register: personal data 'things' declared twice"
