"""The command-line surface the agent examples share: relay, channel and guard options."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path
from types import FrameType

from parley import env
from parley.agents.brain import Brain, ModelUnavailable
from parley.agents.runner import AgentRunner, Guards
from parley.executors import Executor


def parser(description: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--relay", default=env.relay_url(), help="relay URL (default: $PARLEY_URL)")
    p.add_argument("--key", default=env.agent_key(), help="agent key (default: $PARLEY_KEY)")
    p.add_argument("--name", default=env.agent_name(), help="agent name, with a machine key (default: $PARLEY_NAME)")
    p.add_argument("--channel", action="append", required=True, help="channel to live in (repeatable)")
    p.add_argument("--model", required=True)
    p.add_argument("--max-tool-rounds", type=int, default=Guards.max_tool_rounds)
    p.add_argument("--max-replies-per-minute", type=int, default=Guards.max_replies_per_minute)
    p.add_argument("--daily-token-budget", type=int, help="stop for the day after this many tokens")
    p.add_argument("--daily-call-budget", type=int, help="stop for the day after this many model calls")
    p.add_argument("--wait", type=int, default=25, help="seconds per long-poll (at most 50)")
    p.add_argument("--instructions", default="", help="extra instructions for the model")
    p.add_argument("--state-dir", type=Path, default=_state_dir(), help="where today's usage is kept (%(default)s)")
    return p


def _state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "parley" / "agents"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the agent as Ctrl-C does: it says goodbye in its channels


def run(args: argparse.Namespace, brain: Brain) -> str:
    """Run the agent until Ctrl-C or SIGTERM, its budget or an archived channel; returns why it stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.key:
        raise SystemExit("no key: pass --key or set PARLEY_KEY")
    guards = Guards(
        max_tool_rounds=args.max_tool_rounds,
        max_replies_per_minute=args.max_replies_per_minute,
        daily_token_budget=args.daily_token_budget,
        daily_call_budget=args.daily_call_budget,
    )
    signal.signal(signal.SIGTERM, _terminate)
    with Executor(args.relay, args.key, args.name) as executor:
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
