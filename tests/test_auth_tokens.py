"""Identity core (issue 7): access tokens, refresh tokens, sessions, CSRF, personal tokens and
the session centre, attacked the way a client with bad intentions would.

Users and sign-ins come from the test kernel's ``create_user`` and ``sign_in``, which run
the same session and token code as the sign-in routes.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from coderic_kernel.identity.keys import generate
from coderic_kernel.identity.service import identity_for
from coderic_kernel.identity.tables import AuthEvent, RefreshToken, Session, SigningKey, User
from coderic_kernel.identity.tokens import TOKEN_TYPE
from joserfc import jwt
from fakeplugins import Project, project  # noqa: F401
from joserfc.jwk import OctKey

PUBLIC_URL = "https://coderic.example"
CONFIG = {"public_url": PUBLIC_URL, "secret_key": "s" * 40}
pytestmark = pytest.mark.coderic(config=CONFIG)


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": PUBLIC_URL, "aud": PUBLIC_URL, "sub": user_id, "sid": "0" * 32, "iat": now, "nbf": now,
            "exp": now + 300, "jti": "j" * 32}
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def signed(kernel: Any, payload: dict[str, Any], **header: Any) -> str:
    keys = identity_for(kernel.kernel).keys.current
    head = {"alg": keys.signing_algorithm, "typ": TOKEN_TYPE, "kid": keys.signing.kid, **header}
    return jwt.encode(head, payload, keys.signing, algorithms=["ES256", "EdDSA"])


async def me(kernel: Any, token: str) -> Any:
    return await kernel.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


async def ana(kernel: Any) -> str:
    return str(await kernel.create_user("ana@example.org", name="Ana"))


# --- access tokens -----------------------------------------------------------------------------


async def test_a_genuine_access_token_reaches_a_route_needing_sign_in(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    assert (await me(coderic_kernel, signed(coderic_kernel, claims(user)))).json()["id"] == user
    anonymous = await coderic_kernel.client.get("/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="coderic"'
    assert anonymous.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("variant", [
    "expired", "not_yet_valid", "wrong_aud", "wrong_iss", "no_exp", "no_sub", "wrong_typ", "id_token_typ", "no_typ",
])
async def test_access_tokens_with_bad_claims_or_type_are_refused(coderic_kernel: Any, variant: str) -> None:
    user = await ana(coderic_kernel)
    now = int(time.time())
    payload, header = {
        "expired": (claims(user, exp=now - 120, iat=now - 900, nbf=now - 900), {}),
        "not_yet_valid": (claims(user, nbf=now + 600, exp=now + 900), {}),
        "wrong_aud": (claims(user, aud="https://other.example"), {}),
        "wrong_iss": (claims(user, iss="https://evil.example"), {}),
        "no_exp": (claims(user, exp=None), {}),
        "no_sub": (claims(user, sub=None), {}),
        "wrong_typ": (claims(user), {"typ": "JWT"}),
        "id_token_typ": (claims(user), {"typ": "id_token+jwt"}),
        "no_typ": (claims(user), {}),
    }[variant]
    if variant == "no_typ":  # joserfc adds typ JWT by default: sign a header without it
        keys = identity_for(coderic_kernel.kernel).keys.current
        token = jwt.encode({"alg": keys.signing_algorithm, "kid": keys.signing.kid}, payload, keys.signing,
                           algorithms=["ES256"], default_type=None)
    else:
        token = signed(coderic_kernel, payload, **header)
    answer = await me(coderic_kernel, token)
    assert answer.status_code == 401, variant
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


async def test_alg_none_hmac_with_the_public_key_and_tampering_are_refused(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    keys = identity_for(coderic_kernel.kernel).keys.current
    kid = keys.signing.kid
    unsigned = f"{b64({'alg': 'none', 'typ': TOKEN_TYPE, 'kid': kid})}.{b64(claims(user))}."
    # The classic confusion: HS256 keyed with the public key's JSON, as a careless verifier would take it.
    public_json = json.dumps(keys.public[0]).encode()
    hmac_token = jwt.encode({"alg": "HS256", "typ": TOKEN_TYPE, "kid": kid}, claims(user),
                            OctKey.import_key(public_json), algorithms=["HS256"])
    genuine = signed(coderic_kernel, claims(user, sub="someone-else"))
    head, _, signature = genuine.split(".")
    tampered = f"{head}.{b64(claims(user))}.{signature}"  # the payload swapped, the signature kept
    truncated = genuine[:-4]
    for token in (unsigned, hmac_token, tampered, truncated, "not.a.jwt", "a" * 5000, "x"):
        answer = await me(coderic_kernel, token)
        assert answer.status_code == 401, token[:40]


async def test_a_key_this_kernel_never_had_is_refused(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    stranger = generate("ES256")
    token = jwt.encode({"alg": "ES256", "typ": TOKEN_TYPE, "kid": stranger.kid}, claims(user), stranger,
                       algorithms=["ES256"])
    assert (await me(coderic_kernel, token)).status_code == 401
    same_kid = generate("ES256")  # a stranger's key claiming the kernel's kid
    kid = identity_for(coderic_kernel.kernel).keys.current.signing.kid
    token = jwt.encode({"alg": "ES256", "typ": TOKEN_TYPE, "kid": kid}, claims(user), same_kid, algorithms=["ES256"])
    assert (await me(coderic_kernel, token)).status_code == 401


async def test_malformed_authorization_headers_are_401_never_500(coderic_kernel: Any) -> None:
    for value in ("Bearer", "Bearer ", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Token abc", "Bearer cdr_pat_unknown",
                  "Bearer cdr_rt_" + "a" * 43):
        answer = await coderic_kernel.client.get("/api/v1/me", headers={"Authorization": value})
        assert answer.status_code == 401, value


async def test_a_refresh_token_is_not_an_access_token(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    client = await coderic_kernel.sign_in(user)
    refresh = await _refresh_token(coderic_kernel, user)
    assert (await me(coderic_kernel, refresh)).status_code == 401
    assert (await client.get("/api/v1/me")).status_code == 200


async def test_rotation_keeps_old_tokens_valid_until_they_expire_and_publishes_both_keys(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    service = identity_for(coderic_kernel.kernel)
    old_token, _ = service.tokens.issue(user, "0" * 32)
    old_kid = service.keys.current.signing.kid
    new_kid = await service.keys.rotate()
    new_token, _ = service.tokens.issue(user, "0" * 32)
    assert jwt.decode(new_token, service.keys.current.verifying).header["kid"] == new_kid != old_kid
    jwks = (await coderic_kernel.client.get("/.well-known/jwks.json")).json()
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    assert all("d" not in key for key in jwks["keys"]), "a private key part was published"
    for token in (old_token, new_token):
        assert (await me(coderic_kernel, token)).status_code == 200
    # Once the retired key's tokens have expired, the key is deleted: its tokens are refused.
    await SigningKey.update({SigningKey.expires_at: datetime.now(timezone.utc) - timedelta(seconds=1)}).where(
        SigningKey.kid == old_kid
    )
    await service.keys.load()
    service.tokens.forget()
    assert (await me(coderic_kernel, old_token)).status_code == 401
    assert (await me(coderic_kernel, new_token)).status_code == 200
    assert {key["kid"] for key in (await coderic_kernel.client.get("/.well-known/jwks.json")).json()["keys"]} == {new_kid}


async def test_a_key_rotated_by_another_process_is_picked_up_without_restart(coderic_kernel: Any) -> None:
    from coderic_kernel.identity import keys as keys_module

    user = await ana(coderic_kernel)
    service = identity_for(coderic_kernel.kernel)
    # Another process: its own key ring over the same database.
    other = keys_module.KeyRing(service.sealer, "ES256", timedelta(minutes=10))
    await other.load()
    await other.rotate()
    from coderic_kernel.identity.tokens import AccessTokens

    foreign = AccessTokens(other, PUBLIC_URL, PUBLIC_URL, 600).issue(user, "0" * 32)[0]
    service.keys._loaded_at -= keys_module.RELOAD_SECONDS  # as if the last load was a while ago
    assert (await me(coderic_kernel, foreign)).status_code == 200


async def test_jwks_is_public_cacheable_and_documented(coderic_kernel: Any) -> None:
    answer = await coderic_kernel.client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/jwk-set+json")
    assert "max-age=300" in answer.headers["cache-control"]
    key = answer.json()["keys"][0]
    assert key["kty"] == "EC" and key["alg"] == "ES256" and key["use"] == "sig" and "d" not in key
    document = (await coderic_kernel.client.get("/api/v1/openapi.json")).json()
    assert "/.well-known/jwks.json" in document["paths"]
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"accessToken", "personalToken", "sessionCookie"}
    assert document["paths"]["/api/v1/me"]["get"]["security"] == [
        {"accessToken": []}, {"personalToken": []}, {"sessionCookie": []}
    ]


# --- refresh tokens ----------------------------------------------------------------------------


async def _refresh_token(kernel: Any, user_id: str) -> str:
    service = identity_for(kernel.kernel)
    from coderic_kernel.testing import _FakeConnection

    outcome = await service.signin.finish(_FakeConnection(), user_id, "test", "token")  # type: ignore[arg-type]
    return str(outcome.body["refresh_token"])


async def refresh(kernel: Any, token: str) -> Any:
    return await kernel.client.post("/api/v1/auth/token/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_the_new_access_token_works(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    first = await _refresh_token(coderic_kernel, user)
    answer = await refresh(coderic_kernel, first)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"] != first
    assert (await me(coderic_kernel, body["access_token"])).json()["id"] == user
    second = await refresh(coderic_kernel, body["refresh_token"])
    assert second.status_code == 200


async def test_refresh_token_reuse_revokes_the_whole_family(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    stolen = await _refresh_token(coderic_kernel, user)
    honest = (await refresh(coderic_kernel, stolen)).json()["refresh_token"]
    await RefreshToken.update({RefreshToken.used_at: datetime.now(timezone.utc) - timedelta(minutes=1)}).where(
        RefreshToken.used_at.is_not_null()
    )  # outside the grace window
    replay = await refresh(coderic_kernel, stolen)
    assert replay.status_code == 401 and 'error="invalid_grant"' in replay.headers["www-authenticate"]
    # The honest client's newer token died with the family, and the session ended.
    assert (await refresh(coderic_kernel, honest)).status_code == 401
    assert await Session.count().where(Session.user_id == user, Session.revoked_at.is_null()) == 0
    assert await AuthEvent.exists().where(AuthEvent.kind == "refresh.reused", AuthEvent.user_id == user)


async def test_a_concurrent_refresh_inside_the_grace_window_is_a_409_not_a_revocation(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    token = await _refresh_token(coderic_kernel, user)
    winner = (await refresh(coderic_kernel, token)).json()["refresh_token"]
    loser = await refresh(coderic_kernel, token)
    assert loser.status_code == 409
    assert (await refresh(coderic_kernel, winner)).status_code == 200


@pytest.mark.coderic(config={**CONFIG, "auth_session_idle_minutes": 5})
async def test_refresh_tokens_end_with_idle_and_absolute_timeouts(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    idle = await _refresh_token(coderic_kernel, user)
    await Session.update({Session.last_seen_at: datetime.now(timezone.utc) - timedelta(minutes=6)}).where(
        Session.user_id == user
    )
    assert (await refresh(coderic_kernel, idle)).status_code == 401
    aged = await _refresh_token(coderic_kernel, user)
    await Session.update({Session.expires_at: datetime.now(timezone.utc) - timedelta(seconds=1)}).where(
        Session.user_id == user
    )
    assert (await refresh(coderic_kernel, aged)).status_code == 401


async def test_revoking_a_refresh_token_ends_its_session_and_answers_the_same_for_unknown_ones(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    token = await _refresh_token(coderic_kernel, user)
    known = await coderic_kernel.client.post("/api/v1/auth/token/revoke", json={"refresh_token": token})
    unknown = await coderic_kernel.client.post("/api/v1/auth/token/revoke", json={"refresh_token": "cdr_rt_nope"})
    assert known.status_code == unknown.status_code == 204
    assert (await refresh(coderic_kernel, token)).status_code == 401


async def test_a_disabled_user_can_no_longer_refresh_or_use_a_session(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    token = await _refresh_token(coderic_kernel, user)
    browser = await coderic_kernel.sign_in(user, mode="session")
    await User.update({User.status: "disabled"}).where(User.uid == user)
    assert (await refresh(coderic_kernel, token)).status_code == 401
    assert (await browser.get("/api/v1/me")).status_code == 401


# --- browser sessions and CSRF -----------------------------------------------------------------


async def test_session_cookie_works_and_logout_ends_it_for_good(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    browser = await coderic_kernel.sign_in(user, mode="session")
    cookie = browser.cookies.get("__Host-coderic_session")
    assert (await browser.get("/api/v1/me")).status_code == 200
    out = await browser.post("/api/v1/auth/logout")
    assert out.status_code == 204
    cleared = [value for name, value in out.headers.multi_items() if name == "set-cookie"]
    assert any(value.startswith("__Host-coderic_session=") and "Max-Age=0" in value for value in cleared)
    # Replaying the old cookie after logout gets nothing.
    replay = await coderic_kernel.client.get("/api/v1/me", headers={"Cookie": f"__Host-coderic_session={cookie}"})
    assert replay.status_code == 401


async def test_session_cookies_are_host_prefixed_secure_httponly_and_lax(coderic_kernel: Any) -> None:
    from coderic_kernel.identity.signin import json_response

    user = await ana(coderic_kernel)
    service = identity_for(coderic_kernel.kernel)
    from coderic_kernel.testing import _FakeConnection

    outcome = await service.signin.finish(_FakeConnection(), user, "test", "session")  # type: ignore[arg-type]
    headers = [value for name, value in json_response(outcome).raw_headers if name == b"set-cookie"]
    session = next(h.decode() for h in headers if h.startswith(b"__Host-coderic_session="))
    csrf = next(h.decode() for h in headers if h.startswith(b"__Host-coderic_csrf="))
    for part in ("Secure", "HttpOnly", "Path=/", "SameSite=lax"):
        assert part in session
    assert "Domain" not in session and "HttpOnly" not in csrf and "Secure" in csrf


async def test_each_sign_in_gets_a_new_session_id(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    first = await coderic_kernel.sign_in(user, mode="session")
    second = await coderic_kernel.sign_in(user, mode="session")
    assert first.cookies.get("__Host-coderic_session") != second.cookies.get("__Host-coderic_session")


@pytest.mark.parametrize("headers, allowed", [
    ({}, False),  # no token
    ({"X-CSRF-Token": "forged"}, False),
    ({"X-CSRF-Token": None}, True),  # the session's own token
    ({"X-CSRF-Token": None, "Origin": "https://evil.example"}, False),
    ({"X-CSRF-Token": None, "Origin": PUBLIC_URL}, True),
    ({"X-CSRF-Token": None, "Sec-Fetch-Site": "cross-site"}, False),
    ({"X-CSRF-Token": None, "Sec-Fetch-Site": "same-origin", "Origin": PUBLIC_URL}, True),
])
async def test_csrf_on_cookie_requests(coderic_kernel: Any, headers: dict[str, str | None], allowed: bool) -> None:
    user = await ana(coderic_kernel)
    browser = await coderic_kernel.sign_in(user, mode="session")
    token = browser.headers["X-CSRF-Token"]
    del browser.headers["X-CSRF-Token"]
    sent = {name: (token if value is None else value) for name, value in headers.items()}
    answer = await browser.patch("/api/v1/me", json={"bio": "changed"}, headers=sent)
    assert (answer.status_code == 200) is allowed, answer.text
    if not allowed:
        assert answer.status_code == 403 and answer.json()["type"] == "https://coderic.org/problems/csrf"
    bio = (await browser.get("/api/v1/me")).json()["bio"]  # safe methods need no token
    assert bio == ("changed" if allowed else "")


async def test_bearer_requests_need_no_csrf_token(coderic_kernel: Any) -> None:
    client = await coderic_kernel.sign_in(await ana(coderic_kernel))
    answer = await client.patch("/api/v1/me", json={"bio": "hi"}, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 200


async def test_current_session_gives_the_csrf_token(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    browser = await coderic_kernel.sign_in(user, mode="session")
    body = (await browser.get("/api/v1/auth/session")).json()
    assert body["method"] == "session" and body["csrf_token"] == browser.headers["X-CSRF-Token"]
    client = await coderic_kernel.sign_in(user)
    assert (await client.get("/api/v1/auth/session")).json()["csrf_token"] is None


@pytest.mark.coderic(config={**CONFIG, "auth_session_idle_minutes": 5})
async def test_sessions_end_after_idle_and_absolute_timeouts(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    browser = await coderic_kernel.sign_in(user, mode="session")
    await Session.update({Session.last_seen_at: datetime.now(timezone.utc) - timedelta(minutes=4)}).where(
        Session.user_id == user
    )
    assert (await browser.get("/api/v1/me")).status_code == 200  # and its use is recorded
    seen = await Session.select(Session.last_seen_at).where(Session.user_id == user).first()
    assert datetime.now(timezone.utc) - seen["last_seen_at"] < timedelta(seconds=30)
    await Session.update({Session.last_seen_at: datetime.now(timezone.utc) - timedelta(minutes=6)}).where(
        Session.user_id == user
    )
    assert (await browser.get("/api/v1/me")).status_code == 401
    fresh = await coderic_kernel.sign_in(user, mode="session")
    await Session.update({Session.expires_at: datetime.now(timezone.utc) - timedelta(seconds=1)}).where(
        Session.user_id == user
    )
    assert (await fresh.get("/api/v1/me")).status_code == 401


# --- the session centre ------------------------------------------------------------------------


async def test_list_and_revoke_my_sessions(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    bea = await coderic_kernel.create_user("bea@example.org")
    laptop = await coderic_kernel.sign_in(user, mode="session")
    phone = await coderic_kernel.sign_in(user)
    tablet = await coderic_kernel.sign_in(user, mode="session")
    bea_client = await coderic_kernel.sign_in(bea)
    sessions = (await laptop.get("/api/v1/me/sessions")).json()["sessions"]
    assert len(sessions) == 3 and sum(s["current"] for s in sessions) == 1
    assert {s["kind"] for s in sessions} == {"cookie", "token"}
    tablet_id = (await tablet.get("/api/v1/auth/session")).json()["session_id"]
    # Another user cannot end my session: it is a 404, as if it did not exist.
    assert (await bea_client.delete(f"/api/v1/me/sessions/{tablet_id}")).status_code == 404
    assert (await laptop.delete(f"/api/v1/me/sessions/{tablet_id}")).status_code == 204
    assert (await tablet.get("/api/v1/me")).status_code == 401
    assert (await laptop.delete(f"/api/v1/me/sessions/{tablet_id}")).status_code == 404
    assert (await laptop.delete("/api/v1/me/sessions/not-an-id")).status_code == 404
    others = await laptop.post("/api/v1/me/sessions/revoke-others")
    assert others.json() == {"revoked": 1}
    assert (await laptop.get("/api/v1/me")).status_code == 200
    assert len((await laptop.get("/api/v1/me/sessions")).json()["sessions"]) == 1
    assert (await phone.get("/api/v1/me")).status_code == 401  # its access token too, unexpired as it is
    everywhere = await laptop.delete("/api/v1/me/sessions")
    assert everywhere.status_code == 204
    assert (await laptop.get("/api/v1/me")).status_code == 401
    assert (await bea_client.get("/api/v1/me")).status_code == 200


# --- personal access tokens --------------------------------------------------------------------


async def test_personal_tokens_are_shown_once_scoped_and_revocable(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    client = await coderic_kernel.sign_in(user)
    created = await client.post("/api/v1/me/tokens", json={"name": "ci", "scopes": ["read"], "expires_in_days": 30})
    assert created.status_code == 201
    body = created.json()
    token = body["token"]
    assert token.startswith("cdr_pat_") and body["prefix"] == token[:12]
    listed = (await client.get("/api/v1/me/tokens")).json()["tokens"]
    assert [t["id"] for t in listed] == [body["id"]] and "token" not in listed[0]
    bot = {"Authorization": f"Bearer {token}"}
    assert (await coderic_kernel.client.get("/api/v1/me", headers=bot)).status_code == 200
    # read scope: no writes; and never identity management, whatever the scopes.
    assert (await coderic_kernel.client.patch("/api/v1/me", json={"bio": "x"}, headers=bot)).status_code == 403
    writer = (await client.post("/api/v1/me/tokens", json={"name": "w", "scopes": ["write"]})).json()["token"]
    assert (await coderic_kernel.client.patch("/api/v1/me", json={"bio": "x"},
                                             headers={"Authorization": f"Bearer {writer}"})).status_code == 200
    minted = await coderic_kernel.client.post("/api/v1/me/tokens", json={"name": "more", "scopes": ["write"]},
                                              headers={"Authorization": f"Bearer {writer}"})
    assert minted.status_code == 403
    assert (await client.delete(f"/api/v1/me/tokens/{body['id']}")).status_code == 204
    assert (await coderic_kernel.client.get("/api/v1/me", headers=bot)).status_code == 401
    assert (await client.delete(f"/api/v1/me/tokens/{body['id']}")).status_code == 404


async def test_personal_token_scopes_limit_plugins_and_bad_scopes_are_422(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    client = await coderic_kernel.sign_in(user)
    other_plugin = (await client.post("/api/v1/me/tokens", json={"name": "f", "scopes": ["files:write"]})).json()["token"]
    # The token is for the files plugin: the auth plugin's /me is out of its reach.
    assert (await coderic_kernel.client.get("/api/v1/me", headers={"Authorization": f"Bearer {other_plugin}"})).status_code == 403
    bad = await client.post("/api/v1/me/tokens", json={"name": "x", "scopes": ["admin", "read"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.scopes.0"
    assert (await client.post("/api/v1/me/tokens", json={"name": "x", "scopes": []})).status_code == 422


async def test_expired_personal_tokens_stop_working(coderic_kernel: Any) -> None:
    from coderic_kernel.identity.tables import PersonalToken

    client = await coderic_kernel.sign_in(await ana(coderic_kernel))
    token = (await client.post("/api/v1/me/tokens", json={"name": "t", "scopes": ["read"]})).json()["token"]
    await PersonalToken.update({PersonalToken.expires_at: datetime.now(timezone.utc) - timedelta(seconds=1)}).where(
        PersonalToken.name == "t"
    )
    assert (await coderic_kernel.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_secrets_are_stored_hashed_or_sealed(coderic_kernel: Any) -> None:
    user = await ana(coderic_kernel)
    browser = await coderic_kernel.sign_in(user, mode="session")
    cookie = browser.cookies.get("__Host-coderic_session")
    refresh_token = await _refresh_token(coderic_kernel, user)
    dump = json.dumps([
        await Session.select().output(as_json=False),
        await RefreshToken.select(),
        await SigningKey.select(),
    ], default=str)
    assert cookie not in dump and refresh_token not in dump
    private = identity_for(coderic_kernel.kernel).keys.current.signing.as_dict(private=True)["d"]
    assert private not in dump


# --- the profile -------------------------------------------------------------------------------


async def test_profile_changes_are_validated(coderic_kernel: Any) -> None:
    client = await coderic_kernel.sign_in(await ana(coderic_kernel))
    good = await client.patch("/api/v1/me", json={
        "name": "Ana María", "timezone": "America/Bogota", "language": "es", "skills": ["rust", " python ", "rust"],
        "avatar_url": "https://images.example/ana.png",
    })
    assert good.status_code == 200
    assert good.json()["skills"] == ["rust", "python"] and good.json()["timezone"] == "America/Bogota"
    for body, field in (({"timezone": "Mars/Olympus"}, "body.timezone"), ({"language": "fr"}, "body.language"),
                        ({"avatar_url": "http://images.example/a.png"}, "body.avatar_url"),
                        ({"email": "x@example.org"}, "body.email"), ({"name": None}, "body.name")):
        bad = await client.patch("/api/v1/me", json=body)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field, body


# --- the operator's commands ------------------------------------------------------------------


def test_auth_commands_list_rotate_and_sign_out(project: Project) -> None:
    """``coderic auth keys / rotate-keys / sign-out`` on a migrated database, as an operator runs them."""
    project.configure([])
    assert project.run("migrate").code == 0
    first = project.run("auth", "keys")
    assert first.code == 0 and first.out.count("signing") == 1
    rotated = project.run("auth", "rotate-keys")
    assert rotated.code == 0 and rotated.out.startswith("new signing key ")
    listed = project.run("auth", "keys").lines
    assert len(listed) == 2 and "signing" in listed[0] and "verifying until" in listed[1]
    missing = project.run("auth", "sign-out", "nobody@example.org")
    assert missing.code == 1 and "no account has the address nobody@example.org" in missing.err


def test_an_operator_turns_off_2fa_for_a_member_who_lost_everything(project: Project) -> None:
    import asyncio

    from coderic_kernel.config import load_configuration
    from coderic_kernel.identity import users
    from coderic_kernel.identity.tables import AuthEvent
    from coderic_kernel.kernel import Kernel

    project.configure([])
    assert project.run("migrate").code == 0

    async def create(**values: Any) -> None:
        async with Kernel.boot(load_configuration()).started():
            await users.create(**values)

    asyncio.run(create(email="ana@example.org", email_verified=True, totp_secret="sealed",
                       totp_enabled_at=datetime.now(timezone.utc)))
    asyncio.run(create(email="bea@example.org", email_verified=True))
    done = project.run("auth", "disable-2fa", "ana@example.org", "--reason", "lost phone; identity checked by video call")
    assert done.code == 0, done
    assert project.run("auth", "disable-2fa", "ana@example.org", "--reason", "again").code == 1
    assert project.run("auth", "disable-2fa", "bea@example.org", "--reason", "x").code == 1

    async def check() -> None:
        async with Kernel.boot(load_configuration()).started():
            user = await users.by_email("ana@example.org")
            assert user["totp_enabled_at"] is None and user["totp_secret"] is None
            event = await AuthEvent.select().where(AuthEvent.kind == "2fa.disabled").first().output(load_json=True)
            assert event["detail"] == {"by": "operator", "reason": "lost phone; identity checked by video call"}

    asyncio.run(check())
