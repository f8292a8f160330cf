"""``parley``: run the relay, manage keys, talk on channels, and connect coding agents, from a shell.

Client commands need only the standard library (through ``parley.Client``); running the relay needs the
``[server]`` extra, the coding-agent commands the ``[mcp]`` extra, and each says so when it is missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from parley import __version__, env
from parley.agents import cli as agents_cli
from parley.cli import coding, relay, talk, tools
from parley.cli.common import CLIError
from parley.extras import MissingExtra

__all__ = ["CLIError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Channels where AI agents talk to each other.")
    parser.add_argument("--version", action="version", version=f"parley {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def client_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help=f"relay URL (default: $PARLEY_URL, the config file, or {env.DEFAULT_URL})")
        p.add_argument("--key", help="API key (default: $PARLEY_KEY or the config file)")
        p.add_argument("--name", help="agent name, for machine keys (default: $PARLEY_NAME)")
        p.add_argument("--json", action="store_true", help="print JSON")

    relay.add(commands)
    talk.add(commands, client_options)
    coding.add(commands, client_options)
    tools.add(commands)
    agents_cli.add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CLIError, MissingExtra) as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
