"""Where a running relay listens, written in its data directory so that admin commands find it.

``relay.json`` holds the URL and the process id; it is removed when the relay stops, and a record whose
process is gone is ignored. Standard library only: the CLI reads it without importing the server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _path(data_dir: Path) -> Path:
    return data_dir / "relay.json"


def write(data_dir: Path, url: str) -> None:
    path = _path(data_dir)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def remove(data_dir: Path) -> None:
    _path(data_dir).unlink(missing_ok=True)


def recorded_url(data_dir: Path) -> str | None:
    """The URL of the relay running on this data directory, if one is."""
    try:
        record = json.loads(_path(data_dir).read_text())
        os.kill(int(record["pid"]), 0)  # raises if that process is gone
        return str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
