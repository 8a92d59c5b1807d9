"""Where messages go, chosen by ``email_url``: one interface, three backends.

- ``file://./var/mail``: each message an ``.eml`` file in that folder, and a log line (the
  embedded default: nothing leaves the machine).
- ``smtp://user:password@host:587`` (STARTTLS when the server offers it; ``?starttls=require``
  refuses to go on without it), ``smtps://...:465`` (TLS from the first byte); ``?cafile=``
  trusts a private CA, ``?timeout=`` in seconds (default 30).
- ``ses://eu-west-1``: Amazon SES's SendRawEmail through boto3 (``coderic-kernel[ses]``),
  credentials from boto3's usual chain; ``?endpoint_url=`` for a local stand-in.

SMTP uses the standard library's ``smtplib`` in a worker thread rather than an async client:
it is mature (STARTTLS, AUTH), adds no dependency, and sends happen in jobs, never in a
request, so a thread per send costs nothing that matters. A ``PermanentFailure`` (5xx, SES
MessageRejected) is not retried; any other error is, by the job that sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger("coderic.email")


class PermanentFailure(Exception):
    """The message will never be accepted as it is: not worth a retry."""


class EmailBackend(Protocol):
    async def send(self, raw: bytes, sender: str, recipients: list[str], message_id: str) -> str | None:
        """Hand over the message; return the provider's id for it, if it gives one."""
        ...


@dataclass
class FileBackend:
    folder: Path

    async def send(self, raw: bytes, sender: str, recipients: list[str], message_id: str) -> str | None:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip("<>")) + ".eml"
        path = self.folder / name
        await asyncio.to_thread(self._write, path, raw)
        logger.info("email %s to %s written to %s", message_id, ", ".join(recipients), path)
        return None

    @staticmethod
    def _write(path: Path, raw: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(raw)
        partial.replace(path)  # a reader never sees half a message


@dataclass
class SMTPBackend:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: str = "auto"  # auto, require
    cafile: str | None = None
    timeout: float = 30.0

    async def send(self, raw: bytes, sender: str, recipients: list[str], message_id: str) -> str | None:
        await asyncio.to_thread(self._send, raw, sender, recipients)
        return None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def _send(self, raw: bytes, sender: str, recipients: list[str]) -> None:
        client: smtplib.SMTP
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            client.ehlo()
            if not self.implicit_tls:
                if client.has_extn("starttls"):
                    client.starttls(context=self._context())
                    client.ehlo()
                elif self.starttls == "require":
                    raise RuntimeError(f"SMTP server {self.host}:{self.port} does not offer STARTTLS (starttls=require)")
            if self.username:
                client.login(self.username, self.password or "")
            try:
                client.sendmail(sender, recipients, raw)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                if all(code >= 500 for code in codes):
                    raise PermanentFailure(f"recipients refused: {exc.recipients}") from exc
                raise
            except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                if exc.smtp_code >= 500:
                    raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
                raise


@dataclass
class SESBackend:
    region: str
    endpoint_url: str | None = None
    _client: Any = None

    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError as exc:
                raise RuntimeError("the ses:// email backend needs boto3: pip install 'coderic-kernel[ses]'") from exc
            self._client = boto3.client("ses", region_name=self.region, endpoint_url=self.endpoint_url)
        return self._client

    async def send(self, raw: bytes, sender: str, recipients: list[str], message_id: str) -> str | None:
        return await asyncio.to_thread(self._send, raw, sender, recipients)

    def _send(self, raw: bytes, sender: str, recipients: list[str]) -> str:
        from botocore.exceptions import ClientError

        try:
            answer = self.client().send_raw_email(Source=sender, Destinations=recipients, RawMessage={"Data": raw})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"MessageRejected", "MailFromDomainNotVerifiedException", "InvalidParameterValue"}:
                raise PermanentFailure(f"SES refused the message: {code}") from exc
            raise
        return str(answer["MessageId"])


def backend_from_url(url: str) -> EmailBackend:
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if parts.scheme == "file":
        return FileBackend(Path(unquote(parts.netloc + parts.path)))
    if parts.scheme in {"smtp", "smtps"}:
        implicit = parts.scheme == "smtps"
        starttls = query.get("starttls", "auto")
        if starttls not in {"auto", "require"}:
            raise ValueError("starttls is auto or require")
        return SMTPBackend(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if implicit else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=starttls,
            cafile=query.get("cafile"),
            timeout=float(query.get("timeout", 30)),
        )
    if parts.scheme == "ses":
        return SESBackend(region=parts.netloc or "us-east-1", endpoint_url=query.get("endpoint_url"))
    raise ValueError(f"unsupported email URL scheme {parts.scheme!r}")
