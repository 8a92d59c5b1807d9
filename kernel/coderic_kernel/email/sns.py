"""Amazon SNS messages (how SES reports bounces and complaints): signature checks and the
subscription handshake.

A message is believed only if (1) its ``TopicArn`` is one of ``email_sns_topics`` (anyone
can make an SNS topic and point it here; only the operator's topics count), (2) its
``SigningCertURL`` is an ``https`` URL on an ``sns.<region>.amazonaws.com`` host, and (3)
its ``Signature`` verifies, with that certificate's public key, over the canonical string
SNS signs (SHA1 for ``SignatureVersion`` 1, SHA256 for 2).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
Fetch = Callable[[str], Awaitable[bytes]]


class NotGenuine(Exception):
    """Not a message from one of the operator's SNS topics."""


async def fetch_https(url: str) -> bytes:
    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the URL is checked first
            return bytes(response.read(65536))

    return await asyncio.to_thread(get)


def sns_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not SNS_HOST.match(parts.hostname or ""):
        raise NotGenuine(f"{url!r} is not an SNS URL")
    return url


def canonical(message: Mapping[str, Any]) -> bytes:
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise NotGenuine(f"unknown SNS message type {message.get('Type')!r}")
    lines = []
    for field in fields:
        if field in message and message[field] is not None:
            lines.append(f"{field}\n{message[field]}\n")
        elif field != "Subject":
            raise NotGenuine(f"SNS message without {field}")
    return "".join(lines).encode()


class SnsVerifier:
    def __init__(self, topics: list[str], fetch: Fetch = fetch_https) -> None:
        self.topics = set(topics)
        self.fetch = fetch
        self._certificates: dict[str, x509.Certificate] = {}

    async def certificate(self, url: str) -> x509.Certificate:
        cached = self._certificates.get(url)
        if cached is None:
            pem = await self.fetch(sns_url(url))
            try:
                cached = x509.load_pem_x509_certificate(pem)
            except ValueError as exc:
                raise NotGenuine("the signing certificate is not PEM") from exc
            self._certificates[url] = cached
        return cached

    async def verify(self, message: Mapping[str, Any]) -> None:
        if message.get("TopicArn") not in self.topics:
            raise NotGenuine(f"topic {message.get('TopicArn')!r} is not in email_sns_topics")
        version = str(message.get("SignatureVersion"))
        algorithm: hashes.HashAlgorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1
        if version not in {"1", "2"}:
            raise NotGenuine(f"unknown SignatureVersion {version!r}")
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NotGenuine("the signature is not base64") from exc
        key = (await self.certificate(str(message.get("SigningCertURL", "")))).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise NotGenuine("the signing certificate's key is not RSA")
        try:
            key.verify(signature, canonical(message), padding.PKCS1v15(), algorithm)
        except InvalidSignature as exc:
            raise NotGenuine("the signature does not verify") from exc

    async def confirm(self, message: Mapping[str, Any]) -> None:
        """Visit ``SubscribeURL`` of a genuine SubscriptionConfirmation."""
        await self.fetch(sns_url(str(message["SubscribeURL"])))
