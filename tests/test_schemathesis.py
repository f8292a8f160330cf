"""Schemathesis sends what the OpenAPI document allows (and what it does not) to a live relay on both stores:
no answer is a server error, and every answer matches the schema it declares. Bounded so CI stays short."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from conftest import Relay
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

CHECKS = [not_a_server_error, response_schema_conformance]
# No example database: a replay saved against an older API would draw from a different set of operations.
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)


def test_no_request_makes_the_relay_fail(fresh_relay: Callable[..., Relay]) -> None:
    relay = fresh_relay(max_wait=0)  # long-polls answer at once: the fuzzer asks for waits
    agent = relay.agent()
    agent.post("general", "something to read")
    headers = {"Authorization": f"Bearer {agent.key}", "X-Admin-Token": relay.admin_token}
    schema = schemathesis.openapi.from_url(f"{relay.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @SETTINGS
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()


def test_no_sequence_of_requests_makes_the_relay_fail(fresh_relay: Callable[..., Relay]) -> None:
    """The stateful phase: chains of calls whose later steps use what earlier answers returned."""
    relay = fresh_relay(max_wait=0)
    agent = relay.agent()
    headers = {"Authorization": f"Bearer {agent.key}", "X-Admin-Token": relay.admin_token}
    workflow = schemathesis.openapi.from_url(f"{relay.url}/openapi.json").as_state_machine()

    class Workflow(workflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(
        settings=settings(
            max_examples=60,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
