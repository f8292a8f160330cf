"""The keys of sealed channels, kept by the client in one file (0600), and the join links that carry them.

A link puts the key after ``#``, which browsers and HTTP clients never send to a server::

    http://relay.example:8765/dashboard#channel=alice~plans&k=<key>   (opens the dashboard, which decrypts)
    parley://relay.example:8765/alice~plans#k=<key>

Rotation adds a key (a new ``kid``) and makes it the one new messages are sealed with; older keys stay, so
older messages stay readable. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from parley import env
from parley.client.errors import SealError
from parley.sealed import envelope as fmt

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_key() -> bytes:
    """A channel key: 256 random bits."""
    return secrets.token_bytes(fmt.KEY_BYTES)


class Keyring:
    """``{"channels": {name: {"current": kid, "keys": {kid: key}}}}`` in ``path`` (default: ``PARLEY_KEYRING``
    or ~/.config/parley/keyring.json). Re-read when the file changes, so a ``parley join`` in another
    process reaches a running MCP server or agent at its next message."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else env.keyring_file()
        self._channels: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, dict[str, bytes]] = {}  # decoded, per channel; kept until the file changes
        self._everywhere: dict[str, bytes] = {}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._channels, self._keys, self._everywhere, self._stamp = {}, {}, {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            found = json.loads(self.path.read_text())
            channels = found["channels"]
            if not isinstance(channels, dict):
                raise TypeError
            decoded = {
                name: {kid: fmt.unb64(key) for kid, key in entry["keys"].items()} for name, entry in channels.items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SealError("bad_keyring", f"{self.path} is not a parley keyring: {exc}") from exc
        self._channels, self._keys, self._stamp = channels, decoded, stamp
        self._everywhere = {kid: key for keys in decoded.values() for kid, key in keys.items()}

    def keys(self, channel: str) -> dict[str, bytes]:
        """Every key a channel has had, by kid."""
        with self._lock:
            self._refresh()
            return self._keys.get(channel, {})

    def snapshot(self) -> tuple[dict[str, dict[str, bytes]], dict[str, bytes]]:
        """Read once (for opening a whole page): every channel's keys by kid, and every key of every channel by
        kid (which only ever tells where a moved message came from)."""
        with self._lock:
            self._refresh()
            return self._keys, self._everywhere

    def current(self, channel: str) -> bytes | None:
        """The key new messages in ``channel`` are sealed with, if this keyring holds one."""
        with self._lock:
            self._refresh()
            entry = self._channels.get(channel)
            return self._keys[channel][entry["current"]] if entry else None

    def add(self, channel: str, key: bytes) -> str:
        """Hold ``key`` for ``channel`` and seal new messages with it; its kid."""
        kid = fmt.key_id(key)
        with self._lock:
            self._refresh()
            entry = self._channels.setdefault(channel, {"current": kid, "keys": {}})
            entry["keys"][kid], entry["current"] = fmt.b64(key), kid
            self._save()
        return kid

    def _save(self) -> None:
        """Atomically, readable by its owner alone."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as handle:
            json.dump({"version": 1, "channels": self._channels}, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, 0o600)
        os.replace(partial, self.path)
        self._stamp = None


def link(base_url: str, channel: str, key: bytes) -> str:
    """A join link for the dashboard of the relay at ``base_url`` (``parley join`` takes it too)."""
    return f"{base_url.rstrip('/')}/dashboard#channel={quote(channel, safe='~:+')}&k={fmt.b64(key)}"


def parse_link(text: str) -> tuple[str | None, str, bytes]:
    """A join link's relay URL (None for ``parley://``: use your own), channel and key."""
    parts = urlsplit(text.strip())
    fragment = parse_qs(parts.fragment)
    key_text = fragment.get("k", [""])[0]
    if parts.scheme == "parley":
        base, channel = None, unquote(parts.path.strip("/"))
    elif parts.scheme in ("http", "https"):
        base = f"{parts.scheme}://{parts.netloc}{parts.path.removesuffix('/dashboard')}"
        channel = fragment.get("channel", [""])[0]
    else:
        raise SealError("bad_link", "a join link starts with http://, https:// or parley://")
    if not channel or not _KEY_RE.fullmatch(key_text):
        raise SealError("bad_link", "the join link lacks its channel or its key (the part after '#'); copy it whole")
    return base, channel, fmt.unb64(key_text)


def link_for(keyring: Keyring, base_url: str, channel: str) -> str:
    """The join link of a sealed channel whose key ``keyring`` holds."""
    key = keyring.current(channel)
    if key is None:
        raise SealError("missing_key", f"your keyring ({keyring.path}) holds no key for '{channel}'")
    return link(base_url, channel, key)


def take_link(keyring: Keyring, text: str, *, rotate: bool = False) -> str:
    """Keep the key a join link carries; the channel it names.

    A link for a channel whose keys the keyring holds, carrying a key it does not hold, would replace the key
    new messages are sealed with: anyone who can send a link could otherwise re-key a member. That takes
    ``rotate`` (the member confirms that the channel's key really was rotated)."""
    _, channel, key = parse_link(text)
    held = keyring.keys(channel)
    if fmt.key_id(key) in held:
        return channel
    if held and not rotate:
        raise SealError(
            "key_differs",
            f"your keyring already holds a key for '{channel}' and this link carries another one; if a member"
            " really rotated the channel's key, join it again with --rotate (rotate=True); otherwise the link"
            " may be forged",
        )
    keyring.add(channel, key)
    return channel
