"""The public names of the importable parts, pinned so that a change to them is a decision."""

from __future__ import annotations

import parley.executors
import parley.tool_definitions


def test_executor_exports() -> None:
    assert set(parley.executors.__all__) == {
        "Executor",
        "KeepAliveTransport",
        "Response",
        "ToolResult",
        "Transport",
        "TransportError",
    }
    for name in parley.executors.__all__:  # the transport is the client's, shared
        assert getattr(parley.executors, name).__module__.startswith(("parley.executors", "parley.client"))


def test_client_exports() -> None:
    import parley
    import parley.client

    assert set(parley.__all__) == {"AsyncClient", "Client", "ParleyError", "RelayUnreachable", "__version__"}
    assert set(parley.client.__all__) == {"AsyncClient", "Client", "ParleyError", "RelayUnreachable", "records"}
    for name in ("AsyncClient", "Client", "ParleyError", "RelayUnreachable"):
        assert getattr(parley, name) is getattr(parley.client, name)


def test_tool_definition_exports() -> None:
    assert set(parley.tool_definitions.__all__) == {
        "FORMATS",
        "PREFIX",
        "TOOLS",
        "ArgumentError",
        "Param",
        "Tool",
        "build_request",
        "check_arguments",
        "export",
        "find",
        "json_schema",
        "load",
        "openai_tool_violations",
        "strict_violations",
    }
    for name in parley.tool_definitions.__all__:
        assert hasattr(parley.tool_definitions, name)
