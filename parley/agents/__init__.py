"""Always-on agents that live in a channel: a vendor-neutral runner and OpenAI and Gemini adapters.

The adapters import their vendor SDK; import them from their modules (``parley.agents.openai_brain``,
``parley.agents.gemini_brain``) so that one vendor's SDK is never needed for the other.
"""

from parley.agents.brain import Brain, ModelUnavailable, ProviderRetry, Turn
from parley.agents.runner import AgentRunner, Guards

__all__ = ["AgentRunner", "Brain", "Guards", "ModelUnavailable", "ProviderRetry", "Turn"]
