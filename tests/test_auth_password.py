"""Email and password (issue 7): registering, verifying, signing in, resetting and changing the
password, changing the address, and throttling, through the HTTP API as an attacker would.

Mail is read from the durable outbox (``kernel_email_message``): what was queued is what the
member receives. Responses that must not tell known addresses from unknown ones are compared
whole (status, body and headers) once the per-request id is taken out, each from its own client
address so that the rate-limit counts agree too.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx2
import pytest
from coderic_kernel.config import load_configuration
from coderic_kernel.email.tables import EmailMessage
from coderic_kernel.identity import email_flows, passwords
from coderic_kernel.identity.service import identity_for
from coderic_kernel.identity.tables import AuthEvent, OneTimeToken, RefreshToken, Session, User
from coderic_kernel.kernel import Kernel
from coderic_kernel.web.app import create_app
from coderic_sdk import Problem

PUBLIC_URL = "https://coderic.example"
CONFIG = {"public_url": PUBLIC_URL, "secret_key": "s" * 40}
pytestmark = pytest.mark.coderic(config=CONFIG)
PASSWORD = "a long and unusual passphrase"
NEW_PASSWORD = "another quite unusual passphrase"
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused


# --- helpers -----------------------------------------------------------------------------------


def client(kernel: Any, ip: str = "10.0.0.1", **headers: str) -> httpx2.AsyncClient:
    """A client whose requests come from ``ip``; https, so that ``__Host-`` cookies are sent back."""
    transport = httpx2.ASGITransport(app=kernel.app, client=(ip, 4321))
    http = httpx2.AsyncClient(transport=transport, base_url="https://testserver", headers=headers)
    kernel._clients.append(http)
    return http


async def post(http: httpx2.AsyncClient, path: str, body: dict[str, Any]) -> httpx2.Response:
    return await http.post("/api/v1/auth" + path, json=body)


def comparable(response: httpx2.Response) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A response without what differs between any two requests: their ids, and the whole
    seconds until the rate-limit bucket refills (``t=120`` or ``t=121`` by a millisecond)."""
    body = response.json()
    body.pop("request_id", None)
    headers = {key: value for key, value in response.headers.items() if key != "x-request-id"}
    if "ratelimit" in headers:
        headers["ratelimit"] = re.sub(r";t=\d+", "", headers["ratelimit"])
    return response.status_code, body, headers


async def mails(to: str | None = None, template: str | None = None) -> list[dict[str, Any]]:
    """Queued messages, oldest first: ``to``, ``template``, ``subject`` and the text part."""
    query = EmailMessage.select(EmailMessage.to_address, EmailMessage.template, EmailMessage.raw).order_by(EmailMessage.id)
    found = []
    for row in await query:
        if (to is None or row["to_address"] == to) and (template is None or row["template"] == template):
            message = email.message_from_string(row["raw"], policy=email.policy.default)
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            found.append({"to": row["to_address"], "template": row["template"], "subject": message["Subject"], "text": text})
    return found


def token_in(mail: dict[str, Any], page: str) -> str:
    match = re.search(re.escape(PUBLIC_URL + page) + r"\?token=([A-Za-z0-9_-]+)", mail["text"])
    assert match, f"no {page} link in: {mail['text']}"
    return match.group(1)


async def events(kind: str) -> list[dict[str, Any]]:
    return list(await AuthEvent.select().where(AuthEvent.kind == kind).order_by(AuthEvent.id).output(load_json=True))


async def user_row(address: str) -> dict[str, Any]:
    row = await User.select().where(User.email == address).first()
    assert row is not None
    return dict(row)


async def registered(kernel: Any, address: str = "ana@example.org", password: str = PASSWORD, name: str = "Ana") -> str:
    """Register through the API and verify through the link; the account's id."""
    http = client(kernel, "10.9.9.9")
    assert (await post(http, "/register", {"email": address, "password": password, "name": name})).status_code == 202
    [mail] = await mails(address, "email.verify_email")
    assert (await post(http, "/verify-email", {"token": token_in(mail, "/verify-email")})).status_code == 204
    return str((await user_row(address))["uid"])


async def login(http: httpx2.AsyncClient, address: str, password: str, mode: str = "session") -> httpx2.Response:
    return await post(http, "/login", {"email": address, "password": password, "mode": mode})


async def browser(kernel: Any, address: str, password: str, ip: str = "10.0.0.2") -> httpx2.AsyncClient:
    """A browser signed in with the password: cookies kept, CSRF token sent."""
    http = client(kernel, ip)
    answer = await login(http, address, password)
    assert answer.status_code == 200, answer.text
    http.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return http


# --- registering -------------------------------------------------------------------------------


async def test_registering_sends_a_verification_link_built_from_the_public_url(coderic_kernel: Any) -> None:
    http = client(coderic_kernel)
    answer = await http.post("/api/v1/auth/register", headers={"Host": "evil.example"},
                             json={"email": "Ana@Example.org", "password": PASSWORD, "name": "Ana", "language": "es"})
    assert answer.status_code == 202
    assert answer.headers["cache-control"] == "no-store"
    row = await user_row("ana@example.org")
    assert (row["email_verified"], row["name"], row["language"]) == (False, "Ana", "es")
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    [mail] = await mails("ana@example.org")
    assert mail["template"] == "email.verify_email" and mail["subject"] == "Confirma tu dirección de correo"
    assert f"{PUBLIC_URL}/verify-email?token=" in mail["text"] and "evil.example" not in mail["text"]
    token = token_in(mail, "/verify-email")
    stored = await OneTimeToken.select().where(OneTimeToken.user_id == row["uid"]).first()
    assert stored["purpose"] == "verify_email" and token not in str(stored)  # only its hash is kept
    assert [e["user_id"] for e in await events("account.registered")] == [row["uid"]]


async def test_an_unverified_account_cannot_sign_in_until_the_link_is_used(coderic_kernel: Any) -> None:
    http = client(coderic_kernel)
    await post(http, "/register", {"email": "ana@example.org", "password": PASSWORD})
    refused = await login(http, "ana@example.org", PASSWORD)
    assert refused.status_code == 403
    assert refused.json()["type"] == "https://coderic.org/problems/email-not-verified"
    # A wrong password says nothing about the account: the answer of an unknown address.
    assert (await login(http, "ana@example.org", "not the password at all")).status_code == 401
    [mail] = await mails("ana@example.org")
    assert (await post(http, "/verify-email", {"token": token_in(mail, "/verify-email")})).status_code == 204
    assert (await user_row("ana@example.org"))["email_verified"] is True
    assert (await login(http, "ana@example.org", PASSWORD)).json()["status"] == "signed_in"
    assert [m["template"] for m in await mails("ana@example.org")] == ["email.verify_email", "email.welcome"]


async def test_registering_a_known_address_answers_the_same_and_notifies_its_owner(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org", password=PASSWORD, name="Ana")
    known = await post(client(coderic_kernel, "10.0.0.1"), "/register",
                       {"email": "ana@example.org", "password": "the intruder's own passphrase", "name": "Eve"})
    unknown = await post(client(coderic_kernel, "10.0.0.2"), "/register",
                         {"email": "bea@example.org", "password": "the intruder's own passphrase", "name": "Eve"})
    assert comparable(known) == comparable(unknown)
    [notice] = await mails("ana@example.org")
    assert notice["template"] == "auth.account_exists" and f"{PUBLIC_URL}/reset-password" in notice["text"]
    row = await user_row("ana@example.org")
    assert (row["uid"], row["name"]) == (ana, "Ana")  # nothing of the attempt was kept
    assert (await login(client(coderic_kernel), "ana@example.org", PASSWORD)).status_code == 200
    assert await User.count().where(User.email == "ana@example.org") == 1


async def test_resending_verification_answers_the_same_for_every_address(coderic_kernel: Any) -> None:
    await post(client(coderic_kernel, "10.0.0.9"), "/register", {"email": "ana@example.org", "password": PASSWORD})
    await coderic_kernel.create_user("bea@example.org", password=PASSWORD)  # verified already
    answers = [await post(client(coderic_kernel, f"10.0.1.{i}"), "/verify-email/resend", {"email": address})
               for i, address in enumerate(["ana@example.org", "bea@example.org", "nobody@example.org"])]
    assert len({repr(comparable(a)) for a in answers}) == 1 and answers[0].status_code == 202
    first, second = await mails("ana@example.org", "email.verify_email")
    assert await mails("bea@example.org") == [] and await mails("nobody@example.org") == []
    http = client(coderic_kernel)
    assert (await post(http, "/verify-email", {"token": token_in(first, "/verify-email")})).status_code == 404  # replaced
    assert (await post(http, "/verify-email", {"token": token_in(second, "/verify-email")})).status_code == 204


async def test_verification_tokens_are_single_use_expire_and_serve_one_purpose(coderic_kernel: Any) -> None:
    http = client(coderic_kernel)
    for address in ("ana@example.org", "bea@example.org", "cid@example.org"):
        await post(http, "/register", {"email": address, "password": PASSWORD})
    ana, bea, cid = [token_in((await mails(a))[0], "/verify-email") for a in ("ana@example.org", "bea@example.org", "cid@example.org")]
    assert (await post(http, "/verify-email", {"token": ana})).status_code == 204
    again = await post(http, "/verify-email", {"token": ana})
    assert again.status_code == 404 and again.json()["type"] == "https://coderic.org/problems/invalid-link"
    await OneTimeToken.update({OneTimeToken.expires_at: datetime.now(timezone.utc) - timedelta(seconds=1)}).where(
        OneTimeToken.user_id == (await user_row("bea@example.org"))["uid"])
    assert (await post(http, "/verify-email", {"token": bea})).status_code == 404
    assert (await user_row("bea@example.org"))["email_verified"] is False
    # A verification token is no reset token, nor an email-change token.
    assert (await post(http, "/password/reset/confirm", {"token": cid, "password": NEW_PASSWORD})).status_code == 404
    assert (await post(http, "/email/change/confirm", {"token": cid})).status_code == 404
    assert (await post(http, "/verify-email", {"token": "x" * 43})).status_code == 404
    assert (await post(http, "/verify-email", {"token": cid})).status_code == 204


# --- signing in --------------------------------------------------------------------------------


async def test_signing_in_with_a_password_in_session_and_token_modes(coderic_kernel: Any) -> None:
    ana = await registered(coderic_kernel)
    http = await browser(coderic_kernel, "ana@example.org", PASSWORD)
    assert (await http.get("/api/v1/me")).json()["id"] == ana
    token = await login(client(coderic_kernel), "ANA@example.org", PASSWORD, mode="token")
    body = token.json()
    assert token.status_code == 200 and body["status"] == "signed_in" and body["user"]["email_verified"] is True
    assert token.headers["cache-control"] == "no-store" and "coderic_session" not in token.headers.get("set-cookie", "")
    me = await client(coderic_kernel).get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["id"] == ana
    assert [e["detail"]["method"] for e in await events("login.succeeded")] == ["password", "password"]


async def test_unknown_address_wrong_password_and_no_password_get_one_answer(coderic_kernel: Any) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD)
    await coderic_kernel.create_user("gil@example.org")  # signs in with GitHub: no password
    attempts = [("ana@example.org", "not ana's password at all"), ("nobody@example.org", PASSWORD),
                ("gil@example.org", PASSWORD)]
    answers = [await login(client(coderic_kernel, f"10.0.2.{i}"), address, password)
               for i, (address, password) in enumerate(attempts)]
    assert answers[0].status_code == 401
    assert comparable(answers[0]) == comparable(answers[1]) == comparable(answers[2])
    failed = await events("login.failed")
    assert [e["detail"]["reason"] for e in failed] == ["wrong_password", "unknown_account", "no_password"]
    assert all(PASSWORD not in str(e) and "not ana's" not in str(e) for e in failed)  # never what was typed


async def test_a_disabled_account_is_refused_only_after_the_right_password(coderic_kernel: Any) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD, status="disabled")
    assert (await login(client(coderic_kernel), "ana@example.org", "not the password at all")).status_code == 401
    assert (await login(client(coderic_kernel), "ana@example.org", PASSWORD)).status_code == 403


def test_the_real_hashing_parameters_are_at_or_above_owasps(monkeypatch: Any) -> None:
    monkeypatch.undo()  # away with the suite's quick parameters (tests/conftest.py)
    parameters = passwords.HASHER.hash("x").split("$")[3]
    fields = dict(part.split("=") for part in parameters.split(","))
    assert passwords.HASHER.hash("x").startswith("$argon2id$")
    assert int(fields["m"]) >= 19 * 1024 and int(fields["t"]) >= 2 and int(fields["p"]) >= 1  # OWASP's minimum


async def test_a_hash_made_with_weaker_parameters_is_replaced_at_sign_in(coderic_kernel: Any, monkeypatch: Any) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD)  # with the suite's quick parameters
    old = (await user_row("ana@example.org"))["password_hash"]
    assert "m=8192,t=1,p=1" in old
    monkeypatch.undo()  # the parameters rise to the kernel's own
    assert passwords.needs_rehash(old)
    assert (await login(client(coderic_kernel), "ana@example.org", PASSWORD)).status_code == 200
    new = (await user_row("ana@example.org"))["password_hash"]
    assert new != old and not passwords.needs_rehash(new) and passwords.verify_password(new, PASSWORD)
    assert (await login(client(coderic_kernel), "ana@example.org", PASSWORD)).status_code == 200
    assert len(await events("password.rehashed")) == 1


# --- password rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(("password", "reason"), [
    ("elevenchars", "password_too_short"),
    ("ñ" * 129, "password_too_long"),
    ("😀" * 129, "password_too_long"),  # code points, not UTF-16 units nor bytes
    ("password1234", "password_common"),
    ("Password1234!", "password_common"),
    ("qwertyuiop123", "password_common"),
    ("QazWsxEdcRfv", "password_common"),
    ("abcabcabcabcabc", "password_pattern"),
    ("123456789012345", "password_pattern"),
    ("ana@example.org", "password_personal"),
    ("ANA@example.org", "password_personal"),
    ("Ana María López", "password_personal"),
])
async def test_new_passwords_breaking_a_rule_are_refused_naming_field_and_reason(
    coderic_kernel: Any, password: str, reason: str,
) -> None:
    answer = await post(client(coderic_kernel), "/register",
                        {"email": "ana@example.org", "password": password, "name": "Ana María López"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert (error["field"], error["type"]) == ("body.password", reason)
    assert await User.count() == 0 and await mails() == []


@pytest.mark.parametrize("password", [
    "contraseña de ñandú 🦤",  # any Unicode, spaces and emoji included
    "x" * 12 + "🙂" * 116,  # 128 code points (244 UTF-16 units, 476 bytes)
    "correct horse battery staple",
])
async def test_any_unicode_is_accepted_up_to_128_code_points(coderic_kernel: Any, password: str) -> None:
    assert len(password) <= 128
    answer = await post(client(coderic_kernel), "/register", {"email": "ana@example.org", "password": password})
    assert answer.status_code == 202, answer.text


async def test_passwords_are_compared_in_nfkc_form_and_never_truncated(coderic_kernel: Any) -> None:
    composed = "contrase\u00f1a-de-\u00f1and\u00fa-" + "k" * 75 + "-end1"  # 100 code points, ñ and ú composed
    assert len(composed) == 100
    await registered(coderic_kernel, password=composed)
    decomposed = composed.replace("\u00f1", "n\u0303").replace("\u00fa", "u\u0301")
    assert decomposed != composed
    assert (await login(client(coderic_kernel), "ana@example.org", decomposed)).status_code == 200  # same password
    assert (await login(client(coderic_kernel), "ana@example.org", composed[:-1] + "2")).status_code == 401
    assert (await login(client(coderic_kernel), "ana@example.org", composed[:72])).status_code == 401  # no bcrypt cut
    assert (await login(client(coderic_kernel), "ana@example.org", composed + "x")).status_code == 401


# --- password reset ----------------------------------------------------------------------------


async def test_asking_for_a_reset_answers_the_same_for_known_and_unknown_addresses(coderic_kernel: Any) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD)
    known = await post(client(coderic_kernel, "10.0.3.1"), "/password/reset", {"email": "ana@example.org"})
    unknown = await post(client(coderic_kernel, "10.0.3.2"), "/password/reset", {"email": "nobody@example.org"})
    assert known.status_code == 202 and comparable(known) == comparable(unknown)
    [mail] = await mails("ana@example.org")
    assert mail["template"] == "email.password_reset" and "30 minutes" in mail["text"]
    assert f"{PUBLIC_URL}/reset-password?token=" in mail["text"]
    assert await mails("nobody@example.org") == []
    assert [e["detail"]["sent"] for e in await events("password.reset_requested")] == [True, False]


async def test_a_reset_sets_the_password_ends_every_session_and_signs_no_one_in(coderic_kernel: Any) -> None:
    ana = await registered(coderic_kernel)
    cookie = await browser(coderic_kernel, "ana@example.org", PASSWORD)
    app = (await login(client(coderic_kernel), "ana@example.org", PASSWORD, mode="token")).json()
    bot = {"Authorization": f"Bearer {app['access_token']}"}
    pat = (await client(coderic_kernel).post("/api/v1/me/tokens", json={"name": "bot", "scopes": ["read"]},
                                             headers=bot)).json()["token"]
    http = client(coderic_kernel, "10.0.4.1")
    await post(http, "/password/reset", {"email": "ana@example.org"})
    token = token_in((await mails("ana@example.org", "email.password_reset"))[-1], "/reset-password")
    # A refused password does not use the link up.
    weak = await post(http, "/password/reset/confirm", {"token": token, "password": "password1234"})
    assert weak.status_code == 422 and weak.json()["errors"][0]["type"] == "password_common"
    done = await post(http, "/password/reset/confirm", {"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 204 and "set-cookie" not in done.headers
    assert (await post(http, "/password/reset/confirm", {"token": token, "password": NEW_PASSWORD})).status_code == 404
    assert (await cookie.get("/api/v1/me")).status_code == 401  # the old cookie is dead
    refreshed = await post(http, "/token/refresh", {"refresh_token": app["refresh_token"]})
    assert refreshed.status_code == 401
    assert await Session.count().where((Session.user_id == ana) & Session.revoked_at.is_null()) == 0
    assert await RefreshToken.count().where((RefreshToken.user_id == ana) & RefreshToken.revoked_at.is_null()) == 0
    # A personal token minted before (perhaps by whoever took the account over) is dead too.
    assert (await client(coderic_kernel).get("/api/v1/me", headers={"Authorization": f"Bearer {pat}"})).status_code == 401
    assert (await login(client(coderic_kernel), "ana@example.org", PASSWORD)).status_code == 401
    assert (await login(client(coderic_kernel), "ana@example.org", NEW_PASSWORD)).status_code == 200
    [notice] = await mails("ana@example.org", "auth.password_changed")
    assert "reset" in notice["subject"] and "10.0.4.1" in notice["text"]
    assert [e["detail"]["sessions_ended"] for e in await events("password.reset")] == [2]


async def test_reset_links_expire_and_only_the_latest_works(coderic_kernel: Any) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD)
    http = client(coderic_kernel)
    await post(http, "/password/reset", {"email": "ana@example.org"})
    await post(http, "/password/reset", {"email": "ana@example.org"})
    first, second = [token_in(m, "/reset-password") for m in await mails("ana@example.org")]
    assert (await post(http, "/password/reset/confirm", {"token": first, "password": NEW_PASSWORD})).status_code == 404
    row = await OneTimeToken.select(OneTimeToken.created_at, OneTimeToken.expires_at).where(
        OneTimeToken.purpose == "password_reset").order_by(OneTimeToken.id, ascending=False).first()
    assert row["expires_at"] - row["created_at"] == timedelta(minutes=30)
    await OneTimeToken.update({OneTimeToken.expires_at: datetime.now(timezone.utc)}).where(OneTimeToken.purpose == "password_reset")
    assert (await post(http, "/password/reset/confirm", {"token": second, "password": NEW_PASSWORD})).status_code == 404
    # Wrong purpose: a reset token verifies nothing.
    await post(http, "/password/reset", {"email": "ana@example.org"})
    third = token_in((await mails("ana@example.org"))[-1], "/reset-password")
    assert (await post(http, "/verify-email", {"token": third})).status_code == 404
    assert (await post(http, "/password/reset/confirm", {"token": third, "password": NEW_PASSWORD})).status_code == 204


async def test_after_a_reset_the_second_factor_is_still_asked(coderic_kernel: Any) -> None:
    await registered(coderic_kernel)
    await User.update({User.totp_enabled_at: datetime.now(timezone.utc)}).where(User.email == "ana@example.org")
    http = client(coderic_kernel)
    await post(http, "/password/reset", {"email": "ana@example.org"})
    token = token_in((await mails("ana@example.org", "email.password_reset"))[-1], "/reset-password")
    assert (await post(http, "/password/reset/confirm", {"token": token, "password": NEW_PASSWORD})).status_code == 204
    assert (await login(http, "ana@example.org", NEW_PASSWORD)).json()["status"] == "two_factor_required"


async def test_a_reset_proves_the_address_of_an_unverified_registration(coderic_kernel: Any) -> None:
    """Someone registered the owner's address first: the owner takes the account over by reset."""
    http = client(coderic_kernel)
    await post(http, "/register", {"email": "ana@example.org", "password": "the squatter's passphrase"})
    await post(http, "/password/reset", {"email": "ana@example.org"})
    token = token_in((await mails("ana@example.org", "email.password_reset"))[0], "/reset-password")
    assert (await post(http, "/password/reset/confirm", {"token": token, "password": NEW_PASSWORD})).status_code == 204
    assert (await user_row("ana@example.org"))["email_verified"] is True
    assert (await login(http, "ana@example.org", "the squatter's passphrase")).status_code == 401
    assert (await login(http, "ana@example.org", NEW_PASSWORD)).status_code == 200
    # The squatter's verification link died with the reset.
    link = token_in((await mails("ana@example.org", "email.verify_email"))[0], "/verify-email")
    assert (await post(client(coderic_kernel), "/verify-email", {"token": link})).status_code == 404


# --- changing the password ---------------------------------------------------------------------


async def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(coderic_kernel: Any) -> None:
    ana = await registered(coderic_kernel)
    here = await browser(coderic_kernel, "ana@example.org", PASSWORD, ip="10.0.5.1")
    elsewhere = await browser(coderic_kernel, "ana@example.org", PASSWORD, ip="10.0.5.2")
    app = (await login(client(coderic_kernel), "ana@example.org", PASSWORD, mode="token")).json()
    change = "/api/v1/auth/password/change"
    missing = await here.post(change, json={"new_password": NEW_PASSWORD})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.current_password"
    wrong = await here.post(change, json={"current_password": "not my password", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 403 and wrong.json()["errors"][0]["type"] == "wrong_password"
    weak = await here.post(change, json={"current_password": PASSWORD, "new_password": "ana@example.org"})
    assert weak.status_code == 422 and weak.json()["errors"][0] == {
        "field": "body.new_password", "reason": "must not be your email address or your name", "type": "password_personal"}
    done = await here.post(change, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert done.status_code == 200 and done.json() == {"other_sessions_ended": 2}
    assert (await here.get("/api/v1/me")).status_code == 200  # this session stays
    assert (await elsewhere.get("/api/v1/me")).status_code == 401
    assert (await post(client(coderic_kernel), "/token/refresh", {"refresh_token": app["refresh_token"]})).status_code == 401
    assert (await login(client(coderic_kernel), "ana@example.org", NEW_PASSWORD)).status_code == 200
    assert [m["subject"] for m in await mails("ana@example.org", "auth.password_changed")] == [
        "The password of your Coderic account was changed"]
    assert [e["user_id"] for e in await events("password.changed")] == [ana]
    assert len(await events("password.check_failed")) == 1


async def test_personal_tokens_cannot_change_the_password(coderic_kernel: Any) -> None:
    await registered(coderic_kernel)
    http = await browser(coderic_kernel, "ana@example.org", PASSWORD)
    created = await http.post("/api/v1/me/tokens", json={"name": "bot", "scopes": ["write"]})
    bot = client(coderic_kernel, Authorization=f"Bearer {created.json()['token']}")
    answer = await bot.post("/api/v1/auth/password/change", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert answer.status_code == 403
    assert (await post(client(coderic_kernel), "/password/change",
                       {"current_password": PASSWORD, "new_password": NEW_PASSWORD})).status_code == 401


async def test_an_account_without_a_password_sets_one_soon_after_signing_in(coderic_kernel: Any) -> None:
    gil = await coderic_kernel.create_user("gil@example.org", name="Gil")
    http = await coderic_kernel.sign_in(gil)
    await Session.update({Session.authenticated_at: datetime.now(timezone.utc) - timedelta(minutes=11)}).where(
        Session.user_id == gil)
    stale = await http.post("/api/v1/auth/password/change", json={"new_password": NEW_PASSWORD})
    assert stale.status_code == 403 and stale.json()["type"] == "https://coderic.org/problems/reauthentication-required"
    await Session.update({Session.authenticated_at: datetime.now(timezone.utc)}).where(Session.user_id == gil)
    assert (await http.post("/api/v1/auth/password/change", json={"new_password": NEW_PASSWORD})).status_code == 200
    assert (await login(client(coderic_kernel), "gil@example.org", NEW_PASSWORD)).status_code == 200
    assert len(await events("password.set")) == 1


# --- changing the email address ----------------------------------------------------------------


async def test_changing_the_email_needs_recent_authentication_and_a_confirmation(coderic_kernel: Any) -> None:
    ana = await registered(coderic_kernel)
    http = await browser(coderic_kernel, "ana@example.org", PASSWORD, ip="10.0.6.1")
    change = "/api/v1/auth/email/change"
    await Session.update({Session.authenticated_at: datetime.now(timezone.utc) - timedelta(minutes=11)}).where(
        Session.user_id == ana)
    stale = await http.post(change, json={"new_email": "ana.nueva@example.org"})
    assert stale.status_code == 403 and stale.json()["type"] == "https://coderic.org/problems/reauthentication-required"
    wrong = await http.post(change, json={"new_email": "ana.nueva@example.org", "password": "not my password"})
    assert wrong.status_code == 403
    assert await mails("ana.nueva@example.org") == []
    asked = await http.post(change, json={"new_email": "Ana.Nueva@example.org", "password": PASSWORD})
    assert asked.status_code == 202
    assert (await user_row("ana@example.org"))["uid"] == ana  # nothing changes before the confirmation
    [mail] = await mails("ana.nueva@example.org")
    assert mail["template"] == "auth.confirm_email_change" and "60 minutes" in mail["text"]
    token = token_in(mail, "/confirm-email")
    confirmed = await post(client(coderic_kernel), "/email/change/confirm", {"token": token})
    assert confirmed.status_code == 200 and confirmed.json() == {"email": "ana.nueva@example.org", "email_verified": True}
    assert (await user_row("ana.nueva@example.org"))["uid"] == ana
    assert (await post(client(coderic_kernel), "/email/change/confirm", {"token": token})).status_code == 404
    [notice] = await mails("ana@example.org", "email.email_changed")
    assert "ana.nueva@example.org" in notice["text"] and "10.0.6.1" not in notice["to"]
    assert (await login(client(coderic_kernel), "ana.nueva@example.org", PASSWORD)).status_code == 200
    assert (await login(client(coderic_kernel), "ana@example.org", PASSWORD)).status_code == 401
    assert [e["detail"] for e in await events("email.changed")] == [{"old": "ana@example.org", "new": "ana.nueva@example.org"}]


async def test_an_address_taken_by_another_account_is_not_revealed(coderic_kernel: Any) -> None:
    await registered(coderic_kernel)
    await coderic_kernel.create_user("bea@example.org", password=PASSWORD)
    http = await browser(coderic_kernel, "ana@example.org", PASSWORD)  # signed in just now: recent
    taken = await http.post("/api/v1/auth/email/change", json={"new_email": "bea@example.org"})
    free = await http.post("/api/v1/auth/email/change", json={"new_email": "cid@example.org"})
    assert taken.status_code == free.status_code == 202 and taken.json() == free.json()
    assert await mails("bea@example.org") == []
    assert len(await mails("cid@example.org")) == 1
    # The address is taken after the link was sent: confirming says so, and changes nothing.
    await coderic_kernel.create_user("cid@example.org")
    token = token_in((await mails("cid@example.org"))[0], "/confirm-email")
    assert (await post(client(coderic_kernel), "/email/change/confirm", {"token": token})).status_code == 409
    assert (await user_row("ana@example.org"))["email_verified"] is True


# --- throttling --------------------------------------------------------------------------------


async def at_once(count: int, request: Any) -> list[httpx2.Response]:
    """``count`` requests sent together: all are counted before any password is checked."""
    return list(await asyncio.gather(*(request(i) for i in range(count))))


def statuses(answers: list[httpx2.Response]) -> list[int]:
    return sorted(answer.status_code for answer in answers)


def retry_after(answers: list[httpx2.Response]) -> int:
    [refused] = [answer for answer in answers if answer.status_code == 429]
    assert refused.json()["type"] == "https://coderic.org/problems/throttled"
    return int(refused.headers["retry-after"])


@pytest.mark.coderic(config={**CONFIG, "rate_limits": {"auth.login_account": "3/6 seconds"}})
async def test_guessing_one_account_is_throttled_then_recovers(coderic_kernel: Any, coderic_services: str) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD)
    http = client(coderic_kernel)
    guesses = await at_once(4, lambda i: login(http, "ana@example.org", f"wrong guess number {i}"))
    assert statuses(guesses) == [401, 401, 401, 429]
    assert 1 <= retry_after(guesses) <= 2  # one interval of the policy at most: backoff, not a lock
    assert (await login(http, "ana@example.org", PASSWORD)).status_code == 429  # even the right password waits
    # An unknown address is throttled alike; the account from another client address is not.
    unknown = await at_once(4, lambda i: login(http, "nobody@example.org", f"wrong guess number {i}"))
    assert statuses(unknown) == [401, 401, 401, 429]
    assert (await login(client(coderic_kernel, "10.0.0.7"), "ana@example.org", PASSWORD)).status_code == 200
    await asyncio.sleep(retry_after(guesses))
    assert (await login(http, "ana@example.org", PASSWORD)).status_code == 200


@pytest.mark.coderic(config={**CONFIG, "rate_limits": {"auth.login_account_daily": "4/8 seconds"}})
async def test_guesses_from_many_addresses_meet_the_per_account_limit(coderic_kernel: Any, coderic_services: str) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD)
    guesses = await at_once(5, lambda i: login(client(coderic_kernel, f"10.1.0.{i}"), "ana@example.org", "wrong guess"))
    assert statuses(guesses) == [401, 401, 401, 401, 429]
    assert (await login(client(coderic_kernel, "10.1.1.1"), "ana@example.org", PASSWORD)).status_code == 429
    await asyncio.sleep(retry_after(guesses))
    assert (await login(client(coderic_kernel, "10.1.1.2"), "ana@example.org", PASSWORD)).status_code == 200


@pytest.mark.coderic(config={**CONFIG, "rate_limits": {"auth.login": "2/minute", "auth.email_address": "2/minute"}})
async def test_addresses_and_mail_requests_are_throttled_too(coderic_kernel: Any, coderic_services: str) -> None:
    http = client(coderic_kernel)
    logins = await at_once(3, lambda i: login(http, f"user{i}@example.org", "wrong guess"))
    assert statuses(logins) == [401, 401, 429]  # one client address, whichever accounts
    asked = await at_once(3, lambda i: post(client(coderic_kernel, f"10.2.0.{i}"), "/password/reset",
                                            {"email": "ana@example.org"}))
    assert statuses(asked) == [202, 202, 429]  # one address flooded with mail, from anywhere
    resend = await post(client(coderic_kernel, "10.2.1.1"), "/verify-email/resend", {"email": "ana@example.org"})
    assert resend.status_code == 429
    assert (await post(client(coderic_kernel, "10.2.1.1"), "/password/reset", {"email": "bea@example.org"})).status_code == 202


async def test_throttling_fails_closed_when_redis_is_unreachable() -> None:
    configuration = load_configuration(environ={}, overrides={
        "environment": "test", "redis_url": CLOSED_PORT_REDIS, **CONFIG}, read_files=False)
    kernel = Kernel.boot(configuration)
    try:
        app = create_app(kernel, manage_lifespan=False)
        transport = httpx2.ASGITransport(app=app, client=("10.0.0.1", 4321))
        async with httpx2.AsyncClient(transport=transport, base_url="https://testserver") as http:
            for path, body in [("/login", {"email": "ana@example.org", "password": PASSWORD}),
                               ("/password/reset", {"email": "ana@example.org"}),
                               ("/register", {"email": "ana@example.org", "password": PASSWORD})]:
                answer = await post(http, path, body)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
        for policy in ("login_account", "login_account_daily", "email_address", "two_factor"):
            with pytest.raises(Problem) as caught:
                await identity_for(kernel).throttle(_Request(), policy, "ana@example.org")
            assert caught.value.status == 503
    finally:
        assert kernel.redis is not None
        await kernel.redis.close()


class _Request:
    client = None
    headers: dict[str, str] = {}
    scope: dict[str, Any] = {"state": {}}


# --- housekeeping ------------------------------------------------------------------------------


async def test_registrations_never_verified_are_forgotten_after_a_week(coderic_kernel: Any) -> None:
    http = client(coderic_kernel)
    await post(http, "/register", {"email": "old@example.org", "password": PASSWORD})
    await post(http, "/register", {"email": "new@example.org", "password": PASSWORD})
    await coderic_kernel.create_user("gil@example.org", verified=False)  # no password: not a registration
    week_ago = datetime.now(timezone.utc) - timedelta(days=8)
    await User.update({User.created_at: week_ago}).where(User.email.is_in(["old@example.org", "gil@example.org"]))
    assert await email_flows.forget_unverified(datetime.now(timezone.utc)) == 1
    assert await User.count().where(User.email == "old@example.org") == 0
    assert await User.count().where(User.email.is_in(["new@example.org", "gil@example.org"])) == 2
    # The address is free again.
    await post(http, "/register", {"email": "old@example.org", "password": PASSWORD})
    assert (await user_row("old@example.org"))["email_verified"] is False
