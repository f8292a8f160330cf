"""LangChain integration: every parley tool as a ``BaseTool``, a ``BaseToolkit``, and a status callback handler."""

from parley.toolkit.callbacks import AsyncParleyCallbackHandler, ParleyCallbackHandler
from parley.toolkit.tools import ParleyTool, ParleyToolkit, args_schema

__all__ = ["AsyncParleyCallbackHandler", "ParleyCallbackHandler", "ParleyTool", "ParleyToolkit", "args_schema"]
