"""The local OAuth and OpenID Connect providers the identity tests sign in through: each flow
driven by hand over real HTTP, and once with Authlib's client as the kernel uses it, so a kernel
test that fails points at the kernel, not at its stand-in."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from oauth_providers import (
    DROP,
    SIGNING_MODES,
    GitHubProvider,
    OIDCProvider,
    ProviderUser,
    github_provider,  # noqa: F401
    oidc_provider,  # noqa: F401
    s256,
)

CALLBACK = "http://127.0.0.1:9/api/v1/auth/callback"
ANA = ProviderUser(id="1001", login="ana", email="ana@example.org", name="Ana Lima", bio="Builds things",
                   location="Lisbon", avatar_url="https://avatars.example.org/u/1001")


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=10) as client:
        yield client


def query_of(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


def authorize(http: httpx2.Client, url: str, **params: str) -> dict[str, str]:
    """Follow the authorization endpoint's redirect by hand; the callback's query."""
    response = http.get(url, params=params)
    location = response.headers.get("location", "")
    assert location.startswith(params.get("redirect_uri", CALLBACK).split("?")[0]), (response.status_code, location)
    return query_of(response)


# -- GitHub ---------------------------------------------------------------------------------------

def github_code(http: httpx2.Client, provider: GitHubProvider, verifier: str, **extra: str) -> str:
    params = {"client_id": provider.client_id, "redirect_uri": CALLBACK, "scope": "read:user user:email",
              "state": "s-1", "code_challenge": s256(verifier), "code_challenge_method": "S256", **extra}
    answer = authorize(http, provider.authorize_url, **params)
    assert answer["state"] == params["state"]
    return answer["code"]


def exchange(http: httpx2.Client, provider: GitHubProvider, code: str, verifier: str, **extra: str) -> dict[str, Any]:
    form = {"client_id": provider.client_id, "client_secret": provider.client_secret, "code": code,
            "redirect_uri": CALLBACK, "code_verifier": verifier, **extra}
    response = http.post(provider.access_token_url, data=form, headers={"Accept": "application/json"})
    assert response.status_code == 200  # GitHub answers its errors with 200 too
    return response.json()


def test_github_full_flow(http: httpx2.Client, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ANA)
    verifier = secrets.token_urlsafe(48)
    code = github_code(http, github_provider, verifier)
    token = exchange(http, github_provider, code, verifier)
    assert token["token_type"] == "bearer" and token["scope"] == "read:user,user:email"
    assert token["access_token"].startswith("gho_")

    auth = {"Authorization": f"Bearer {token['access_token']}"}
    user = http.get(f"{github_provider.api_url}/user", headers=auth)
    assert user.status_code == 200 and user.headers["x-oauth-scopes"] == "read:user, user:email"
    profile = user.json()
    assert profile["id"] == 1001 and profile["login"] == "ana"
    assert (profile["name"], profile["bio"], profile["location"]) == ("Ana Lima", "Builds things", "Lisbon")
    assert profile["avatar_url"] == ANA.avatar_url
    assert profile["email"] is None  # a private primary email is not on the profile
    emails = http.get(f"{github_provider.api_url}/user/emails", headers={"Authorization": f"token {token['access_token']}"})
    assert emails.json() == [{"email": "ana@example.org", "primary": True, "verified": True, "visibility": "private"}]

    (grant,) = github_provider.grants
    assert grant.scope == "read:user user:email" and grant.redirect_uri == CALLBACK and grant.used
    (request,) = github_provider.requests_to("/login/oauth/access_token")
    assert request.form["code_verifier"] == verifier and request.method == "POST"


def test_github_answers_form_encoded_without_accept_json(http: httpx2.Client, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ANA)
    code = github_code(http, github_provider, "v" * 43)
    response = http.post(github_provider.access_token_url, data={
        "client_id": github_provider.client_id, "client_secret": github_provider.client_secret,
        "code": code, "code_verifier": "v" * 43,
    })
    assert response.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(response.text))["token_type"] == "bearer"


def test_github_token_errors(http: httpx2.Client, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ANA)
    verifier = "a" * 43
    code = github_code(http, github_provider, verifier)
    assert exchange(http, github_provider, code, verifier, client_secret="wrong")["error"] == \
        "incorrect_client_credentials"
    # A wrong PKCE verifier spends the code.
    assert exchange(http, github_provider, code, "b" * 43)["error"] == "bad_verification_code"
    assert exchange(http, github_provider, code, verifier)["error"] == "bad_verification_code"

    code = github_code(http, github_provider, verifier)
    assert exchange(http, github_provider, code, verifier, redirect_uri=CALLBACK + "x")["error"] == \
        "redirect_uri_mismatch"

    code = github_code(http, github_provider, verifier)
    github_provider.expire_codes()
    assert exchange(http, github_provider, code, verifier)["error"] == "bad_verification_code"
    assert exchange(http, github_provider, "made-up", verifier)["error"] == "bad_verification_code"


def test_github_code_reuse_revokes_its_token(http: httpx2.Client, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ANA)
    code = github_code(http, github_provider, "c" * 43)
    token = exchange(http, github_provider, code, "c" * 43)["access_token"]
    assert exchange(http, github_provider, code, "c" * 43)["error"] == "bad_verification_code"
    response = http.get(f"{github_provider.api_url}/user", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json()["message"] == "Bad credentials"


def test_github_authorize_errors(http: httpx2.Client, github_provider: GitHubProvider) -> None:
    base = {"client_id": github_provider.client_id, "redirect_uri": CALLBACK, "state": "st",
            "code_challenge": s256("d" * 43), "code_challenge_method": "S256"}
    assert http.get(github_provider.authorize_url, params={**base, "client_id": "nobody"}).status_code == 404
    assert http.get(github_provider.authorize_url, params=base).status_code == 403  # nobody signed in

    github_provider.login_as(ANA)
    github_provider.denying = True
    denied = authorize(http, github_provider.authorize_url, **base)
    assert (denied["error"], denied["state"]) == ("access_denied", "st")
    github_provider.denying = False

    for bad in ({"code_challenge_method": "plain"}, {"code_challenge": ""}):
        assert authorize(http, github_provider.authorize_url, **{**base, **bad})["error"] == "invalid_request"

    github_provider.redirect_uris = [CALLBACK]
    answer = query_of(http.get(github_provider.authorize_url, params={**base, "redirect_uri": "http://evil.test/cb"}))
    assert answer["error"] == "redirect_uri_mismatch" and answer["state"] == "st"
    assert not github_provider.grants


def test_github_api_errors(http: httpx2.Client, github_provider: GitHubProvider) -> None:
    github_provider.login_as(ProviderUser(id="7", login="bea", email="bea@example.org", email_verified=False,
                                          public_email=True,
                                          other_emails=[{"email": "bea@work.example", "verified": True}]))
    code = github_code(http, github_provider, "e" * 43, scope="read:user")
    token = exchange(http, github_provider, code, "e" * 43)["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert http.get(f"{github_provider.api_url}/user", headers=auth).json()["email"] == "bea@example.org"
    emails = http.get(f"{github_provider.api_url}/user/emails", headers=auth)
    assert emails.status_code == 404 and emails.headers["x-accepted-oauth-scopes"] == "user, user:email"
    assert http.get(f"{github_provider.api_url}/user").status_code == 401
    no_agent = http.build_request("GET", f"{github_provider.api_url}/user", headers=auth)
    del no_agent.headers["user-agent"]
    assert http.send(no_agent).status_code == 403

    code = github_code(http, github_provider, "e" * 43, scope="user:email")
    token = exchange(http, github_provider, code, "e" * 43)["access_token"]
    listed = http.get(f"{github_provider.api_url}/user/emails", headers={"Authorization": f"Bearer {token}"}).json()
    assert listed == [
        {"email": "bea@example.org", "primary": True, "verified": False, "visibility": "public"},
        {"email": "bea@work.example", "primary": False, "verified": True, "visibility": None},
    ]


def test_github_public_profiles(http: httpx2.Client, github_provider: GitHubProvider) -> None:
    github_provider.add_user(ANA)
    assert http.get(f"{github_provider.api_url}/user/1001").json()["login"] == "ana"
    assert http.get(f"{github_provider.api_url}/users/ana").json()["id"] == 1001
    assert http.get(f"{github_provider.api_url}/user/9").status_code == 404
    assert http.get(f"{github_provider.api_url}/users/nobody").json()["message"] == "Not Found"


def test_github_flow_through_authlib(github_provider: GitHubProvider) -> None:
    """The client the kernel uses, configured as it is for GitHub, talks to the stand-in."""
    github_provider.login_as(ANA)
    with OAuth2Client(github_provider.client_id, github_provider.client_secret, scope="read:user user:email",
                      redirect_uri=CALLBACK, code_challenge_method="S256",
                      token_endpoint_auth_method="client_secret_post") as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(github_provider.authorize_url, code_verifier=verifier)
        callback = httpx2.get(url).headers["location"]
        token = client.fetch_token(github_provider.access_token_url, authorization_response=callback,
                                   code_verifier=verifier, state=state)
        assert token["token_type"] == "bearer"
        assert client.get(f"{github_provider.api_url}/user").json()["login"] == "ana"

        url, state = client.create_authorization_url(github_provider.authorize_url, code_verifier=verifier)
        callback = httpx2.get(url).headers["location"]
        with pytest.raises(OAuthError) as failure:
            client.fetch_token(github_provider.access_token_url, authorization_response=callback,
                               code_verifier="wrong-" + verifier, state=state)
        assert failure.value.error == "bad_verification_code"


# -- OpenID Connect -------------------------------------------------------------------------------

def oidc_code(http: httpx2.Client, provider: OIDCProvider, verifier: str, nonce: str = "n-1", **extra: str) -> str:
    params = {"client_id": provider.client_id, "redirect_uri": CALLBACK, "response_type": "code",
              "scope": "openid email profile", "state": "s-2", "nonce": nonce,
              "code_challenge": s256(verifier), "code_challenge_method": "S256", **extra}
    return authorize(http, f"{provider.url}/authorize", **params)["code"]


def oidc_token(http: httpx2.Client, provider: OIDCProvider, code: str, verifier: str, **extra: str) -> httpx2.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier,
            **extra}
    return http.post(f"{provider.url}/token", data=form, auth=(provider.client_id, provider.client_secret))


def verified_claims(http: httpx2.Client, provider: OIDCProvider, id_token: str) -> dict[str, Any]:
    """What a careful relying party accepts: RS256 only, a key from the published JWKS."""
    keys = KeySet.import_key_set(http.get(f"{provider.url}/jwks").json())
    return dict(jwt.decode(id_token, keys, algorithms=["RS256"]).claims)


def test_oidc_discovery_and_full_flow(http: httpx2.Client, oidc_provider: OIDCProvider) -> None:
    config = http.get(oidc_provider.discovery_url).json()
    assert config["issuer"] == oidc_provider.issuer
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]

    oidc_provider.login_as(ANA)
    code = oidc_code(http, oidc_provider, "f" * 43)
    response = oidc_token(http, oidc_provider, code, "f" * 43)
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    claims = verified_claims(http, oidc_provider, token["id_token"])
    assert claims["iss"] == oidc_provider.issuer and claims["aud"] == oidc_provider.client_id
    assert claims["sub"] == "1001" and claims["nonce"] == "n-1"
    assert claims["exp"] - claims["iat"] == 300
    assert (claims["email"], claims["email_verified"], claims["name"]) == ("ana@example.org", True, "Ana Lima")
    digest = hashlib.sha256(token["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    userinfo = http.get(f"{oidc_provider.url}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.json() == {"sub": "1001", "email": "ana@example.org", "email_verified": True, "name": "Ana Lima",
                               "preferred_username": "ana", "picture": ANA.avatar_url}
    assert http.get(f"{oidc_provider.url}/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_oidc_claims_follow_scopes(http: httpx2.Client, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ANA)
    code = oidc_code(http, oidc_provider, "g" * 43, scope="openid")
    token = oidc_token(http, oidc_provider, code, "g" * 43).json()
    claims = verified_claims(http, oidc_provider, token["id_token"])
    assert "email" not in claims and "name" not in claims
    userinfo = http.get(f"{oidc_provider.url}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.json() == {"sub": "1001"}


def test_oidc_key_rotation(http: httpx2.Client, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ANA)
    first = oidc_token(http, oidc_provider, oidc_code(http, oidc_provider, "h" * 43), "h" * 43).json()["id_token"]
    new_key = oidc_provider.rotate_key()
    assert [key["kid"] for key in http.get(f"{oidc_provider.url}/jwks").json()["keys"]] == ["key-1", "key-2"]
    second = oidc_token(http, oidc_provider, oidc_code(http, oidc_provider, "h" * 43), "h" * 43).json()["id_token"]
    assert jwt.decode(second, new_key).header["kid"] == "key-2"
    verified_claims(http, oidc_provider, first)
    verified_claims(http, oidc_provider, second)

    oidc_provider.drop_old_keys()
    assert [key["kid"] for key in http.get(f"{oidc_provider.url}/jwks").json()["keys"]] == ["key-2"]
    assert all("d" not in key for key in http.get(f"{oidc_provider.url}/jwks").json()["keys"])  # public parts only
    with pytest.raises(JoseError):
        verified_claims(http, oidc_provider, first)


@pytest.mark.parametrize("mode", [mode for mode in SIGNING_MODES if mode != "jwks"])
def test_oidc_bad_signatures_fail_verification(http: httpx2.Client, oidc_provider: OIDCProvider, mode: str) -> None:
    oidc_provider.login_as(ANA)
    oidc_provider.id_token_signing = mode
    id_token = oidc_token(http, oidc_provider, oidc_code(http, oidc_provider, "i" * 43), "i" * 43).json()["id_token"]
    header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    expected_alg = {"none": "none", "hmac": "HS256", "hmac_public_key": "HS256"}.get(mode, "RS256")
    assert header["alg"] == expected_alg
    if mode == "no_kid":  # a good signature, only without its kid: a strict client refuses it
        assert "kid" not in header
        return
    with pytest.raises((JoseError, ValueError)):
        verified_claims(http, oidc_provider, id_token)


def test_oidc_claim_overrides(http: httpx2.Client, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ANA)
    oidc_provider.id_token_claims = {"iss": "http://evil.test", "aud": ["other"], "nonce": DROP, "exp": 1}
    oidc_provider.userinfo_claims = {"sub": "someone-else"}
    token = oidc_token(http, oidc_provider, oidc_code(http, oidc_provider, "j" * 43), "j" * 43).json()
    claims = verified_claims(http, oidc_provider, token["id_token"])  # signed well, claims wrong
    assert (claims["iss"], claims["aud"], claims["exp"]) == ("http://evil.test", ["other"], 1)
    assert "nonce" not in claims
    userinfo = http.get(f"{oidc_provider.url}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.json()["sub"] == "someone-else"
    oidc_provider.reset_faults()
    assert oidc_provider.id_token_claims == {} and oidc_provider.id_token_signing == "jwks"


def test_oidc_authorize_errors(http: httpx2.Client, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ANA)
    url = f"{oidc_provider.url}/authorize"
    base = {"client_id": oidc_provider.client_id, "redirect_uri": CALLBACK, "response_type": "code",
            "scope": "openid", "state": "st", "code_challenge": s256("k" * 43), "code_challenge_method": "S256"}
    oidc_provider.redirect_uris = [CALLBACK]
    for bad in ({"client_id": "nobody"}, {"redirect_uri": "http://evil.test/cb"}):
        assert http.get(url, params={**base, **bad}).status_code == 400  # an error page, never a redirect
    assert authorize(http, url, **{**base, "scope": "email"})["error"] == "invalid_scope"
    assert authorize(http, url, **{**base, "response_type": "token"})["error"] == "unsupported_response_type"
    assert authorize(http, url, **{**base, "code_challenge_method": "plain"})["error"] == "invalid_request"
    oidc_provider.denying = True
    assert authorize(http, url, **base) == {"error": "access_denied", "state": "st"}


def test_oidc_token_errors(http: httpx2.Client, oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ANA)
    code = oidc_code(http, oidc_provider, "l" * 43)
    wrong_secret = http.post(f"{oidc_provider.url}/token", auth=(oidc_provider.client_id, "wrong"),
                             data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK})
    assert wrong_secret.status_code == 401 and wrong_secret.json() == {"error": "invalid_client"}
    assert wrong_secret.headers["www-authenticate"].startswith("Basic")
    assert oidc_token(http, oidc_provider, code, "l" * 43, grant_type="password").json() == \
        {"error": "unsupported_grant_type"}
    assert oidc_token(http, oidc_provider, code, "m" * 43).json() == {"error": "invalid_grant"}  # wrong verifier
    assert oidc_token(http, oidc_provider, code, "l" * 43).json() == {"error": "invalid_grant"}  # spent by then

    code = oidc_code(http, oidc_provider, "l" * 43)
    assert oidc_token(http, oidc_provider, code, "l" * 43, redirect_uri=CALLBACK + "?x=1").status_code == 400

    # client_secret_post works too, and a reused code revokes the access token it gave.
    code = oidc_code(http, oidc_provider, "l" * 43)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": "l" * 43,
            "client_id": oidc_provider.client_id, "client_secret": oidc_provider.client_secret}
    access = http.post(f"{oidc_provider.url}/token", data=form).json()["access_token"]
    assert http.post(f"{oidc_provider.url}/token", data=form).status_code == 400
    assert http.get(f"{oidc_provider.url}/userinfo", headers={"Authorization": f"Bearer {access}"}).status_code == 401


def test_oidc_flow_through_authlib(oidc_provider: OIDCProvider) -> None:
    oidc_provider.login_as(ANA)
    config = httpx2.get(oidc_provider.discovery_url).json()
    with OAuth2Client(oidc_provider.client_id, oidc_provider.client_secret, scope="openid email profile",
                      redirect_uri=CALLBACK, code_challenge_method="S256") as client:
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier,
                                                     nonce="n-3")
        callback = httpx2.get(url).headers["location"]
        token = client.fetch_token(config["token_endpoint"], authorization_response=callback, code_verifier=verifier,
                                   state=state)
        assert token["expires_at"] > 0 and "id_token" in token
        assert client.get(config["userinfo_endpoint"]).json()["sub"] == "1001"
    assert oidc_provider.requests_to("/token")[0].headers["authorization"].startswith("Basic ")
    assert oidc_provider.grants[0].nonce == "n-3"


def test_server_stops_and_restarts_on_its_port() -> None:
    provider = OIDCProvider()
    with provider:
        port = provider.server.port
        assert httpx2.get(provider.discovery_url).status_code == 200
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(provider.discovery_url, timeout=2)
    with provider:
        assert provider.server.port == port
        assert httpx2.get(provider.discovery_url).status_code == 200
