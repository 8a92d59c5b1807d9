"""Prometheus metrics of one kernel instance, in a registry of its own (nothing global).

Requests are labelled by route *template* (``/api/v1/hello/greetings/{greeting_id}``),
never the raw path, so the number of series stays bounded. With several worker processes,
set ``PROMETHEUS_MULTIPROC_DIR`` and every worker's numbers are summed at scrape time.
"""

from __future__ import annotations

import hmac
import os
import platform
from collections.abc import Callable, Iterable, Sequence

from coderic_sdk import PluginInfo
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status", "plugin"]
        self.requests = Counter(
            "coderic_http_requests", "HTTP requests answered.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "coderic_http_request_duration_seconds", "Time to answer an HTTP request.", labels,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.in_flight = Gauge(
            "coderic_http_requests_in_flight", "HTTP requests being answered.", registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.hook_calls = Counter(
            "coderic_hook_calls", "Plugin hook calls.", ["plugin", "hook"], registry=self.registry
        )
        self.hook_duration = Histogram(
            "coderic_hook_duration_seconds", "Time spent in plugin hooks.", ["plugin", "hook"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, str, str], tuple[Callable[[], None], Callable[[float], None]]] = {}

    def observe_request(self, method: str, route: str, status: int, plugin: str, seconds: float) -> None:
        key = (method, route, str(status), plugin)
        children = self._request_children.get(key)
        if children is None:  # labels() takes a lock; do it once per label set
            children = (self.requests.labels(*key).inc, self.latency.labels(*key).observe)
            self._request_children[key] = children
        children[0]()
        children[1](seconds)

    def observe_hook(self, plugin: str, hook: str, seconds: float) -> None:
        self.hook_calls.labels(plugin, hook).inc()
        self.hook_duration.labels(plugin, hook).observe(seconds)

    def describe_build(self, plugins: Sequence[PluginInfo]) -> None:
        from coderic_sdk import __version__ as sdk_version

        build = Gauge(
            "coderic_build_info", "Kernel, SDK and Python versions.", ["kernel_version", "sdk_version", "python_version"],
            registry=self.registry, multiprocess_mode="max",
        )
        build.labels(__version__, sdk_version, platform.python_version()).set(1)
        plugin_info = Gauge(
            "coderic_plugin_info", "Enabled plugins and their versions.", ["plugin", "version", "builtin"],
            registry=self.registry, multiprocess_mode="max",
        )
        for info in plugins:
            plugin_info.labels(info.name, info.version, str(info.builtin).lower()).set(1)

    def watch_pool(self, usage: Callable[[], tuple[int, int] | None]) -> None:
        """Report database pool usage when scraped (PostgreSQL; SQLite has no pool)."""
        self.registry.register(_PoolCollector(usage))

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class _PoolCollector(Collector):
    def __init__(self, usage: Callable[[], tuple[int, int] | None]) -> None:
        self.usage = usage

    def collect(self) -> Iterable[Metric]:
        found = self.usage()
        if found is None:
            return []
        in_use, size = found
        family = GaugeMetricFamily("coderic_db_pool_connections", "Database pool connections.", labels=["state"])
        family.add_metric(["in_use"], in_use)
        family.add_metric(["open"], size)
        return [family]


def metrics_endpoint(metrics: Metrics, token: SecretStr | None):  # type: ignore[no-untyped-def]
    """``GET /metrics``: open when no token is configured (bind privately), else bearer-only."""
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None

    async def serve_metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                from ..web.problems import problem_response

                return problem_response(
                    request.scope, 401, detail="Metrics need 'Authorization: Bearer <metrics token>'.",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return serve_metrics
