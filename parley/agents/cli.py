"""``parley agent openai|gemini``: an always-on agent as a command (the examples are a line over it).

    OPENAI_API_KEY=sk-... parley agent openai --channel build --model gpt-5-mini [--responses] [--base-url URL]
    GEMINI_API_KEY=...    parley agent gemini --channel build --model gemini-2.5-flash

The relay and key come from ``--url``/``--key``/``--name`` or ``PARLEY_URL``/``PARLEY_KEY``/``PARLEY_NAME`` (or the
client config file). Any OpenAI-compatible server is a local model: ``--base-url http://127.0.0.1:11434/v1``
(Ollama), ``:8000/v1`` (vLLM), ``:8080/v1`` (llama.cpp), ``:1234/v1`` (LM Studio).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from parley import env
from parley.agents.brain import Brain, ModelUnavailable
from parley.agents.runner import AgentRunner, Guards
from parley.executors import Executor
from parley.limits import DEFAULT_MAX_WAIT_SECONDS, HARD_MAX_WAIT_SECONDS


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", "--relay", dest="url", help="relay URL (default: $PARLEY_URL or the config file)")
    p.add_argument("--key", help="agent key (default: $PARLEY_KEY or the config file)")
    p.add_argument("--name", help="agent name, with a machine key (default: $PARLEY_NAME)")
    p.add_argument("--channel", action="append", required=True, help="channel to live in (repeatable)")
    p.add_argument("--model", required=True)
    p.add_argument("--max-tool-rounds", type=int, default=Guards.max_tool_rounds)
    p.add_argument("--max-replies-per-minute", type=int, default=Guards.max_replies_per_minute)
    p.add_argument("--daily-token-budget", type=int, help="stop for the day after this many tokens")
    p.add_argument("--daily-call-budget", type=int, help="stop for the day after this many model calls")
    p.add_argument(
        "--wait",
        type=int,
        default=DEFAULT_MAX_WAIT_SECONDS,
        help=f"seconds per long-poll (at most {HARD_MAX_WAIT_SECONDS})",
    )
    p.add_argument("--instructions", default="", help="extra instructions for the model")
    p.add_argument(
        "--state-dir", type=Path, default=env.state_dir() / "agents", help="where today's usage is kept (%(default)s)"
    )


def _openai(args: argparse.Namespace) -> Brain:
    from parley.agents.openai_brain import OpenAIChatBrain, OpenAIResponsesBrain, openai_client

    client = openai_client(args.base_url, os.environ.get("OPENAI_API_KEY") or "not-needed-locally")
    return OpenAIResponsesBrain(client, args.model) if args.responses else OpenAIChatBrain(client, args.model)


def _gemini(args: argparse.Namespace) -> Brain:
    from parley.agents.gemini_brain import GeminiBrain, gemini_client

    return GeminiBrain(gemini_client(args.base_url), args.model)


def add(commands: Any) -> None:
    """``agent openai`` and ``agent gemini``, on a parser's subcommands."""
    agent = commands.add_parser("agent", help="run an always-on model agent in channels")
    vendors = agent.add_subparsers(dest="vendor", required=True, metavar="VENDOR")
    p = vendors.add_parser(
        "openai",
        help="an OpenAI (or OpenAI-compatible) function-calling agent",
        description="an always-on OpenAI agent: Chat Completions, or the Responses API with --responses",
    )
    _options(p)
    p.add_argument("--responses", action="store_true", help="use the Responses API (default: Chat Completions)")
    p.add_argument("--base-url", help="an OpenAI-compatible server (default: $OPENAI_BASE_URL or OpenAI)")
    p.set_defaults(func=lambda a: run(a, _openai(a)))
    p = vendors.add_parser("gemini", help="a Gemini agent (google-genai)", description="an always-on Gemini agent")
    _options(p)
    p.add_argument("--base-url", help="another Gemini API endpoint (default: Google's)")
    p.set_defaults(func=lambda a: run(a, _gemini(a)))


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the agent as Ctrl-C does: it says goodbye in its channels


def run(args: argparse.Namespace, brain: Brain) -> str:
    """Run the agent until Ctrl-C or SIGTERM, its budget or an archived channel; returns why it stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    url, key, name = env.client(args.url, args.key, args.name)
    if not key:
        raise SystemExit("no key: pass --key or set PARLEY_KEY")
    guards = Guards(
        max_tool_rounds=args.max_tool_rounds,
        max_replies_per_minute=args.max_replies_per_minute,
        daily_token_budget=args.daily_token_budget,
        daily_call_budget=args.daily_call_budget,
    )
    signal.signal(signal.SIGTERM, _terminate)
    with Executor(url, key, name) as executor:
        runner = AgentRunner(
            executor,
            brain,
            args.channel,
            guards=guards,
            wait_seconds=args.wait,
            instructions=args.instructions,
            state_dir=args.state_dir,
        )
        try:
            reason = runner.run()
        except ModelUnavailable as exc:
            raise SystemExit(f"not starting: {exc}") from exc
    print(f"stopped: {reason}")
    return reason


def main(vendor: str, argv: Sequence[str] | None = None) -> str:
    """``parley agent VENDOR`` with this process's arguments (what the examples run)."""
    parser = argparse.ArgumentParser(prog="parley", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(["agent", vendor, *(sys.argv[1:] if argv is None else argv)])
    result: str = args.func(args)
    return result
