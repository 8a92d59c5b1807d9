"""A real SMTP server for the email tests and the benchmark: aiosmtpd on a free loopback
port, in its own thread, that can be stopped and started again on the same port. With
``tls=True`` it gets a self-signed certificate (made with ``cryptography``) for STARTTLS or
implicit TLS, and ``users`` turns on AUTH."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for ``host`` (also its own CA) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ))
    return cert_path, key_path


class Inbox:
    """The aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in self.received]  # type: ignore[misc]


class SMTPServer:
    def __init__(self, folder: Path, *, tls: str | None = None, users: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.tls = tls  # None, "starttls" or "implicit"
        self.users = users or {}
        self.cafile: Path | None = None
        self._context: ssl.SSLContext | None = None
        if tls:
            self.cafile, key = self_signed(folder)
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(self.cafile, key)
        self.controller: Controller | None = None

    def url(self, scheme: str | None = None, **query: str) -> str:
        scheme = scheme or ("smtps" if self.tls == "implicit" else "smtp")
        user = ""
        if self.users:
            name, password = next(iter(self.users.items()))
            user = f"{name}:{password}@"
        params = dict(query)
        if self.cafile is not None:
            params.setdefault("cafile", str(self.cafile))
        tail = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        return f"{scheme}://{user}127.0.0.1:{self.port}{tail}"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and self.users.get(data.login.decode()) == data.password.decode():
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.tls == "starttls":
            kwargs.update(tls_context=self._context, require_starttls=True)
        elif self.tls == "implicit":
            kwargs.update(ssl_context=self._context)
        if self.users:
            # Under implicit TLS aiosmtpd does not see the TLS layer; it is there from the first byte.
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=self.tls != "implicit")
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)
        if self.tls == "implicit":  # the controller's own readiness probe does not speak TLS
            self.controller.ready_timeout = 5
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SMTPServer]:
    """A real SMTP server on a free loopback port for the test (``from smtp_server import smtp``)."""
    server = SMTPServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
