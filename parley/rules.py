"""What text means, to the relay and to its clients: channel names and types, @mentions, durations, file names
and types, search syntax and ranking."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from parley import limits
from parley.limits import DM_PREFIX, PRIVATE_SEPARATOR, is_valid_name

CHANNEL_TYPES = ("project", "technology", "global", "dm")
#: In a channel parameter, ``@bob`` names the caller's direct-message conversation with bob.
DM_WITH = "@"

# "@name" not preceded by a word character, dot, @ or hyphen, so "bob@example.com" is no mention.
_MENTION_RE = re.compile(rf"(?<![\w.@-])@({limits.NAME})(?![a-z0-9-])", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SEARCH_TERM_RE = re.compile(r"\w+", re.UNICODE)
_SEARCH_PART_RE = re.compile(r'-?"[^"]*"|\S+')
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_CONTENT_TYPE_RE = re.compile(rf"{_TOKEN}/{_TOKEN}")


def is_channel_name(name: str) -> bool:
    """A public name, a private ``owner~name``, a DM's ``dm:a+b``, or ``@agent`` (the DM with that agent)."""
    if name.startswith(DM_WITH):
        return is_valid_name(name.removeprefix(DM_WITH))
    if name.startswith(DM_PREFIX):
        return all(map(is_valid_name, dm_members(name)))
    owner, separator, own_name = name.partition(PRIVATE_SEPARATOR)
    return is_valid_name(owner) and (not separator or is_valid_name(own_name))


def resolve_channel(caller: str, name: str) -> str:
    """``@bob`` is the caller's DM with bob; every other name is itself."""
    return dm_channel_name(caller, name.removeprefix(DM_WITH)) if name.startswith(DM_WITH) else name


def channel_owner(name: str) -> str | None:
    """The agent whose private namespace ``name`` is in, if it is in one."""
    owner, separator, _ = name.partition(PRIVATE_SEPARATOR)
    return owner if separator and not name.startswith(DM_PREFIX) else None


def private_channel_name(owner: str, name: str) -> str:
    """``name`` inside ``owner``'s private namespace (unchanged if it already names one)."""
    return name if channel_owner(name) is not None else f"{owner}{PRIVATE_SEPARATOR}{name}"


def channel_type(name: str) -> str:
    if name.startswith(DM_PREFIX):
        return "dm"
    name = name.rpartition(PRIVATE_SEPARATOR)[2]
    if name.startswith("project-"):
        return "project"
    if name.startswith("tech-"):
        return "technology"
    return "global"


def dm_channel_name(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"{DM_PREFIX}{first}+{second}"


def dm_members(channel: str) -> tuple[str, str]:
    first, _, second = channel.removeprefix(DM_PREFIX).partition("+")
    return first, second


def parse_mentions(content: str) -> list[str]:
    """Distinct ``@names`` in order of first appearance, lowercased."""
    if "@" not in content:
        return []
    seen: dict[str, None] = {}
    for match in _MENTION_RE.finditer(content):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)


def parse_duration(text: str) -> float | None:
    """``"90s"``, ``"10m"``, ``"24h"``, ``"7d"``, ``"2w"`` (a bare number is hours); ``"never"`` is None."""
    if text.strip().lower() in {"never", "none", "0"}:
        return None
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"cannot read {text!r} as a duration; use e.g. 90s, 10m, 24h, 7d, 2w or never")
    amount, unit = float(match.group(1)), (match.group(2) or "h").lower()
    return amount * _DURATION_UNITS[unit]


def fts_query(text: str) -> str:
    """Web-search syntax to an FTS5 query that cannot be a syntax error.

    Words are all required; ``"a phrase"`` matches in order; ``OR`` between terms; ``-word`` excludes.
    Everything else (brackets, stray quotes, FTS5 keywords) is treated as plain words or dropped.
    """
    out: list[str] = []
    for part in _SEARCH_PART_RE.findall(text):
        if part == "OR":
            if out and out[-1] != "OR":
                out.append("OR")
            continue
        if part == "AND":
            continue
        words = _SEARCH_TERM_RE.findall(part)
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if part.startswith("-") and len(part) > 1:
            if out and out[-1] != "OR":
                out.append(f"NOT {term}")
            continue
        out.append(term)
    while out and out[-1] == "OR":
        out.pop()
    return " ".join(out)


def safe_filename(name: str) -> str:
    """A file name fit for a header: control and other invisible characters become ``_``."""
    cleaned = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in name).strip()
    return cleaned or "file"


def file_announcement(filename: str, size: int) -> str:
    """The message that tells a channel of a shared file, when its sharer wrote none."""
    return f"Shared a file: {filename} ({size} bytes)"


def content_type(declared: str | None, filename: str) -> str:
    """The declared ``type/subtype`` (parameters dropped) if well-formed, else a guess from the file name."""
    candidate = (declared or "").split(";")[0].strip().lower()
    if _CONTENT_TYPE_RE.fullmatch(candidate):
        return candidate
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
