"""Which policies exist, at which rates, and which bucket a request falls in.

Policies come from three places, later ones winning on the rate only: the kernel's
``default`` (``rate_limit_default``, per client address and route), plugins'
``register_rate_limits`` (``<plugin>.<name>``), and the operator's ``[kernel] rate_limits``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from coderic_sdk import RateLimitPolicy
from starlette.types import Scope

from ...errors import ConfigError
from .stores import KEY_PREFIX

if TYPE_CHECKING:
    from ...config import Configuration

DEFAULT = "default"
DEFAULT_KEY = ("ip", "route")
RATES = "a rate like '10/minute' or '100/5 minutes' (second, minute, hour, day)"


def resolve_policies(config: Configuration, contributed: Iterable[RateLimitPolicy]) -> dict[str, RateLimitPolicy]:
    """Every policy by name, with the operator's rates applied; ``ConfigError`` names the setting."""
    settings = config.kernel
    try:
        default = RateLimitPolicy.parse(DEFAULT, settings.rate_limit_default, key=DEFAULT_KEY)
    except ValueError as exc:
        raise ConfigError(_invalid(config, "rate_limit_default", settings.rate_limit_default, str(exc), RATES)) from None
    policies = {DEFAULT: default, **{policy.name: policy for policy in contributed}}
    for name, rate in settings.rate_limits.items():
        policy = policies.get(name)
        if policy is None:
            known = ", ".join(sorted(policies))
            raise ConfigError(_invalid(config, "rate_limits", {name: rate}, f"no policy is named {name!r}", f"one of {known}"))
        try:
            parsed = RateLimitPolicy.parse(name, rate)
        except ValueError as exc:
            raise ConfigError(_invalid(config, "rate_limits", {name: rate}, str(exc), RATES)) from None
        # The operator changes the rate; the key, burst (when the plugin chose one) and sensitivity stay.
        policies[name] = dataclasses.replace(policy, limit=parsed.limit, period=parsed.period)
    return policies


def _invalid(config: Configuration, key: str, value: object, reason: str, accepted: str) -> str:
    """Worded like the configuration loader's own errors."""
    return f"invalid setting {key} = {value!r} (from {config.source(key)}): {reason}; accepted: {accepted}"


# Buckets ------------------------------------------------------------------------------


def client_ip(scope: Scope) -> str:
    """The client address, as ProxyHeadersMiddleware left it (rewritten for trusted proxies only)."""
    client = scope.get("client")
    return client[0] if client else "-"


def _ip(scope: Scope) -> str:
    return "ip=" + client_ip(scope)


def _user(scope: Scope) -> str:
    user_id = scope.get("state", {}).get("user_id")
    return f"user={user_id}" if user_id is not None else "anon=" + client_ip(scope)


def route_bucket(policy: RateLimitPolicy, *, route: str, plugin: str) -> Callable[[Scope], str]:
    """A function from a request's scope to its bucket's key, with the fixed parts computed once.

    ``route`` is the operation id (``<plugin>.<route name>``); ``plugin`` the route's owner.
    """
    fixed = {"route": f"route={route}", "plugin": f"plugin={plugin}"}
    head = ":".join([KEY_PREFIX + policy.name, *(fixed[part] for part in policy.key if part in fixed)])
    varying = [_ip if part == "ip" else _user for part in policy.key if part not in fixed]
    if not varying:
        return lambda scope: head
    if len(varying) == 1:
        only = varying[0]
        return lambda scope: f"{head}:{only(scope)}"
    return lambda scope: ":".join([head, *(part(scope) for part in varying)])


def hit_bucket(policy: RateLimitPolicy, plugin: str, key: str) -> str:
    """The bucket of ``plugin.rate_limits.hit(policy, key)``: the caller's key, per plugin."""
    return f"{KEY_PREFIX}{policy.name}:hit:{plugin}:{key}"
