"""Signing in with GitHub and OpenID Connect, end to end: a browser (the kernel's in-process
client at https://testserver, keeping cookies) is redirected to local providers served over
real loopback HTTP, which redirect it back; the kernel exchanges the code, fetches the
profile (GitHub) or validates the ID token (OIDC) and signs the member in. Then what an
attacker would try: forged, missing, reused and cross-browser state, a wrong PKCE verifier,
open redirects, every bad ID token, and the account-linking rules."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx2
import pytest
from coderic_kernel.identity.tables import AuthEvent, LinkedIdentity, OneTimeToken, User
from oauth_providers import (
    DROP,
    GitHubProvider,
    OIDCProvider,
    ProviderUser,
    github_provider,  # noqa: F401
    oidc_provider,  # noqa: F401
    s256,
)

SITE = "https://testserver"
GITHUB_CALLBACK = f"{SITE}/api/v1/auth/oauth/github/callback"
ACME_CALLBACK = f"{SITE}/api/v1/auth/oauth/acme/callback"


def ana() -> ProviderUser:
    return ProviderUser(id="1001", login="ana", email="ana@example.org", name="Ana Lima", bio="Builds things",
                        location="Lisbon", avatar_url="https://avatars.example.org/u/1001")


@pytest.fixture
def coderic_config(request: pytest.FixtureRequest, github_provider: GitHubProvider,
                   oidc_provider: OIDCProvider) -> dict[str, Any]:
    """The kernel pointed at the local providers; a test's marker config goes on top, and its
    ``acme`` mapping on the OpenID Connect provider's settings."""
    github_provider.redirect_uris = [GITHUB_CALLBACK]
    oidc_provider.redirect_uris = [ACME_CALLBACK]
    marker = request.node.get_closest_marker("coderic")
    acme = dict(marker.kwargs.get("acme", {})) if marker else {}  # more settings of the acme provider
    return {
        "public_url": SITE,
        "auth_github_client_id": github_provider.client_id,
        "auth_github_client_secret": github_provider.client_secret,
        "auth_github_url": github_provider.url,
        "auth_github_api_url": github_provider.api_url,
        "auth_oidc_providers": [{
            "name": "acme", "label": "Acme ID", "discovery_url": oidc_provider.discovery_url,
            "client_id": oidc_provider.client_id, "client_secret": oidc_provider.client_secret, **acme,
        }],
        "auth_oidc_jwks_refetch_seconds": 0,
        **(dict(marker.kwargs.get("config", {})) if marker else {}),
    }


class Browser:
    """One browser: the kernel through the in-process client, the providers over real HTTP."""

    def __init__(self, kernel: Any) -> None:
        self.site = httpx2.AsyncClient(transport=kernel.client._transport, base_url=SITE)
        self.web = httpx2.AsyncClient(timeout=10)

    async def aclose(self) -> None:
        await self.site.aclose()
        await self.web.aclose()

    async def start(self, provider: str, next: str = "/", **headers: str) -> str:
        """The provider URL the kernel sends the browser to."""
        response = await self.site.get(f"/api/v1/auth/oauth/{provider}/start", params={"next": next},
                                       headers=headers)
        assert response.status_code == 303, response.text
        return response.headers["location"]

    async def at_provider(self, url: str) -> str:
        """Where the provider sends the browser back (it approves at once)."""
        response = await self.web.get(url)
        assert response.status_code == 302, (response.status_code, response.text)
        return response.headers["location"]

    async def back(self, callback: str) -> httpx2.Response:
        assert callback.startswith(f"{SITE}/api/v1/auth/oauth/"), callback
        return await self.site.get(callback)

    async def sign_in(self, provider: str, next: str = "/") -> httpx2.Response:
        return await self.back(await self.at_provider(await self.start(provider, next)))

    async def me(self) -> httpx2.Response:
        return await self.site.get("/api/v1/me")


@pytest.fixture
async def browsers(coderic_kernel: Any) -> AsyncIterator[Any]:
    opened: list[Browser] = []

    def new() -> Browser:
        opened.append(Browser(coderic_kernel))
        return opened[-1]

    yield new
    for browser in opened:
        await browser.aclose()


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def replace_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**query(url), **changes})))


def failure(response: httpx2.Response) -> tuple[str, str]:
    """(path, reason) of a failed sign-in's redirect."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    return urlsplit(location).path, query(location).get("sign_in_error", "")


async def events(kind: str) -> list[dict[str, Any]]:
    return await AuthEvent.select().where(AuthEvent.kind == kind).output(load_json=True)  # type: ignore[no-any-return]


# -- GitHub ---------------------------------------------------------------------------------------

async def test_github_sign_in_end_to_end(coderic_kernel: Any, browsers: Any, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    authorize = await browser.start("github", next="/projects?tab=mine", Host="evil.test")
    sent = query(authorize)
    assert authorize.startswith(github_provider.authorize_url)
    assert sent["redirect_uri"] == GITHUB_CALLBACK  # from public_url, not from the Host header
    assert sent["scope"] == "read:user user:email" and sent["code_challenge_method"] == "S256"
    assert sent["client_id"] == github_provider.client_id and len(sent["state"]) >= 40

    response = await browser.back(await browser.at_provider(authorize))
    assert response.status_code == 303 and response.headers["location"] == "/projects?tab=mine"
    assert "__Host-coderic_session" in response.headers.get("set-cookie", "")

    (exchange,) = github_provider.requests_to("/login/oauth/access_token")
    assert s256(exchange.form["code_verifier"]) == sent["code_challenge"]
    assert exchange.form["redirect_uri"] == GITHUB_CALLBACK and "client_secret" in exchange.form
    assert [r.path for r in github_provider.requests][-2:] == ["/user", "/user/emails"]

    me = (await browser.me()).json()
    assert (me["email"], me["email_verified"], me["github_id"]) == ("ana@example.org", True, 1001)
    assert (me["name"], me["bio"], me["location"]) == ("Ana Lima", "Builds things", "Lisbon")
    assert me["avatar_url"] == "https://avatars.example.org/u/1001" and me["has_password"] is False
    (session,) = (await browser.site.get("/api/v1/me/sessions")).json()["sessions"]
    assert session["method"] == "github" and session["kind"] == "cookie"
    identities = (await browser.site.get("/api/v1/me/identities")).json()
    assert [(i["provider"], i["subject"]) for i in identities["identities"]] == [("github", "1001")]
    assert identities["available"] == ["acme"]
    assert [e["detail"]["by"] for e in await events("identity.linked")] == ["created"]
    assert [e["detail"]["method"] for e in await events("login.succeeded")] == ["github"]

    # Signing in again finds the same account.
    again = browsers()
    assert (await again.sign_in("github")).status_code == 303
    assert (await again.me()).json()["id"] == me["id"]
    assert await User.count() == 1


async def test_profile_is_filled_once_and_refreshed_on_request(coderic_kernel: Any, browsers: Any,
                                                               github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    await browser.sign_in("github")
    csrf = (await browser.site.get("/api/v1/auth/session")).json()["csrf_token"]
    browser.site.headers["X-CSRF-Token"] = csrf
    assert (await browser.site.patch("/api/v1/me", json={"name": "Ana L.", "bio": ""})).status_code == 200

    github_provider.current.name = "Ana Maria Lima"  # type: ignore[union-attr]
    await browsers().sign_in("github")
    me = (await browser.me()).json()
    assert (me["name"], me["bio"]) == ("Ana L.", "")  # a sign-in never overwrites the member's edits

    link = await browser.site.post("/api/v1/me/identities/github", json={"next": "/settings", "refresh_profile": True})
    assert link.status_code == 200, link.text
    done = await browser.back(await browser.at_provider(link.json()["authorize_url"]))
    assert done.headers["location"] == "/settings?linked=github"
    me = (await browser.me()).json()
    assert (me["name"], me["bio"]) == ("Ana Maria Lima", "Builds things")


async def test_github_unverified_or_private_email(coderic_kernel: Any, browsers: Any,
                                                  github_provider: GitHubProvider) -> None:
    bea = await coderic_kernel.create_user("bea@example.org", password="correct horse battery")
    github_provider.login_as(ProviderUser(id="2002", login="mallory", email="bea@example.org", email_verified=False))
    browser = browsers()
    assert (await browser.sign_in("github")).headers["location"] == "/"
    me = (await browser.me()).json()
    assert me["id"] != bea and me["email"] is None and me["email_verified"] is False  # never linked, never given
    assert await LinkedIdentity.count().where(LinkedIdentity.user_id == bea) == 0
    (identity,) = await LinkedIdentity.select().where(LinkedIdentity.user_id == me["id"])
    assert (identity["email"], identity["email_verified"]) == ("bea@example.org", False)


async def test_verified_emails_on_both_sides_link(coderic_kernel: Any, browsers: Any,
                                                  github_provider: GitHubProvider) -> None:
    member = await coderic_kernel.create_user("Ana@Example.org", password="correct horse battery", bio="Mine")
    github_provider.login_as(ana())
    browser = browsers()
    await browser.sign_in("github")
    me = (await browser.me()).json()
    assert me["id"] == member and me["github_id"] == 1001
    assert (me["bio"], me["name"], me["location"]) == ("Mine", "Ana Lima", "Lisbon")  # only empty fields filled
    assert [e["detail"]["by"] for e in await events("identity.linked")] == ["email"]


async def test_an_account_that_did_not_verify_its_email_is_not_joined(coderic_kernel: Any, browsers: Any,
                                                                      github_provider: GitHubProvider) -> None:
    squatter = await coderic_kernel.create_user("ana@example.org", password="correct horse battery", verified=False)
    github_provider.login_as(ana())
    browser = browsers()
    await browser.sign_in("github")
    me = (await browser.me()).json()
    assert me["id"] != squatter and me["email"] is None  # the address stays with the account that has it


async def test_two_factor_comes_after_the_provider(coderic_kernel: Any, browsers: Any,
                                                   github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    first = browsers()
    await first.sign_in("github")
    user_id = (await first.me()).json()["id"]
    await User.update({User.totp_enabled_at: datetime.now(timezone.utc)}).where(User.uid == user_id)
    second = browsers()
    response = await second.sign_in("github", next="/home")
    assert response.headers["location"] == "/home?two_factor=required"
    assert "__Host-coderic_2fa" in response.headers["set-cookie"]
    assert "__Host-coderic_session" not in response.headers["set-cookie"]
    assert (await second.me()).status_code == 401


async def test_a_disabled_account_is_refused(coderic_kernel: Any, browsers: Any,
                                             github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    await browser.sign_in("github")
    await User.update({User.status: "disabled"}).where(User.github_id == 1001)
    assert failure(await browsers().sign_in("github", next="/x")) == ("/x", "account_disabled")


async def test_provider_refusals(coderic_kernel: Any, browsers: Any, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    github_provider.denying = True
    browser = browsers()
    assert failure(await browser.sign_in("github", next="/back")) == ("/back", "access_denied")
    github_provider.denying = False
    github_provider.client_secret = "rotated-at-github"  # the kernel's copy is stale
    assert failure(await browser.sign_in("github", next="/back")) == ("/back", "token_exchange_failed")
    assert (await browser.me()).status_code == 401
    reasons = [e["detail"]["reason"] for e in await events("login.failed")]
    assert reasons == ["access_denied", "token_exchange_failed"]


async def test_unknown_provider(coderic_kernel: Any, browsers: Any) -> None:
    browser = browsers()
    assert (await browser.site.get("/api/v1/auth/oauth/gitlab/start")).status_code == 404
    providers = (await browser.site.get("/api/v1/auth/providers")).json()["providers"]
    assert [(p["name"], p["label"], p["kind"]) for p in providers] == [("github", "GitHub", "github"),
                                                                        ("acme", "Acme ID", "oidc")]


# -- state, PKCE, redirects -----------------------------------------------------------------------

async def test_missing_forged_and_reused_state(coderic_kernel: Any, browsers: Any,
                                               github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    callback = await browser.at_provider(await browser.start("github", next="/after"))
    missing = await browser.back(replace_query(callback, state=""))
    assert failure(missing) == ("/", "state_invalid")
    forged = await browser.back(replace_query(callback, state="x" * 43))
    assert failure(forged) == ("/", "state_invalid")
    assert (await browser.back(callback)).headers["location"] == "/after"  # the real one still works once
    assert failure(await browsers().back(callback)) == ("/", "state_invalid")
    assert failure(await browser.back(callback)) == ("/", "state_invalid")
    assert len(github_provider.requests_to("/login/oauth/access_token")) == 1  # no code went further


async def test_state_is_bound_to_the_browser_that_started(coderic_kernel: Any, browsers: Any,
                                                          github_provider: GitHubProvider) -> None:
    """Login CSRF: an attacker's callback URL, opened in the victim's browser, signs no one in."""
    github_provider.login_as(ProviderUser(id="666", login="attacker", email="attacker@example.org"))
    attacker, victim = browsers(), browsers()
    callback = await attacker.at_provider(await attacker.start("github"))
    assert failure(await victim.back(callback)) == ("/", "state_invalid")
    assert (await victim.me()).status_code == 401
    # Nor does a state made for one provider work at another's callback.
    callback = await attacker.at_provider(await attacker.start("github"))
    assert failure(await attacker.back(callback.replace("/oauth/github/", "/oauth/acme/"))) == ("/", "state_invalid")


async def test_expired_state(coderic_kernel: Any, browsers: Any, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    callback = await browser.at_provider(await browser.start("github"))
    await OneTimeToken.update({OneTimeToken.expires_at: datetime(2000, 1, 1, tzinfo=timezone.utc)}).where(
        OneTimeToken.purpose == "oauth_state")
    assert failure(await browser.back(callback)) == ("/", "state_invalid")


async def test_wrong_pkce_verifier(coderic_kernel: Any, browsers: Any, github_provider: GitHubProvider) -> None:
    """A code obtained with another challenge (an intercepted code) is refused at the exchange."""
    github_provider.login_as(ana())
    browser = browsers()
    authorize = await browser.start("github", next="/p")
    callback = await browser.at_provider(replace_query(authorize, code_challenge=s256("attacker-verifier" * 3)))
    assert failure(await browser.back(callback)) == ("/p", "token_exchange_failed")
    assert not github_provider.requests_to("/user")
    assert (await browser.me()).status_code == 401


OPEN_REDIRECTS = [
    "https://evil.test/", "//evil.test/x", "/\\evil.test", "\\\\evil.test", "javascript:alert(1)", "/\t/evil.test",
    "evil.test", "http:/evil.test", "", "/\r\nSet-Cookie:x=1",
]


async def test_no_open_redirect_through_the_target(coderic_kernel: Any, browsers: Any) -> None:
    browser = browsers()
    for target in OPEN_REDIRECTS:
        response = await browser.site.get("/api/v1/auth/oauth/github/start", params={"next": target})
        assert response.status_code == 422, (target, response.status_code)
        assert "location" not in response.headers, target


async def test_the_callback_redirects_only_to_the_stored_target(coderic_kernel: Any, browsers: Any,
                                                                github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    callback = await browser.at_provider(await browser.start("github", next="/safe"))
    response = await browser.back(replace_query(callback, next="https://evil.test/"))
    assert response.headers["location"] == "/safe"


# -- OpenID Connect -------------------------------------------------------------------------------

async def test_oidc_sign_in_end_to_end(coderic_kernel: Any, browsers: Any, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ProviderUser(id="acme|42", login="carla", email="carla@acme.example", name="Carla"))
    browser = browsers()
    authorize = await browser.start("acme", next="/welcome")
    sent = query(authorize)
    assert authorize.startswith(f"{oidc_provider.url}/authorize")
    assert sent["redirect_uri"] == ACME_CALLBACK and sent["scope"] == "openid email profile"
    assert sent["code_challenge_method"] == "S256" and len(sent["nonce"]) >= 20
    response = await browser.back(await browser.at_provider(authorize))
    assert response.headers["location"] == "/welcome"
    me = (await browser.me()).json()
    assert (me["email"], me["email_verified"], me["name"], me["github_id"]) == ("carla@acme.example", True, "Carla", None)
    (identity,) = await LinkedIdentity.select().where(LinkedIdentity.user_id == me["id"])
    assert (identity["key"], identity["subject"]) == ("acme:acme|42", "acme|42")
    (token_request,) = oidc_provider.requests_to("/token")
    assert token_request.headers["authorization"].startswith("Basic ")
    assert s256(token_request.form["code_verifier"]) == sent["code_challenge"]
    assert len(oidc_provider.requests_to("/.well-known/openid-configuration")) == 1
    assert len(oidc_provider.requests_to("/userinfo")) == 1

    await browsers().sign_in("acme")  # the discovery document is kept
    assert len(oidc_provider.requests_to("/.well-known/openid-configuration")) == 1
    assert await User.count() == 1


BAD_CLAIMS = {
    "wrong_iss": {"iss": "https://evil.test"},
    "no_iss": {"iss": DROP},
    "wrong_aud": {"aud": "another-client"},
    "aud_list_without_us": {"aud": ["another-client", "third"]},
    "aud_list_wrong_azp": {"aud": ["coderic-test-client", "third"], "azp": "third"},
    "no_aud": {"aud": DROP},
    "expired": {"exp": int(time.time()) - 3600},
    "no_exp": {"exp": DROP},
    "no_iat": {"iat": DROP},
    "wrong_nonce": {"nonce": "guessed"},
    "no_nonce": {"nonce": DROP},
    "no_sub": {"sub": DROP},
    "wrong_at_hash": {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"},
}


async def test_oidc_refuses_bad_claims(coderic_kernel: Any, browsers: Any, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ProviderUser(id="7", login="dan", email="dan@acme.example"))
    for case, claims in BAD_CLAIMS.items():
        oidc_provider.id_token_claims = claims
        browser = browsers()
        assert failure(await browser.sign_in("acme", next="/n")) == ("/n", "id_token_invalid"), case
        assert (await browser.me()).status_code == 401, case
    assert await User.count() == 0
    oidc_provider.reset_faults()
    assert (await browsers().sign_in("acme", next="/ok")).headers["location"] == "/ok"


async def test_oidc_refuses_bad_signatures(coderic_kernel: Any, browsers: Any, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ProviderUser(id="7", login="dan", email="dan@acme.example"))
    for mode in ("foreign", "foreign_kid", "none", "hmac", "hmac_public_key"):
        oidc_provider.id_token_signing = mode
        assert failure(await browsers().sign_in("acme")) == ("/", "id_token_invalid"), mode
    assert await User.count() == 0
    oidc_provider.reset_faults()  # and the same provider, signing properly, signs in
    assert (await browsers().sign_in("acme", next="/ok")).headers["location"] == "/ok"


async def test_oidc_token_without_kid(coderic_kernel: Any, browsers: Any, oidc_provider: OIDCProvider) -> None:
    """Without a kid the only key of the JWKS is used; with two keys, nothing is guessed."""
    oidc_provider.login_as(ProviderUser(id="7", login="dan"))
    oidc_provider.id_token_signing = "no_kid"
    assert (await browsers().sign_in("acme", next="/ok")).headers["location"] == "/ok"
    oidc_provider.rotate_key()
    assert failure(await browsers().sign_in("acme")) == ("/", "id_token_invalid")


async def test_oidc_userinfo_of_another_subject(coderic_kernel: Any, browsers: Any,
                                                oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ProviderUser(id="7", login="dan", email="dan@acme.example"))
    oidc_provider.userinfo_claims = {"sub": "8", "email": "victim@example.org"}
    assert failure(await browsers().sign_in("acme")) == ("/", "userinfo_invalid")


async def test_oidc_key_rotation(coderic_kernel: Any, browsers: Any, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ProviderUser(id="7", login="dan"))
    await browsers().sign_in("acme")
    assert len(oidc_provider.requests_to("/jwks")) == 1
    await browsers().sign_in("acme")
    assert len(oidc_provider.requests_to("/jwks")) == 1  # known kid: the cached JWKS serves
    oidc_provider.rotate_key()
    oidc_provider.drop_old_keys()
    assert (await browsers().sign_in("acme", next="/r")).headers["location"] == "/r"
    assert len(oidc_provider.requests_to("/jwks")) == 2  # the new kid made it fetch again
    # A token signed by a key nobody publishes fetches again too, and fails.
    oidc_provider.id_token_signing = "foreign"
    assert failure(await browsers().sign_in("acme")) == ("/", "id_token_invalid")
    assert len(oidc_provider.requests_to("/jwks")) == 3


@pytest.mark.coderic(config={"auth_oidc_jwks_refetch_seconds": 3600})
async def test_jwks_refetch_is_throttled(coderic_kernel: Any, browsers: Any, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ProviderUser(id="7", login="dan"))
    await browsers().sign_in("acme")
    oidc_provider.id_token_signing = "foreign"  # tokens naming unknown kids cannot make it fetch on every try
    for _ in range(3):
        assert failure(await browsers().sign_in("acme")) == ("/", "id_token_invalid")
    assert len(oidc_provider.requests_to("/jwks")) == 1


async def test_oidc_email_linking_follows_email_verified(coderic_kernel: Any, browsers: Any,
                                                         oidc_provider: OIDCProvider) -> None:
    member = await coderic_kernel.create_user("erin@acme.example", password="correct horse battery")
    oidc_provider.login_as(ProviderUser(id="9", login="erin", email="erin@acme.example", email_verified=False))
    browser = browsers()
    await browser.sign_in("acme")
    assert (await browser.me()).json()["id"] != member
    oidc_provider.login_as(ProviderUser(id="10", login="erin2", email="erin@acme.example", email_verified=True))
    browser = browsers()
    await browser.sign_in("acme")
    assert (await browser.me()).json()["id"] == member


@pytest.mark.coderic(acme={"link_by_email": False})
async def test_link_by_email_can_be_turned_off(coderic_kernel: Any, browsers: Any, oidc_provider: OIDCProvider) -> None:
    member = await coderic_kernel.create_user("erin@acme.example", password="correct horse battery")
    oidc_provider.login_as(ProviderUser(id="10", login="erin", email="erin@acme.example", email_verified=True))
    browser = browsers()
    await browser.sign_in("acme")
    me = (await browser.me()).json()
    assert me["id"] != member and me["email"] is None


@pytest.mark.coderic(config={"auth_oidc_providers": []})
async def test_only_configured_providers_are_offered(coderic_kernel: Any, browsers: Any) -> None:
    providers = (await browsers().site.get("/api/v1/auth/providers")).json()["providers"]
    assert [p["name"] for p in providers] == ["github"]
    assert (await browsers().site.get("/api/v1/auth/oauth/acme/start")).status_code == 404


# -- linking while signed in ----------------------------------------------------------------------

async def signed_in_with_password(coderic_kernel: Any, browsers: Any) -> tuple[str, Browser]:
    user_id = await coderic_kernel.create_user("fay@example.org", password="correct horse battery")
    browser = browsers()
    session = await coderic_kernel.sign_in(user_id, mode="session")
    browser.site.cookies.update(session.cookies)
    browser.site.headers["X-CSRF-Token"] = session.headers["X-CSRF-Token"]
    return user_id, browser


async def test_link_unlink_and_sign_in_with_the_linked_account(coderic_kernel: Any, browsers: Any,
                                                               github_provider: GitHubProvider,
                                                               oidc_provider: OIDCProvider) -> None:
    user_id, browser = await signed_in_with_password(coderic_kernel, browsers)
    # Someone whose GitHub email differs: only an explicit link joins the accounts.
    github_provider.login_as(ProviderUser(id="3003", login="fay-gh", email="fay@elsewhere.example"))
    response = await browser.site.post("/api/v1/me/identities/github", json={"next": "/settings"})
    assert response.status_code == 200
    done = await browser.back(await browser.at_provider(response.json()["authorize_url"]))
    assert done.headers["location"] == "/settings?linked=github"
    me = (await browser.me()).json()
    assert me["id"] == user_id and me["github_id"] == 3003 and me["email"] == "fay@example.org"
    assert me["name"] == ""  # linking without refresh_profile changes no profile field

    other = browsers()
    await other.sign_in("github")
    assert (await other.me()).json()["id"] == user_id

    # A second GitHub account cannot be linked to the same member.
    github_provider.login_as(ProviderUser(id="3004", login="fay-alt"))
    response = await browser.site.post("/api/v1/me/identities/github", json={})
    done = await browser.back(await browser.at_provider(response.json()["authorize_url"]))
    assert failure(done) == ("/", "provider_already_linked")

    oidc_provider.login_as(ProviderUser(id="fay", login="fay"))
    response = await browser.site.post("/api/v1/me/identities/acme", json={"next": "/s"})
    await browser.back(await browser.at_provider(response.json()["authorize_url"]))
    listed = (await browser.site.get("/api/v1/me/identities")).json()
    assert sorted(i["provider"] for i in listed["identities"]) == ["acme", "github"] and listed["available"] == []

    assert (await browser.site.delete("/api/v1/me/identities/github")).status_code == 204
    assert (await browser.me()).json()["github_id"] is None
    assert (await browser.site.delete("/api/v1/me/identities/github")).status_code == 404
    assert (await browser.site.delete("/api/v1/me/identities/acme")).status_code == 204  # the password remains
    assert [e["detail"]["provider"] for e in await events("identity.unlinked")] == ["github", "acme"]


async def test_an_identity_of_another_member_is_not_linked(coderic_kernel: Any, browsers: Any,
                                                           github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    owner = browsers()
    await owner.sign_in("github")
    user_id, browser = await signed_in_with_password(coderic_kernel, browsers)
    response = await browser.site.post("/api/v1/me/identities/github", json={"next": "/settings"})
    done = await browser.back(await browser.at_provider(response.json()["authorize_url"]))
    assert failure(done) == ("/settings", "identity_in_use")
    assert (await browser.me()).json()["github_id"] is None


async def test_the_last_way_to_sign_in_stays(coderic_kernel: Any, browsers: Any, github_provider: GitHubProvider,
                                             oidc_provider: OIDCProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    await browser.sign_in("github")
    browser.site.headers["X-CSRF-Token"] = (await browser.site.get("/api/v1/auth/session")).json()["csrf_token"]
    response = await browser.site.delete("/api/v1/me/identities/github")
    assert response.status_code == 409 and "only way to sign in" in response.json()["detail"]

    oidc_provider.login_as(ProviderUser(id="ana-acme", login="ana"))
    response = await browser.site.post("/api/v1/me/identities/acme", json={})
    await browser.back(await browser.at_provider(response.json()["authorize_url"]))
    assert (await browser.site.delete("/api/v1/me/identities/github")).status_code == 204
    assert (await browser.site.delete("/api/v1/me/identities/acme")).status_code == 409


async def test_linking_needs_the_member_and_csrf(coderic_kernel: Any, browsers: Any,
                                                 github_provider: GitHubProvider) -> None:
    anonymous = browsers()
    assert (await anonymous.site.post("/api/v1/me/identities/github", json={})).status_code == 401
    user_id, browser = await signed_in_with_password(coderic_kernel, browsers)
    del browser.site.headers["X-CSRF-Token"]
    assert (await browser.site.post("/api/v1/me/identities/github", json={})).status_code == 403
    token = await coderic_kernel.sign_in(user_id)
    created = await token.post("/api/v1/me/tokens", json={"name": "bot", "scopes": ["write"]})
    bot = {"Authorization": f"Bearer {created.json()['token']}"}
    assert (await anonymous.site.post("/api/v1/me/identities/github", json={}, headers=bot)).status_code == 403
    bad = await token.post("/api/v1/me/identities/github", json={"next": "https://evil.test"})
    assert bad.status_code == 422


async def test_a_link_started_by_an_ended_session_does_not_complete(coderic_kernel: Any, browsers: Any,
                                                                    github_provider: GitHubProvider) -> None:
    github_provider.login_as(ProviderUser(id="3003", login="fay-gh"))
    user_id, browser = await signed_in_with_password(coderic_kernel, browsers)
    response = await browser.site.post("/api/v1/me/identities/github", json={"next": "/settings"})
    callback = await browser.at_provider(response.json()["authorize_url"])
    assert (await browser.site.post("/api/v1/auth/logout")).status_code == 204
    assert failure(await browser.back(callback)) == ("/settings", "session_ended")
    assert await LinkedIdentity.count() == 0


async def test_two_tabs_sign_in_at_once(coderic_kernel: Any, browsers: Any,
                                        github_provider: GitHubProvider) -> None:
    github_provider.login_as(ana())
    browser = browsers()
    first = await browser.start("github", next="/1")
    second = await browser.start("github", next="/2")  # the second tab reuses the browser's binding cookie
    callbacks = [await browser.at_provider(url) for url in (first, second)]
    assert (await browser.back(callbacks[1])).headers["location"] == "/2"
    assert (await browser.back(callbacks[0])).headers["location"] == "/1"
