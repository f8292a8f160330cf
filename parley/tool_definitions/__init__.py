"""The one source of parley's agent-facing tools, and exports for every model vendor.

The definitions (``spec``, ``catalog``) are standard library only; the executor runs on them.
"""

from parley.tool_definitions.catalog import TOOLS, find
from parley.tool_definitions.exporters import FORMATS, export, json_schema, load
from parley.tool_definitions.spec import PREFIX, ArgumentError, Param, Tool, build_request, check_arguments
from parley.tool_definitions.strict import openai_tool_violations, strict_violations

__all__ = [
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
]
