"""A zero-dependency (standard library only) executor for parley's tools."""

from parley.client.transport import KeepAliveTransport, Response, Transport, TransportError
from parley.executors.executor import Executor, ToolResult

__all__ = ["Executor", "KeepAliveTransport", "Response", "ToolResult", "Transport", "TransportError"]
