"""Each backend against a real server: SMTP with STARTTLS and AUTH, SMTP over implicit TLS
(self-signed certificates trusted through ``?cafile=``), Amazon SES through real boto3
against a local stand-in for the SendRawEmail API, and the file outbox."""

from __future__ import annotations

import base64
import email
import email.policy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from coderic_kernel.email.backends import FileBackend, PermanentFailure, SESBackend, SMTPBackend, backend_from_url
from smtp_server import SMTPServer

RAW = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\n"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS: it is TLS
@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_smtp_with_tls_and_auth_delivers(tmp_path: Path, tls: str) -> None:
    server = SMTPServer(tmp_path, tls=tls, users={"mailer": "s3cret"})
    server.start()
    try:
        backend = backend_from_url(server.url(**({"starttls": "require"} if tls == "starttls" else {})))
        assert isinstance(backend, SMTPBackend) and backend.implicit_tls == (tls == "implicit")
        await backend.send(RAW, "a@example.org", ["b@example.org"], "<m1@example.org>")
        assert [(f, t) for f, t, _ in server.inbox.received] == [("a@example.org", ["b@example.org"])]
    finally:
        server.stop()


async def test_smtp_refuses_an_untrusted_certificate_and_wrong_credentials(tmp_path: Path) -> None:
    server = SMTPServer(tmp_path, tls="starttls", users={"mailer": "s3cret"})
    server.start()
    try:
        untrusted = backend_from_url(server.url().split("?")[0])  # no cafile: the self-signed cert is refused
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.send(RAW, "a@example.org", ["b@example.org"], "<m1@example.org>")
        wrong = backend_from_url(server.url().replace("s3cret", "nope"))
        with pytest.raises(Exception, match="535"):
            await wrong.send(RAW, "a@example.org", ["b@example.org"], "<m1@example.org>")
        assert server.inbox.received == []
    finally:
        server.stop()


async def test_starttls_require_refuses_a_server_without_it(tmp_path: Path) -> None:
    server = SMTPServer(tmp_path)
    server.start()
    try:
        with pytest.raises(RuntimeError, match="does not offer STARTTLS"):
            await backend_from_url(server.url(starttls="require")).send(RAW, "a@example.org", ["b@example.org"], "<m>")
    finally:
        server.stop()


class FakeSES(BaseHTTPRequestHandler):
    """The SES Query API's SendRawEmail, as boto3 calls it: a form POST, an XML answer."""

    received: list[dict[str, list[str]]] = []
    reject = False

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        type(self).received.append(form)
        if type(self).reject:
            body = (b'<ErrorResponse><Error><Type>Sender</Type><Code>MessageRejected</Code>'
                    b'<Message>Email address is not verified.</Message></Error><RequestId>r</RequestId></ErrorResponse>')
            self.send_response(400)
        else:
            body = (b'<SendRawEmailResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><SendRawEmailResult>'
                    b"<MessageId>0100-fake-ses-id</MessageId></SendRawEmailResult><ResponseMetadata><RequestId>r</RequestId>"
                    b"</ResponseMetadata></SendRawEmailResponse>")
            self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    FakeSES.received, FakeSES.reject = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSES)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_ses_sends_the_raw_message_through_boto3(fake_ses: str) -> None:
    backend = backend_from_url(f"ses://eu-west-1?endpoint_url={fake_ses}")
    assert isinstance(backend, SESBackend) and backend.region == "eu-west-1"
    assert await backend.send(RAW, "a@example.org", ["b@example.org"], "<m1@example.org>") == "0100-fake-ses-id"
    [form] = FakeSES.received
    assert form["Action"] == ["SendRawEmail"] and form["Source"] == ["a@example.org"]
    assert form["Destinations.member.1"] == ["b@example.org"]
    sent = email.message_from_bytes(base64.b64decode(form["RawMessage.Data"][0]), policy=email.policy.default)
    assert sent["Message-ID"] == "<m1@example.org>"


async def test_ses_rejection_is_permanent(fake_ses: str) -> None:
    FakeSES.reject = True
    with pytest.raises(PermanentFailure, match="MessageRejected"):
        await backend_from_url(f"ses://eu-west-1?endpoint_url={fake_ses}").send(RAW, "a@example.org", ["b@example.org"], "<m>")


async def test_the_file_backend_writes_one_eml_per_message(tmp_path: Path) -> None:
    backend = backend_from_url(f"file://{tmp_path}/mail")
    assert isinstance(backend, FileBackend)
    await backend.send(RAW, "a@example.org", ["b@example.org"], "<m1@example.org>")
    await backend.send(RAW, "a@example.org", ["b@example.org"], "<m1@example.org>")  # a retry: same file
    assert [p.name for p in (tmp_path / "mail").iterdir()] == ["m1_example.org.eml"]
    assert (tmp_path / "mail" / "m1_example.org.eml").read_bytes() == RAW
    assert backend_from_url("file://./var/mail").folder == Path("./var/mail")  # type: ignore[attr-defined]
