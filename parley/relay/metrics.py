"""``GET /metrics`` in Prometheus text format (prometheus-client), one registry per relay.

Requests and latencies by route template (not by raw path, so cardinality stays bounded), messages
stored, parked waits, wake-ups, rate-limit refusals and store errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley.relay.hub import Hub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Long-polls last up to 50 s, so the buckets reach past that.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 60)


class _HubCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("parley_parked_waits", "Long-polls parked right now", value=self.hub.parked)
        yield CounterMetricFamily("parley_wakeups", "Parked waits woken by a message", value=self.hub.wakeups)
        yield CounterMetricFamily(
            "parley_messages_stored", "Messages committed and published", value=self.hub.published
        )


class Metrics:
    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "parley_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "parley_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter("parley_rate_limit_refusals", "Requests refused with 429", registry=self.registry)
        self.store_errors = Counter(
            "parley_store_errors", "Requests that failed in the store (503 or 500)", registry=self.registry
        )
        self.registry.register(_HubCollector(hub))

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)


class MetricsMiddleware:
    """Count and time every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
            if status == 429:
                self.metrics.rate_limited.inc()
            elif status in (500, 503):
                self.metrics.store_errors.inc()
