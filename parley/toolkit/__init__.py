"""The former name of ``parley.integrations.langchain``, kept so that existing imports keep working."""

from parley.integrations.langchain import (
    AsyncParleyCallbackHandler,
    ParleyCallbackHandler,
    ParleyTool,
    ParleyToolkit,
    args_schema,
)

__all__ = ["AsyncParleyCallbackHandler", "ParleyCallbackHandler", "ParleyTool", "ParleyToolkit", "args_schema"]
