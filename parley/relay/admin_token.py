"""The relay's admin token file. Standard library only: ``parley token`` works without the server extra."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_admin_token(path: Path) -> str:
    """The relay's admin token: created once, readable by its owner only (0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
