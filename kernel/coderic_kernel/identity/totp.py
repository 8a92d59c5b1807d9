"""Time-based one-time passwords (RFC 6238, through pyotp): SHA-1, 6 digits, 30 s steps, one
step of clock drift either way, and each code accepted **at most once**.

pyotp checks a code but does not remember it. Here every accepted code moves the user's
``totp_last_step`` forward in a conditional UPDATE (``... WHERE totp_last_step < step``), and
a code whose step is not after it is refused: a code seen once (over a shoulder, in a
phishing proxy, by two racing requests) never works again, and of two concurrent requests
with one code only one wins.

The secret is kept sealed (``crypto.Sealer``, a key derived from ``secret_key``) in
``kernel_user.totp_secret``; a secret being set up waits, sealed too, in a one-time token of
purpose ``2fa_setup`` until a first code confirms it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyotp
import segno

from ..services.per_kernel import per_kernel
from . import onetime
from .crypto import Sealer
from .tables import OneTimeToken, User

if TYPE_CHECKING:
    from ..kernel import Kernel

ISSUER = "Coderic"
STEP = 30
DIGITS = 6
DRIFT = 1  # steps accepted before and after the current one
SETUP_PURPOSE = "2fa_setup"
SETUP_LIFETIME = timedelta(minutes=15)

Clock = Callable[[], float]


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 as authenticator apps want it."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://totp/Coderic:<account>?secret=...&issuer=Coderic`` URI apps scan."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(name=account, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an inline ``<svg>`` element."""
    return str(segno.make(uri, error="m", micro=False).svg_inline(scale=4, title="Coderic 2FA"))


def normalised_code(code: str) -> str | None:
    """The six digits, spaces and dashes allowed around them ("123 456"); ``None`` otherwise."""
    digits = code.replace(" ", "").replace("-", "")
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def matching_step(secret: str, code: str, now: float, after: int = -1) -> int | None:
    """The earliest time step after ``after``, within the drift window around ``now``, whose
    code is ``code``; ``None`` if there is none. Every candidate is compared, in constant
    time, so timing tells nothing about which one matched."""
    digits = normalised_code(code)
    if digits is None:
        return None
    generator = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now // STEP)
    found = None
    for step in range(current - DRIFT, current + DRIFT + 1):
        if hmac.compare_digest(generator.at(step * STEP), digits) and step > after and found is None:
            found = step
    return found


class Totp:
    """One kernel's TOTP checks. ``clock`` (seconds since the epoch) is what "now" means for
    codes; tests replace it to choose the step instead of racing the real one."""

    def __init__(self, sealer: Sealer, clock: Clock = time.time) -> None:
        self.sealer = sealer
        self.clock = clock

    def code_at(self, secret: str, when: float) -> str:
        return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).at(when)

    # Enrolment ---------------------------------------------------------------------------

    async def start_setup(self, user_id: str) -> str:
        """A new secret for the user, kept sealed until a code confirms it (an earlier
        unconfirmed one stops counting). Returns the secret, to show once."""
        secret = new_secret()
        await onetime.issue(SETUP_PURPOSE, SETUP_LIFETIME, user_id=user_id, data={"secret": self.sealer.seal(secret)})
        return secret

    async def pending_setup(self, user_id: str) -> tuple[int, str] | None:
        """The user's secret being set up (the token's row id and the secret), if any."""
        now = datetime.now(timezone.utc)
        row = await OneTimeToken.select(OneTimeToken.id, OneTimeToken.data).where(
            (OneTimeToken.user_id == user_id) & (OneTimeToken.purpose == SETUP_PURPOSE)
            & OneTimeToken.used_at.is_null() & (OneTimeToken.expires_at > now)
        ).order_by(OneTimeToken.created_at, ascending=False).first().output(load_json=True)
        if row is None:
            return None
        secret = self.sealer.open(str(row["data"].get("secret", "")))
        return None if secret is None else (int(row["id"]), secret)

    async def confirm_setup(self, user_id: str, code: str) -> bool:
        """Turn 2FA on if ``code`` is right for the pending secret: the secret is stored
        sealed, the step of ``code`` counts as used, the pending setup is used up. ``False``
        if there is no pending setup, the code is wrong, or 2FA is on already."""
        pending = await self.pending_setup(user_id)
        if pending is None:
            return False
        token_id, secret = pending
        step = matching_step(secret, code, self.clock())
        if step is None:
            return False
        now = datetime.now(timezone.utc)
        claimed = await OneTimeToken.update({OneTimeToken.used_at: now}).where(
            (OneTimeToken.id == token_id) & OneTimeToken.used_at.is_null()
        ).returning(OneTimeToken.id)
        if not claimed:
            return False
        enabled = await User.update({
            User.totp_secret: self.sealer.seal(secret), User.totp_enabled_at: now, User.totp_last_step: step,
            User.updated_at: now,
        }).where((User.uid == user_id) & User.totp_enabled_at.is_null()).returning(User.uid)
        return bool(enabled)

    # Checking codes ----------------------------------------------------------------------

    async def accept(self, user: dict[str, Any], code: str) -> bool:
        """Whether ``code`` is a valid, never-used code of the user's enabled authenticator.
        A ``True`` uses it (and every earlier step) up."""
        if user["totp_enabled_at"] is None or not user["totp_secret"]:
            return False
        secret = self.sealer.open(user["totp_secret"])
        if secret is None:  # sealed under another secret_key: the user must enrol again
            return False
        step = matching_step(secret, code, self.clock(), after=user["totp_last_step"])
        if step is None:
            return False
        claimed = await User.update({User.totp_last_step: step}).where(
            (User.uid == user["uid"]) & (User.totp_last_step < step) & User.totp_enabled_at.is_not_null()
        ).returning(User.uid)
        return bool(claimed)

    async def disable(self, user_id: str) -> bool:
        """Turn 2FA off (``totp_last_step`` stays: steps only move forward)."""
        now = datetime.now(timezone.utc)
        await onetime.revoke_all(user_id, SETUP_PURPOSE)
        disabled = await User.update({User.totp_secret: None, User.totp_enabled_at: None, User.updated_at: now}).where(
            (User.uid == user_id) & User.totp_enabled_at.is_not_null()
        ).returning(User.uid)
        return bool(disabled)


@per_kernel
def totp_for(kernel: Kernel) -> Totp:
    from .service import identity_for

    return Totp(identity_for(kernel).sealer)
