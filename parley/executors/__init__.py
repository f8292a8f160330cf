"""A zero-dependency (standard library only) executor for parley's tools."""

from parley.executors.executor import Executor, ToolResult
from parley.executors.transport import KeepAliveTransport, Response, Transport, TransportError

__all__ = ["Executor", "KeepAliveTransport", "Response", "ToolResult", "Transport", "TransportError"]
