"""A local Web Push service for the push tests: real HTTP on a free 127.0.0.1 port (uvicorn in a
thread, like ``oauth_providers.py``), so the kernel's pywebpush makes real requests.

It does what a browser vendor's push service and the browser do together: it accepts a push
only with a valid VAPID ``Authorization`` (RFC 8292: an ES256 JWT verified with joserfc against
the platform's public key, ``aud`` the endpoint's origin, ``exp`` in the future and at most a
day away, ``sub`` the configured subject), then decrypts the aes128gcm body (RFC 8291) with the
subscribed browser's private key through http_ece, and records the push. ``answers`` scripts the
statuses of the next pushes (``[500, 410]``) after those checks.

Test modules import what they use: ``from push_service import PushService, push_service``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import http_ece
import pytest
from coderic_kernel.notifications import vapid
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey
from oauth_providers import LoopbackServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

#: The platform's VAPID key pair and subject in the push tests.
PRIVATE_KEY, PUBLIC_KEY = vapid.generate()
SUBJECT = "mailto:ops@coderic.example"
#: Push services refuse bodies over 4,096 bytes (RFC 8291 §4 asks them to accept that much).
MAX_BODY = 4096


@dataclass
class Browser:
    """A subscribed browser: its push URL and the keys only it holds."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives in the browser."""
        point = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": vapid.b64url(point), "auth": vapid.b64url(self.auth)}}


@dataclass
class Push:
    """A push the service accepted, decrypted."""

    browser: str
    message: dict[str, Any]
    ttl: int
    urgency: str
    size: int


class PushService:
    def __init__(self, public_key: str = PUBLIC_KEY, subject: str = SUBJECT) -> None:
        self.public_key = public_key
        self.subject = subject
        self.browsers: dict[str, Browser] = {}
        self.received: list[Push] = []
        self.refusals: list[str] = []  # why pushes failed the VAPID or encryption checks
        self.answers: list[int] = []  # statuses for the next valid pushes, in order; then 201
        self.answered: list[int] = []  # every status answered, in order
        self.server = LoopbackServer(Starlette(routes=[Route("/push/{token}", self.receive, methods=["POST"])]), "push-service")

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def browser(self) -> Browser:
        token = secrets.token_urlsafe(16)
        self.browsers[token] = Browser(token, f"{self.server.url}/push/{token}")
        return self.browsers[token]

    def pushes_to(self, browser: Browser) -> list[Push]:
        return [push for push in self.received if push.browser == browser.token]

    def vapid_problem(self, authorization: str) -> str | None:
        """Why ``authorization`` is not a valid VAPID header for this service, or ``None``."""
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return f"Authorization scheme {scheme!r}, not vapid"
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if fields.get("k") != self.public_key:
            return "k is not the platform's public key"
        point = vapid.b64url_decode(self.public_key)
        key = ECKey.import_key({"kty": "EC", "crv": "P-256", "x": vapid.b64url(point[1:33]), "y": vapid.b64url(point[33:])})
        try:
            claims = jwt.decode(fields.get("t", ""), key, algorithms=["ES256"]).claims
        except Exception as exc:  # joserfc's errors: bad signature, malformed token
            return f"JWT does not verify: {exc!r}"
        now = time.time()
        if claims.get("aud") != self.server.url:
            return f"aud {claims.get('aud')!r} is not {self.server.url!r}"
        if not now < claims.get("exp", 0) <= now + 24 * 3600:
            return f"exp {claims.get('exp')} is not within the next 24 hours"
        if claims.get("sub") != self.subject:
            return f"sub {claims.get('sub')!r} is not {self.subject!r}"
        return None

    async def receive(self, request: Request) -> Response:
        browser = self.browsers.get(request.path_params["token"])
        if browser is None:
            return self.answer(404)
        problem = self.vapid_problem(request.headers.get("authorization", ""))
        if problem:
            self.refusals.append(problem)
            return self.answer(401)
        body = await request.body()
        if request.headers.get("content-encoding") != "aes128gcm" or len(body) > MAX_BODY:
            self.refusals.append(f"content-encoding {request.headers.get('content-encoding')}, {len(body)} bytes")
            return self.answer(413)
        try:
            plain = http_ece.decrypt(body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm")
        except Exception as exc:  # http_ece raises ECEException or cryptography's InvalidTag
            self.refusals.append(f"does not decrypt: {exc!r}")
            return self.answer(400)
        if self.answers:
            return self.answer(self.answers.pop(0))
        self.received.append(Push(browser.token, json.loads(plain), int(request.headers.get("ttl", "-1")),
                                  request.headers.get("urgency", ""), len(body)))
        return self.answer(201)

    def answer(self, status: int) -> Response:
        self.answered.append(status)
        return Response(status_code=status)


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A running push service expecting the test VAPID key (``PRIVATE_KEY``) and ``SUBJECT``."""
    with PushService() as service:
        yield service
