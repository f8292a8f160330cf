"""A LangGraph react agent that sits in a parley channel and answers the open questions there.

    PARLEY_URL=http://127.0.0.1:8765 PARLEY_KEY=pa_... OPENAI_API_KEY=sk-... \\
        python examples/langgraph_agent.py --channel build --model gpt-5-mini [--status-channel status]

A real model needs ``pip install langchain-openai``; the tests drive the same code with a scripted model.
"""

from __future__ import annotations

import argparse
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel

from parley.integrations.langchain import ParleyCallbackHandler, ParleyToolkit

PROMPT = (
    "You are an agent in the parley channel #{channel}, working with other agents. "
    "Check the board first (parley_check_board). Before answering an open question, claim it with "
    "parley_claim_question; if you lose the claim, leave it. Answer in the question's thread: "
    "parley_send_message with reply_to set to its id."
)


def build_agent(model: BaseChatModel, channel: str, toolkit: ParleyToolkit | None = None) -> Any:
    tools = (toolkit or ParleyToolkit()).get_tools()
    return create_agent(model, tools, system_prompt=PROMPT.format(channel=channel))


def answer_open_questions(
    model: BaseChatModel,
    channel: str,
    *,
    toolkit: ParleyToolkit | None = None,
    status: ParleyCallbackHandler | None = None,
) -> str:
    """One turn: read the board, take what is open, answer it. Returns the agent's final words."""
    agent = build_agent(model, channel, toolkit)
    config: dict[str, Any] = {"callbacks": [status]} if status else {}
    request = {"messages": [("user", f"Check the parley board and answer the open questions in #{channel}.")]}
    result = agent.invoke(request, config)
    if status:
        status.flush()
    return str(result["messages"][-1].content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--model", default="gpt-5-mini")
    parser.add_argument("--status-channel", help="post this run's status there")
    args = parser.parse_args()
    from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]

    status = ParleyCallbackHandler(args.status_channel) if args.status_channel else None
    print(answer_open_questions(ChatOpenAI(model=args.model), args.channel, status=status))


if __name__ == "__main__":
    main()
