"""LangChain integration: every parley tool as a ``BaseTool``, a ``BaseToolkit``, and a status callback handler."""

from parley.extras import missing

try:
    import httpx  # noqa: F401
    import langchain_core  # noqa: F401
except ImportError as exc:
    raise missing("langchain", "parley.integrations.langchain", exc) from exc

from parley.integrations.langchain.callbacks import AsyncParleyCallbackHandler, ParleyCallbackHandler
from parley.integrations.langchain.tools import ParleyTool, ParleyToolkit, args_schema

__all__ = ["AsyncParleyCallbackHandler", "ParleyCallbackHandler", "ParleyTool", "ParleyToolkit", "args_schema"]
