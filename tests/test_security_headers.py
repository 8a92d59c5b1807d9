"""Security headers, CORS, content negotiation and trusted proxies (issue 3)."""

from __future__ import annotations

import pytest

HELLO = pytest.mark.coderic(plugins=["hello"])
REQUIRED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def assert_secure(response) -> None:  # type: ignore[no-untyped-def]
    for name, value in REQUIRED.items():
        assert response.headers.get(name) == value, name
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "server" not in response.headers
    assert "strict-transport-security" not in response.headers  # plain HTTP


@HELLO
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/hello/greeting", 200),
        ("GET", "/healthz", 200),
        ("GET", "/no/such/path", 404),
        ("PUT", "/api/v1/hello/greeting", 405),
        ("GET", "/api/v1/hello/boom", 500),
    ],
)
async def test_every_response_carries_security_headers(coderic_client, method, path, status) -> None:
    response = await coderic_client.request(method, path)
    assert response.status_code == status
    assert_secure(response)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.coderic(config={"trusted_proxies": ["127.0.0.1"]})
async def test_hsts_only_when_a_trusted_proxy_says_https(coderic_kernel) -> None:
    import httpx2

    # The harness client connects as 127.0.0.1 (trusted here).
    transport = httpx2.ASGITransport(app=coderic_kernel.app, client=("127.0.0.1", 5000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        over_https = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        plain = await client.get("/healthz")
    assert over_https.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "strict-transport-security" not in plain.headers


async def test_forwarded_headers_from_untrusted_clients_are_ignored(coderic_kernel) -> None:
    import httpx2

    transport = httpx2.ASGITransport(app=coderic_kernel.app, client=("203.0.113.9", 5000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"})
    assert "strict-transport-security" not in response.headers


@pytest.mark.coderic(config={"cors_origins": ["https://coderic.org"], "cors_allow_credentials": True})
async def test_cors_allows_listed_origins_only(coderic_client) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = await coderic_client.options("/api/v1/plugins", headers={"Origin": "https://coderic.org", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://coderic.org"
    assert allowed.headers["access-control-allow-credentials"] == "true"

    denied = await coderic_client.options("/api/v1/plugins", headers={"Origin": "https://evil.example", **preflight})
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers

    simple = await coderic_client.get("/api/v1/plugins", headers={"Origin": "https://coderic.org"})
    assert simple.headers["access-control-allow-origin"] == "https://coderic.org"
    assert "X-Request-ID" in simple.headers["access-control-expose-headers"]
    foreign = await coderic_client.get("/api/v1/plugins", headers={"Origin": "null"})
    assert "access-control-allow-origin" not in foreign.headers


async def test_no_cors_headers_without_configured_origins(coderic_client) -> None:
    response = await coderic_client.get("/api/v1/plugins", headers={"Origin": "https://coderic.org"})
    assert "access-control-allow-origin" not in response.headers


@HELLO
@pytest.mark.parametrize(
    ("accept", "status"),
    [
        (None, 200),
        ("application/json", 200),
        ("*/*", 200),
        ("application/*", 200),
        ("text/html, application/json;q=0.1", 200),
        ("application/problem+json", 200),
        ("text/html", 406),
        ("application/xml, text/plain", 406),
        ("*/*, application/json;q=0", 406),
    ],
)
async def test_accept_header_negotiation(coderic_client, accept, status) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    response = await coderic_client.get("/api/v1/hello/greeting", headers=headers)
    assert response.status_code == status
    if status == 406:
        assert response.headers["content-type"] == "application/problem+json"
