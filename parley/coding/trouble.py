"""Why a hook or ``parley mcp`` did nothing, kept where a person can find it.

Hooks must never break their session, so they fail quietly; and a coding client shows an MCP server's stderr only
in its own logs. Each quiet failure is one line in ``$XDG_STATE_HOME/parley/trouble.log`` (0600, kept short),
and ``parley connect --check`` reads the newest ones back.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from parley import env
from parley.boundary import clean

#: The log is cut back to its newest half when it grows past this.
MOST_BYTES = 256 * 1024


def trouble_log() -> Path:
    return env.state_dir() / "trouble.log"


def note(where: str, why: object) -> None:
    """Add one line (never raises: this runs where failing is not allowed)."""
    path = trouble_log()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{when} {where}: {' '.join(clean(str(why)).split())}\n"  # one line, nothing a terminal acts on
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as out:
            out.write(line)
        if path.stat().st_size > MOST_BYTES:
            kept = path.read_bytes()[-MOST_BYTES // 2 :]
            path.write_bytes(kept[kept.find(b"\n") + 1 :])
    except OSError:
        pass


def recent(count: int = 5) -> list[str]:
    """The newest lines, oldest first."""
    try:
        return trouble_log().read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return []
