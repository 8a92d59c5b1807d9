"""The identity service: one per kernel, holding the parts every sign-in method shares.

The ``auth`` built-in plugin (``builtins/auth.py``) serves its API; the route handler of every
plugin calls ``authenticator`` for each request (``web/routing.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from coderic_sdk import Problem
from starlette.requests import HTTPConnection

from ..services.per_kernel import per_kernel
from .authenticate import Authenticator
from .crypto import Sealer
from .ended_sessions import EndedSessions
from .keys import KeyRing
from .oauth import providers_from
from .refresh import RefreshTokens
from .sessions import Sessions
from .signin import SignIn
from .tables import SigningKey
from .tokens import LEEWAY_SECONDS, AccessTokens

if TYPE_CHECKING:
    from ..kernel import Kernel

THROTTLED = "https://coderic.org/problems/throttled"


class IdentityService:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        settings = self.settings = kernel.config.kernel
        self.sealer = Sealer(settings)
        lifetime = timedelta(seconds=settings.auth_access_token_seconds)
        self.keys = KeyRing(self.sealer, settings.auth_token_algorithm, lifetime)
        self.tokens = AccessTokens(
            self.keys, issuer=settings.public_url, audience=settings.auth_audience or settings.public_url,
            lifetime_seconds=settings.auth_access_token_seconds,
        )
        self.sessions = Sessions(
            idle=timedelta(minutes=settings.auth_session_idle_minutes),
            absolute=timedelta(hours=settings.auth_session_absolute_hours),
            ended=EndedSessions(settings.auth_access_token_seconds + LEEWAY_SECONDS),
        )
        self.refresh = RefreshTokens(self.sessions, timedelta(seconds=settings.auth_refresh_grace_seconds))
        self.authenticator = Authenticator(settings, self.sessions, self.tokens)
        self.signin = SignIn(self)
        self.oauth = providers_from(settings)  # GitHub and OpenID Connect providers, by name

    async def start(self) -> None:
        """Load the signing keys (making the first, or a newer one when the newest is old) and
        the recently ended sessions."""
        await self.keys.load()
        await self.rotate_if_due()
        await self.sessions.ended.load()

    async def rotate_if_due(self) -> str | None:
        newest = await SigningKey.select(SigningKey.created_at).where(SigningKey.retired_at.is_null()).order_by(
            SigningKey.created_at, ascending=False
        ).first()
        age_limit = timedelta(days=self.settings.auth_key_rotation_days)
        if newest is not None and datetime.now(timezone.utc) - newest["created_at"] < age_limit:
            return None
        return await self.keys.rotate()

    async def token_pair(self, user_id: str, session_id: str, expires_at: datetime) -> dict[str, Any]:
        """A new access token and a refresh token of the session's family."""
        access, lifetime = self.tokens.issue(user_id, session_id)
        refresh = await self.refresh.issue(user_id, session_id, expires_at)
        return {"access_token": access, "token_type": "Bearer", "expires_in": lifetime, "refresh_token": refresh}

    async def throttle(self, connection: HTTPConnection, policy: str, key: str) -> None:
        """Count an attempt against ``auth.<policy>`` for ``key`` (an account, an address);
        429 with ``Retry-After`` when over. These policies are sensitive: with the rate-limit
        store unreachable they answer 503 rather than let guesses through."""
        limits = self.kernel.plugin("auth").rate_limits
        decision = await limits.hit(f"auth.{policy}", key)
        if not decision.allowed:
            retry = max(1, int(decision.retry_after + 0.999))
            raise Problem(429, f"Too many attempts; try again in {retry} s.", type=THROTTLED,
                          headers={"Retry-After": str(retry)})



@per_kernel
def identity_for(kernel: Kernel) -> IdentityService:
    return IdentityService(kernel)
