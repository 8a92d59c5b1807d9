"""Prometheus metrics of one kernel instance, in a registry of its own (nothing global).

Requests are labelled by route *template* (``/api/v1/hello/greetings/{greeting_id}``),
never the raw path, so the number of series stays bounded. With several worker processes,
set ``PROMETHEUS_MULTIPROC_DIR`` and every worker's numbers are summed at scrape time.
"""

from __future__ import annotations

import hmac
import os
from bisect import bisect_left
import platform
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from coderic_sdk import PluginInfo
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FIRST_BUCKET = LATENCY_BUCKETS[0]
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # values must go through prometheus_client's files
            self.http: RequestStats | MultiprocessRequestStats = MultiprocessRequestStats(self.registry)
        else:
            self.http = RequestStats()
            self.registry.register(self.http)
        self.hook_calls = Counter(
            "coderic_hook_calls", "Plugin hook calls.", ["plugin", "hook"], registry=self.registry
        )
        self.hook_duration = Histogram(
            "coderic_hook_duration_seconds", "Time spent in plugin hooks.", ["plugin", "hook"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.rate_limit_rejections = Counter(
            "coderic_rate_limit_rejections", "Requests refused (429) by a rate limit policy.", ["policy"],
            registry=self.registry,
        )
        self.rate_limit_store_errors = Counter(
            "coderic_rate_limit_store_errors", "Rate limit checks made while the store was unreachable.", ["policy"],
            registry=self.registry,
        )
        self.jobs = Counter("coderic_jobs", "Job runs by outcome (done, retry, dead).", ["job", "outcome"], registry=self.registry)
        self.job_duration = Histogram(
            "coderic_job_duration_seconds", "Time a job run took.", ["job"], buckets=JOB_BUCKETS, registry=self.registry
        )
        self.outbox_backlog = Gauge(
            "coderic_outbox_backlog", "Outbox rows not yet done nor dead.", registry=self.registry, multiprocess_mode="max"
        )
        self.outbox_oldest_age = Gauge(
            "coderic_outbox_oldest_age_seconds", "Age of the oldest open outbox row.", registry=self.registry,
            multiprocess_mode="max",
        )
        self.queue_depth = Gauge(
            "coderic_queue_depth", "Jobs waiting in the queue.", registry=self.registry, multiprocess_mode="max"
        )
        self.events = Counter("coderic_events_published", "Events published.", ["event"], registry=self.registry)

    def observe_job(self, job: str, outcome: str, seconds: float) -> None:
        self.jobs.labels(job, outcome).inc()
        self.job_duration.labels(job).observe(seconds)

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


REQUEST_LABELS = ("method", "route", "status", "plugin")
RequestKey = tuple[str, str, str, str]


class RequestStats(Collector):
    """HTTP request counts and latencies kept as plain numbers, turned into Prometheus series
    only when scraped. The event loop is the only writer, and the scrape runs on it too.

    Each series is one list, ``[sum, count per bucket...]`` (the count is their total), that
    the request observer keeps a reference to and adds to as ``record_request`` does: two
    additions per request, several times cheaper than prometheus_client's locked counters.
    Requests in flight are those started and not yet counted in a series.
    """

    def __init__(self) -> None:
        self.series: dict[RequestKey, list[Any]] = {}
        self.begun = 0

    def started(self) -> None:
        self.begun += 1

    def entry(self, key: RequestKey) -> list[Any]:
        """The series of ``key``, created at its first request."""
        entry = self.series.get(key)
        if entry is None:
            entry = self.series[key] = [0.0] + [0] * (len(LATENCY_BUCKETS) + 1)
        return entry

    def observe(self, key: RequestKey, seconds: float) -> None:
        record_request(self.entry(key), seconds)

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily("coderic_http_requests", "HTTP requests answered.", labels=REQUEST_LABELS)
        latency = HistogramMetricFamily(
            "coderic_http_request_duration_seconds", "Time to answer an HTTP request.", labels=REQUEST_LABELS
        )
        answered = 0
        for key, (total, *buckets) in list(self.series.items()):
            count = sum(buckets)
            answered += count
            requests.add_metric(list(key), count)
            cumulative, running = [], 0
            for bound, hits in zip([*map(str, LATENCY_BUCKETS), "+Inf"], buckets):
                running += hits
                cumulative.append((bound, running))
            latency.add_metric(list(key), cumulative, total)
        in_flight = GaugeMetricFamily("coderic_http_requests_in_flight", "HTTP requests being answered.")
        in_flight.add_metric([], self.begun - answered)
        return [requests, latency, in_flight]


def record_request(entry: list[Any], seconds: float) -> None:
    """Count one request of ``seconds`` in a series of ``RequestStats``."""
    entry[0] += seconds
    # Most requests fall in the first bucket; bisect only for the others.
    entry[1 if seconds <= FIRST_BUCKET else 1 + bisect_left(LATENCY_BUCKETS, seconds)] += 1


class MultiprocessRequestStats:
    """The same series through prometheus_client objects, whose values the multiprocess
    mode can sum across worker processes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("coderic_http_requests", "HTTP requests answered.", REQUEST_LABELS, registry=registry)
        self.latency = Histogram(
            "coderic_http_request_duration_seconds", "Time to answer an HTTP request.", REQUEST_LABELS,
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.gauge = Gauge(
            "coderic_http_requests_in_flight", "HTTP requests being answered.", registry=registry,
            multiprocess_mode="livesum",
        )

    def started(self) -> None:
        self.gauge.inc()

    def entry(self, key: RequestKey) -> None:
        return None  # values live in prometheus_client's files: every request goes through observe

    def observe(self, key: RequestKey, seconds: float) -> None:
        self.gauge.dec()
        self.requests.labels(*key).inc()
        self.latency.labels(*key).observe(seconds)


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
