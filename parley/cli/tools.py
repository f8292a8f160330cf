"""``parley tools export``: the vendor tool definitions, from the one catalogue."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from parley.cli.common import CLIError


def cmd_tools_export(args: argparse.Namespace) -> None:
    from parley.tool_definitions import exporters, sync

    if args.check:
        stale = sync.stale()
        if stale:
            names = ", ".join(str(path) for path in stale)
            raise CLIError(f"stale generated files: {names}; run 'parley tools export --update'")
        print("generated tool files are up to date")
    elif args.update:
        changed = sync.update()
        print("\n".join(f"wrote {path}" for path in changed) or "nothing to update")
    elif args.format:
        text = exporters.render(args.format)
        if args.out:
            Path(args.out).write_text(text)
        else:
            sys.stdout.write(text)
    else:
        raise CLIError("pass --format FORMAT, --check or --update")


def add(commands: Any) -> None:
    from parley.tool_definitions.exporters import FORMATS

    tools = commands.add_parser("tools", help="the agent-facing tool definitions")
    tools_commands = tools.add_subparsers(dest="tools_command", required=True, metavar="ACTION")
    p = tools_commands.add_parser(
        "export", help="print or write a vendor's tool JSON", description="export the tool definitions"
    )
    p.add_argument("--format", choices=sorted(FORMATS), help="the vendor format")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--check", action="store_true", help="fail if a committed generated file is stale")
    p.add_argument("--update", action="store_true", help="rewrite the committed generated files")
    p.set_defaults(func=cmd_tools_export)
