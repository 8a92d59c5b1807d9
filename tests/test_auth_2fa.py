"""Two-factor authentication (issue 7): TOTP enrolment, sign-in with a second factor, recovery
codes, and the ways an attacker would try to get around them, through the HTTP API.

Codes are computed with pyotp for chosen instants: the kernel's TOTP clock
(``totp_for(kernel).clock``) is set by the test, so "one step later" never races the real
clock. The first factor is a password checked by the ``probe`` plugin's test-only route,
which then calls ``signin.begin`` as every sign-in method does; tests about the second
factor skip the (slow, argon2) password check by sending none.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx2
import pyotp
import pytest
from coderic_kernel.config.model import KernelSettings
from coderic_kernel.email.tables import EmailMessage
from coderic_kernel.identity.crypto import Sealer
from coderic_kernel.identity.service import identity_for
from coderic_kernel.identity.tables import AuthEvent, OneTimeToken, RecoveryCode, Session, User
from coderic_kernel.identity.totp import qr_svg, totp_for
from fakeplugins import FakePlugin, FakeSite, fake_plugins  # noqa: F401

PUBLIC_URL = "https://coderic.example"
CONFIG = {"public_url": PUBLIC_URL, "secret_key": "s" * 40}
pytestmark = pytest.mark.coderic(config=CONFIG)
PASSWORD = "correct horse battery staple"
START = 1_800_000_015.0  # the middle of a 30 s step
API = "/api/v1/auth/2fa"
RECOVERY_CODE = re.compile(r"^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{2}$")

PROBE = FakePlugin("probe", '''
from typing import Literal

from coderic_sdk import Route, Schema, Unauthorized
from coderic_kernel.identity import users
from coderic_kernel.identity.passwords import verify_password_async
from coderic_kernel.identity.service import identity_for
from coderic_kernel.identity.signin import json_response


class LoginIn(Schema):
    email: str
    password: str | None = None
    mode: Literal["session", "token"] = "token"


async def login(ctx):
    """Test-only: the first factor is the password (or, without one, taken as given); then
    whatever signin.begin says."""
    user = await users.by_email(ctx.body.email)
    password = ctx.body.password
    if password is not None and not await verify_password_async(user["password_hash"] if user else None, password):
        raise Unauthorized("Wrong email or password.")
    outcome = await identity_for(ctx.plugin.kernel).signin.begin(ctx.request, user, "password", ctx.body.mode)
    return json_response(outcome)


@hookimpl
def register_routes():
    return [Route("POST", "/login", login, name="login", body=LoginIn)]
''')


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def coderic_plugins(fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(PROBE)
    return ["probe"]


@pytest.fixture
def clock(coderic_kernel: Any) -> Clock:
    chosen = Clock(START)
    totp_for(coderic_kernel.kernel).clock = chosen
    return chosen


def code(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)


def client(kernel: Any, *, ip: str = "127.0.0.1", browser: bool = False) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=kernel.app, client=(ip, 4321))
    made = httpx2.AsyncClient(transport=transport, base_url="https://testserver" if browser else "http://testserver")
    kernel._clients.append(made)
    return made


async def login(kernel: Any, email: str = "ana@example.org", *, via: httpx2.AsyncClient | None = None,
                mode: str = "token", password: str | None = None) -> dict[str, Any]:
    body = {"email": email, "mode": mode, **({"password": password} if password is not None else {})}
    response = await (via or kernel.client).post("/api/v1/probe/login", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def verify(kernel: Any, challenge: str | None, *, via: httpx2.AsyncClient | None = None, **proof: str) -> Any:
    body = {**({"challenge": challenge} if challenge else {}), **proof}
    return await (via or kernel.client).post(f"{API}/verify", json=body)


async def enrolled(kernel: Any, clock: Clock, email: str = "ana@example.org", *,
                   password: str | None = None) -> tuple[str, str, list[str]]:
    """A user with 2FA on: (user id, TOTP secret, recovery codes)."""
    user_id = await kernel.create_user(email, password=password, name="Ana")
    member = await kernel.sign_in(user_id)
    secret = (await member.post(f"{API}/totp/setup", json={})).json()["secret"]
    enabled = await member.post(f"{API}/totp/enable", json={"code": code(secret, clock.now)})
    assert enabled.status_code == 200, enabled.text
    clock.now += 300  # later sign-ins happen ten steps after the enrolment's code
    return user_id, secret, enabled.json()["recovery_codes"]


async def events(user_id: str, kind: str) -> list[dict[str, Any]]:
    return list(await AuthEvent.select().where((AuthEvent.user_id == user_id) & (AuthEvent.kind == kind)).output(load_json=True))


async def mails(address: str) -> list[dict[str, Any]]:
    return list(await EmailMessage.select(EmailMessage.template, EmailMessage.subject, EmailMessage.raw).where(
        EmailMessage.to_address == address
    ))


async def age_session(session_id: str, minutes: int) -> None:
    await Session.update({Session.authenticated_at: datetime.now(timezone.utc) - timedelta(minutes=minutes)}).where(
        Session.uid == session_id
    )


# --- enrolment ---------------------------------------------------------------------------------


async def test_enrolment_shows_a_secret_uri_and_qr_code_then_confirms_with_a_code(coderic_kernel: Any, clock: Clock) -> None:
    user_id = await coderic_kernel.create_user("ana@example.org", name="Ana")
    member = await coderic_kernel.sign_in(user_id)
    setup = await member.post(f"{API}/totp/setup", json={})
    assert setup.status_code == 200, setup.text
    body = setup.json()
    secret = body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # 160 bits, base32
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc, unquote(uri.path)) == ("otpauth", "totp", "/Coderic:ana@example.org")
    assert parse_qs(uri.query) == {"secret": [secret], "issuer": ["Coderic"]}  # SHA-1, 6 digits, 30 s: the defaults
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"] == qr_svg(body["otpauth_uri"])
    assert body["expires_in"] == 900
    assert (await member.get(API)).json() == {"enabled": False, "enabled_at": None, "recovery_codes_left": 0}

    wrong = await member.post(f"{API}/totp/enable", json={"code": code(secret, clock.now + 120)})
    assert wrong.status_code == 403 and wrong.json()["type"] == "https://coderic.org/problems/wrong-two-factor-code"
    enabled = await member.post(f"{API}/totp/enable", json={"code": code(secret, clock.now)})
    assert enabled.status_code == 200, enabled.text
    assert enabled.headers["cache-control"] == "no-store"
    codes = enabled.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10 and all(RECOVERY_CODE.match(c) for c in codes)
    assert enabled.json()["sign_in"] is None
    status = (await member.get(API)).json()
    assert status["enabled"] is True and status["recovery_codes_left"] == 10

    row = await User.select(User.totp_secret, User.totp_last_step).where(User.uid == user_id).first()
    assert secret not in row["totp_secret"] and row["totp_secret"] != secret  # encrypted at rest
    assert identity_for(coderic_kernel.kernel).sealer.open(row["totp_secret"]) == secret
    assert row["totp_last_step"] == int(clock.now // 30)  # the enrolment's code is used up
    stored = await RecoveryCode.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user_id)
    assert not {c.replace("-", "") for c in codes} & {r["code_hash"] for r in stored}  # hashed
    assert await events(user_id, "2fa.enabled")
    assert [m["template"] for m in await mails("ana@example.org")] == ["auth.two_factor_changed"]
    again = await member.post(f"{API}/totp/setup", json={})
    assert again.status_code == 409


async def test_a_second_setup_replaces_the_first_and_enable_needs_one(coderic_kernel: Any, clock: Clock) -> None:
    member = await coderic_kernel.sign_in(await coderic_kernel.create_user("ana@example.org"))
    assert (await member.post(f"{API}/totp/enable", json={"code": "123456"})).status_code == 409  # nothing pending
    first = (await member.post(f"{API}/totp/setup", json={})).json()["secret"]
    second = (await member.post(f"{API}/totp/setup", json={})).json()["secret"]
    assert (await member.post(f"{API}/totp/enable", json={"code": code(first, clock.now)})).status_code == 403
    assert (await member.post(f"{API}/totp/enable", json={"code": code(second, clock.now)})).status_code == 200


async def test_enrolment_needs_a_recent_sign_in_and_never_a_personal_token(coderic_kernel: Any, clock: Clock) -> None:
    user_id = await coderic_kernel.create_user("ana@example.org")
    member = await coderic_kernel.sign_in(user_id)
    session_id = (await member.get("/api/v1/auth/session")).json()["session_id"]
    await age_session(session_id, 11)  # a stolen, older session cannot enrol the thief's phone
    stale = await member.post(f"{API}/totp/setup", json={})
    assert stale.status_code == 403
    assert stale.json()["type"] == "https://coderic.org/problems/reauthentication-required"
    token = (await member.post("/api/v1/me/tokens", json={"name": "bot", "scopes": ["write"]})).json()["token"]
    bot = await coderic_kernel.client.post(f"{API}/totp/setup", json={}, headers={"Authorization": f"Bearer {token}"})
    assert bot.status_code == 403
    assert (await coderic_kernel.client.post(f"{API}/totp/setup", json={})).status_code == 401


async def test_enable_needs_no_fresh_sign_in_once_setup_had_one(coderic_kernel: Any, clock: Clock) -> None:
    user_id = await coderic_kernel.create_user("ana@example.org")
    member = await coderic_kernel.sign_in(user_id)
    secret = (await member.post(f"{API}/totp/setup", json={})).json()["secret"]
    await age_session((await member.get("/api/v1/auth/session")).json()["session_id"], 11)
    assert (await member.post(f"{API}/totp/enable", json={"code": code(secret, clock.now)})).status_code == 200


async def test_a_secret_sealed_under_another_secret_key_accepts_no_code(coderic_kernel: Any, clock: Clock) -> None:
    user_id, secret, codes = await enrolled(coderic_kernel, clock)
    other = Sealer(KernelSettings(secret_key="t" * 40))
    await User.update({User.totp_secret: other.seal(secret)}).where(User.uid == user_id)
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=code(secret, clock.now))).status_code == 401
    # recovery codes are hashed, not sealed: they still work, to set 2FA up again
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], recovery_code=codes[0])).status_code == 200


async def test_enabling_ends_the_other_sessions(coderic_kernel: Any, clock: Clock) -> None:
    user_id = await coderic_kernel.create_user("ana@example.org")
    here, elsewhere = await coderic_kernel.sign_in(user_id), await coderic_kernel.sign_in(user_id, mode="session")
    assert (await elsewhere.get("/api/v1/me")).status_code == 200
    secret = (await here.post(f"{API}/totp/setup", json={})).json()["secret"]
    assert (await here.post(f"{API}/totp/enable", json={"code": code(secret, clock.now)})).status_code == 200
    assert (await elsewhere.get("/api/v1/me")).status_code == 401
    assert (await here.get("/api/v1/me")).status_code == 200


# --- signing in --------------------------------------------------------------------------------


async def test_a_password_sign_in_asks_for_the_code_then_signs_in_with_tokens(coderic_kernel: Any, clock: Clock) -> None:
    user_id, secret, _ = await enrolled(coderic_kernel, clock, password=PASSWORD)
    wrong = await coderic_kernel.client.post("/api/v1/probe/login", json={"email": "ana@example.org", "password": "x" * 12})
    assert wrong.status_code == 401
    first = await login(coderic_kernel, password=PASSWORD)
    assert first["status"] == "two_factor_required" and first["methods"] == ["totp", "recovery_code"]
    assert "access_token" not in first and "session_id" not in first
    done = await verify(coderic_kernel, first["challenge"], code=code(secret, clock.now))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "signed_in" and done.json()["user"]["two_factor_enabled"] is True
    me = await coderic_kernel.client.get("/api/v1/me", headers={"Authorization": f"Bearer {done.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == user_id
    assert [e["detail"]["method"] for e in await events(user_id, "login.succeeded")] == ["test", "password"]


async def test_a_browser_finishes_with_the_challenge_cookie(coderic_kernel: Any, clock: Clock) -> None:
    _, secret, _ = await enrolled(coderic_kernel, clock)
    browser = client(coderic_kernel, browser=True)
    first = await login(coderic_kernel, via=browser, mode="session")
    assert browser.cookies.get("__Host-coderic_2fa") == first["challenge"]
    assert browser.cookies.get("__Host-coderic_session") is None
    done = await verify(coderic_kernel, None, via=browser, code=code(secret, clock.now))
    assert done.status_code == 200, done.text
    assert browser.cookies.get("__Host-coderic_2fa") is None and browser.cookies.get("__Host-coderic_session")
    assert (await browser.get("/api/v1/me")).status_code == 200


async def test_a_code_works_once_even_on_another_challenge(coderic_kernel: Any, clock: Clock) -> None:
    user_id, secret, _ = await enrolled(coderic_kernel, clock)
    now = code(secret, clock.now)
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=now)).status_code == 200
    replay = await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=now)
    assert replay.status_code == 401
    earlier = code(secret, clock.now - 30)  # within the drift window, but before the used step
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=earlier)).status_code == 401
    assert len(await events(user_id, "2fa.failed")) == 2


async def test_the_code_of_the_enrolment_cannot_sign_in(coderic_kernel: Any, clock: Clock) -> None:
    _, secret, _ = await enrolled(coderic_kernel, clock)
    clock.now -= 300  # back to the enrolment's step
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=code(secret, clock.now))).status_code == 401


async def test_requests_racing_with_one_code_succeed_once(coderic_kernel: Any, clock: Clock) -> None:
    # One sign-in challenge lives per account, so the race is run by four signed-in sessions
    # re-authenticating with the same code at once: the conditional UPDATE lets one through.
    user_id, secret, _ = await enrolled(coderic_kernel, clock)
    sessions = [await coderic_kernel.sign_in(user_id) for _ in range(4)]
    now = code(secret, clock.now)
    answers = await asyncio.gather(*(s.post(f"{API}/reauthenticate", json={"code": now}) for s in sessions))
    assert sorted(a.status_code for a in answers) == [204, 403, 403, 403]
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=now)).status_code == 401


@pytest.mark.parametrize(("steps", "accepted"), [(-1, True), (1, True), (-2, False), (2, False), (0, True)])
async def test_one_step_of_drift_either_way(coderic_kernel: Any, clock: Clock, steps: int, accepted: bool) -> None:
    _, secret, _ = await enrolled(coderic_kernel, clock)
    answer = await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=code(secret, clock.now + 30 * steps))
    assert answer.status_code == (200 if accepted else 401)


async def test_codes_are_read_with_spaces_but_not_as_anything_else(coderic_kernel: Any, clock: Clock) -> None:
    _, secret, _ = await enrolled(coderic_kernel, clock)
    right = code(secret, clock.now)
    for bad in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        answer = await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=bad)
        assert answer.status_code == 401, bad
    spaced = f"{right[:3]} {right[3:]}"
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=spaced)).status_code == 200


async def test_verify_wants_exactly_one_kind_of_code(coderic_kernel: Any, clock: Clock) -> None:
    _, secret, codes = await enrolled(coderic_kernel, clock)
    challenge = (await login(coderic_kernel))["challenge"]
    assert (await verify(coderic_kernel, challenge)).status_code == 422
    both = await verify(coderic_kernel, challenge, code=code(secret, clock.now), recovery_code=codes[0])
    assert both.status_code == 422
    assert (await verify(coderic_kernel, None, code=code(secret, clock.now))).status_code == 401  # no challenge at all


# --- the challenge -----------------------------------------------------------------------------


async def test_five_wrong_codes_use_the_challenge_up(coderic_kernel: Any, clock: Clock) -> None:
    user_id, secret, _ = await enrolled(coderic_kernel, clock)
    challenge = (await login(coderic_kernel))["challenge"]
    wrong = code(secret, clock.now + 600)
    answers = [await verify(coderic_kernel, challenge, code=wrong) for _ in range(5)]
    assert [a.status_code for a in answers] == [401] * 5
    assert "sign in again" in answers[-1].json()["detail"]
    assert (await verify(coderic_kernel, challenge, code=code(secret, clock.now))).status_code == 401
    assert len(await events(user_id, "2fa.failed")) == 5
    fresh = (await login(coderic_kernel))["challenge"]  # the account is not locked: a new sign-in works
    assert (await verify(coderic_kernel, fresh, code=code(secret, clock.now))).status_code == 200


async def test_an_expired_challenge_is_refused(coderic_kernel: Any, clock: Clock) -> None:
    _, secret, _ = await enrolled(coderic_kernel, clock)
    first = await login(coderic_kernel)
    assert first["expires_in"] == 300
    await OneTimeToken.update({OneTimeToken.expires_at: datetime.now(timezone.utc) - timedelta(seconds=1)}).where(
        OneTimeToken.purpose == "2fa"
    )
    answer = await verify(coderic_kernel, first["challenge"], code=code(secret, clock.now))
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


async def test_the_challenge_is_no_credential(coderic_kernel: Any, clock: Clock) -> None:
    _, secret, _ = await enrolled(coderic_kernel, clock)
    challenge = (await login(coderic_kernel))["challenge"]
    api = coderic_kernel.client
    assert (await api.get("/api/v1/me", headers={"Authorization": f"Bearer {challenge}"})).status_code == 401
    browser = client(coderic_kernel, browser=True)
    browser.cookies.set("__Host-coderic_session", challenge)
    assert (await browser.get("/api/v1/me")).status_code == 401
    browser.cookies.clear()
    half = await login(coderic_kernel, via=browser, mode="session")  # holds the __Host-coderic_2fa cookie only
    assert (await browser.get("/api/v1/me")).status_code == 401
    assert (await browser.get("/api/v1/auth/session")).status_code == 401
    assert (await browser.get("/api/v1/me/sessions")).status_code == 401
    assert (await api.post("/api/v1/auth/token/refresh", json={"refresh_token": challenge})).status_code == 401
    for route in ("totp/setup", "totp/enable"):  # a 2FA challenge is not an enrolment challenge either
        body = {"challenge": challenge} | ({"code": code(secret, clock.now)} if route == "totp/enable" else {})
        assert (await api.post(f"{API}/{route}", json=body)).status_code == 401
    assert (await verify(coderic_kernel, half["challenge"], code=code(secret, clock.now))).status_code == 200
    # the first challenge was replaced by the newer sign-in's: one live challenge per account
    assert (await verify(coderic_kernel, challenge, code=code(secret, clock.now + 30))).status_code == 401


# --- recovery codes ----------------------------------------------------------------------------


async def test_a_recovery_code_signs_in_once(coderic_kernel: Any, clock: Clock) -> None:
    user_id, _, codes = await enrolled(coderic_kernel, clock)
    typed = codes[0].replace("-", "").upper()  # read from paper: capitals, no dashes
    done = await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], recovery_code=typed)
    assert done.status_code == 200, done.text
    again = await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], recovery_code=codes[0])
    assert again.status_code == 401
    used = await events(user_id, "2fa.recovery_code_used")
    assert [e["detail"] for e in used] == [{"remaining": 9}]
    member = await coderic_kernel.sign_in(user_id)
    assert (await member.get(API)).json()["recovery_codes_left"] == 9
    notices = [m for m in await mails("ana@example.org") if "recovery code was used" in m["subject"]]
    assert len(notices) == 1 and "9 recovery code(s) left" in notices[0]["raw"]


async def test_regenerating_recovery_codes_ends_the_old_ones(coderic_kernel: Any, clock: Clock) -> None:
    user_id, secret, old = await enrolled(coderic_kernel, clock)
    member = await coderic_kernel.sign_in(user_id)
    wrong = await member.post(f"{API}/recovery-codes", json={"code": code(secret, clock.now + 600)})
    assert wrong.status_code == 403
    fresh = await member.post(f"{API}/recovery-codes", json={"code": code(secret, clock.now)})
    assert fresh.status_code == 200, fresh.text
    new = fresh.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], recovery_code=old[1])).status_code == 401
    assert (await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], recovery_code=new[1])).status_code == 200
    assert len(await events(user_id, "recovery_codes.regenerated")) == 1


async def test_regenerating_without_a_code_needs_a_recent_sign_in(coderic_kernel: Any, clock: Clock) -> None:
    user_id, _, _ = await enrolled(coderic_kernel, clock)
    member = await coderic_kernel.sign_in(user_id)
    assert (await member.post(f"{API}/recovery-codes", json={})).status_code == 200
    await age_session((await member.get("/api/v1/auth/session")).json()["session_id"], 11)
    assert (await member.post(f"{API}/recovery-codes", json={})).status_code == 403
    other = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))
    assert (await other.post(f"{API}/recovery-codes", json={})).status_code == 409  # 2FA is off


# --- turning 2FA off ---------------------------------------------------------------------------


async def test_disabling_needs_a_recent_proof_then_the_next_sign_in_needs_no_code(coderic_kernel: Any, clock: Clock) -> None:
    user_id, secret, codes = await enrolled(coderic_kernel, clock)
    member = await coderic_kernel.sign_in(user_id)
    await age_session((await member.get("/api/v1/auth/session")).json()["session_id"], 11)
    assert (await member.delete(f"{API}/totp")).status_code == 403  # a stolen session cannot switch it off
    assert (await member.post(f"{API}/reauthenticate", json={"code": "000000"})).status_code == 403
    assert (await member.post(f"{API}/reauthenticate", json={"code": code(secret, clock.now)})).status_code == 204
    assert (await member.delete(f"{API}/totp")).status_code == 204
    assert (await member.delete(f"{API}/totp")).status_code == 409
    assert await RecoveryCode.count().where(RecoveryCode.user_id == user_id) == 0
    row = await User.select(User.totp_secret, User.totp_enabled_at).where(User.uid == user_id).first()
    assert row == {"totp_secret": None, "totp_enabled_at": None}
    assert (await login(coderic_kernel))["status"] == "signed_in"
    assert await events(user_id, "2fa.disabled") and await events(user_id, "2fa.reauthenticated")
    subjects = [m["subject"] for m in await mails("ana@example.org")]
    assert any("turned off" in subject for subject in subjects)


# --- throttling --------------------------------------------------------------------------------


async def test_wrong_codes_are_throttled_per_account_across_addresses(coderic_kernel: Any, clock: Clock) -> None:
    _, secret, _ = await enrolled(coderic_kernel, clock)
    wrong = code(secret, clock.now + 600)
    statuses = []
    for attempt in range(10):  # ten at once (the burst; the enrolment's code was one), each from another address
        via = client(coderic_kernel, ip=f"198.51.100.{attempt + 1}")
        challenge = (await login(coderic_kernel))["challenge"]
        statuses.append((await verify(coderic_kernel, challenge, via=via, code=wrong)).status_code)
    assert statuses == [401] * 9 + [429]
    via = client(coderic_kernel, ip="198.51.100.99")
    throttled = await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], via=via, code=code(secret, clock.now))
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1


async def test_wrong_codes_are_throttled_per_address_across_accounts(coderic_kernel: Any, clock: Clock) -> None:
    secrets = {}
    for name in ("ana", "bea"):
        _, secrets[name], _ = await enrolled(coderic_kernel, clock, f"{name}@example.org")
        clock.now -= 300
    clock.now += 300
    attacker = client(coderic_kernel, ip="203.0.113.66")
    statuses = []
    for attempt in range(11):
        name = ("ana", "bea")[attempt % 2]
        challenge = (await login(coderic_kernel, f"{name}@example.org"))["challenge"]
        statuses.append((await verify(coderic_kernel, challenge, via=attacker, code="000000")).status_code)
    assert statuses[-1] == 429 and statuses[:10] == [401] * 10
    # the owners, elsewhere, still sign in
    challenge = (await login(coderic_kernel, "bea@example.org"))["challenge"]
    assert (await verify(coderic_kernel, challenge, code=code(secrets["bea"], clock.now))).status_code == 200


# --- operators requiring 2FA -------------------------------------------------------------------


@pytest.mark.coderic(config={**CONFIG, "auth_require_2fa": True})
async def test_when_2fa_is_required_a_sign_in_without_it_must_enrol_first(coderic_kernel: Any, clock: Clock) -> None:
    user_id = await coderic_kernel.create_user("ana@example.org", password=PASSWORD)
    first = await login(coderic_kernel, password=PASSWORD)
    assert first["status"] == "two_factor_enrolment_required" and "access_token" not in first
    challenge, api = first["challenge"], coderic_kernel.client
    assert (await api.get("/api/v1/me", headers={"Authorization": f"Bearer {challenge}"})).status_code == 401
    assert (await verify(coderic_kernel, challenge, code="123456")).status_code == 401  # not a 2FA challenge
    setup = await api.post(f"{API}/totp/setup", json={"challenge": challenge})
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert (await api.post(f"{API}/totp/enable", json={"challenge": challenge, "code": "000000"})).status_code == 401
    done = await api.post(f"{API}/totp/enable", json={"challenge": challenge, "code": code(secret, clock.now)})
    assert done.status_code == 200, done.text
    assert len(done.json()["recovery_codes"]) == 10
    signed_in = done.json()["sign_in"]
    assert signed_in["status"] == "signed_in" and signed_in["user"]["two_factor_enabled"] is True
    member = client(coderic_kernel)
    member.headers["Authorization"] = f"Bearer {signed_in['access_token']}"
    assert (await member.get("/api/v1/me")).json()["id"] == user_id
    assert (await member.delete(f"{API}/totp")).status_code == 403  # required: it cannot be switched off
    reused = await api.post(f"{API}/totp/setup", json={"challenge": challenge})
    assert reused.status_code == 401  # the enrolment challenge is used up
    clock.now += 30
    assert (await login(coderic_kernel))["status"] == "two_factor_required"


@pytest.mark.coderic(config={**CONFIG, "auth_require_2fa": True})
async def test_when_2fa_is_required_a_browser_enrols_with_the_challenge_cookie(coderic_kernel: Any, clock: Clock) -> None:
    await coderic_kernel.create_user("ana@example.org", password=PASSWORD)
    browser = client(coderic_kernel, browser=True)
    await login(coderic_kernel, via=browser, mode="session")
    assert (await browser.get("/api/v1/me")).status_code == 401
    secret = (await browser.post(f"{API}/totp/setup", json={})).json()["secret"]
    done = await browser.post(f"{API}/totp/enable", json={"code": code(secret, clock.now)})
    assert done.status_code == 200, done.text
    assert done.json()["sign_in"]["csrf_token"] and browser.cookies.get("__Host-coderic_2fa") is None
    assert (await browser.get("/api/v1/me")).status_code == 200


# --- secrets stay secret -----------------------------------------------------------------------


async def test_codes_and_secrets_are_neither_audited_nor_logged(
    coderic_kernel: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user_id, secret, codes = await enrolled(coderic_kernel, clock)
    typed = code(secret, clock.now)
    await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code=typed)
    await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], code="999999")
    await verify(coderic_kernel, (await login(coderic_kernel))["challenge"], recovery_code=codes[2])
    trail = str(await AuthEvent.select().where(AuthEvent.user_id == user_id).output(load_json=True))
    for secret_thing in (secret, typed, "999999", codes[2], codes[2].replace("-", "")):
        assert secret_thing not in trail
        assert secret_thing not in caplog.text
