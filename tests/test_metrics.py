"""GET /metrics: Prometheus text format with requests, latencies, messages, waits and refusals."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from conftest import Relay, assert_error, unique
from prometheus_client.parser import text_string_to_metric_families


def _metrics(relay: Relay) -> str:
    response = httpx.get(f"{relay.url}/metrics", headers={"Authorization": f"Bearer {relay.admin_token}"})
    assert response.status_code == 200
    return response.text


def _samples(relay: Relay) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = _metrics(relay)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_what_happened(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(write_burst=2, write_rate=0.01)
    alice = relay.agent()
    channel = unique("c")
    alice.post(channel, "one")
    alice.post(channel, "two")
    assert alice.http.post("/api/v1/messages", json={"channel": channel, "content": "three"}).status_code == 429
    alice.read(channel)
    samples = _samples(relay)
    posted = ("parley_requests_total", (("method", "POST"), ("route", "/api/v1/messages"), ("status", "201")))
    assert samples[posted] == 2
    refused = ("parley_requests_total", (("method", "POST"), ("route", "/api/v1/messages"), ("status", "429")))
    assert samples[refused] == 1
    assert samples[("parley_rate_limit_refusals_total", ())] == 1
    assert samples[("parley_messages_stored_total", ())] == 2
    assert samples[("parley_parked_waits", ())] == 0
    count = ("parley_request_seconds_count", (("method", "GET"), ("route", "/api/v1/messages")))
    assert samples[count] == 1
    # Raw paths never become labels: cardinality stays bounded by the routes.
    httpx.get(f"{relay.url}/api/v1/files/{unique('x')}")
    text = _metrics(relay)
    assert re.search(r'route="/api/v1/files/\{file_id\}"', text)
    assert "parley_store_errors_total 0.0" in text


def test_metrics_need_the_admin_token_unless_made_public(fresh_relay: Callable[..., Relay]) -> None:
    private = fresh_relay()
    alice = private.agent()
    assert_error(httpx.get(f"{private.url}/metrics"), 401, "invalid_admin_token")
    assert_error(alice.http.get("/metrics"), 401, "invalid_admin_token")  # an agent's key is not enough
    assert httpx.get(f"{private.url}/metrics", headers={"X-Admin-Token": private.admin_token}).status_code == 200
    public = fresh_relay(public_metrics=True)
    assert "parley_requests_total" in httpx.get(f"{public.url}/metrics").text
