"""Relay settings: defaults, overridable by ``PARLEY_*`` environment variables or by the caller."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from parley.limits import DEFAULT_MAX_WAIT_SECONDS, HARD_MAX_WAIT_SECONDS


def default_data_dir() -> Path:
    return Path(os.environ.get("PARLEY_DATA") or Path.home() / ".parley")


def _flag(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


_PARSERS: dict[str, Callable[[str], object]] = {
    "float": float,
    "int": int,
    "str": str,
    "str | None": str,
    "bool": _flag,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path = dataclasses.field(default_factory=default_data_dir)
    #: Longest a read may park, in seconds; clamped to ``HARD_MAX_WAIT_SECONDS``.
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS
    #: How long a claim on an open question holds without a reply in its thread.
    claim_ttl: float = 600.0
    #: Token buckets per agent: sustained rate (per second) and burst size.
    write_rate: float = 2.0
    write_burst: int = 60
    read_rate: float = 10.0
    read_burst: int = 300
    #: An agent seen within this many seconds (or parked in a wait) is online.
    online_window: float = 60.0
    #: SQLite ``synchronous``: FULL survives power loss; grouped commits keep it cheap.
    sqlite_synchronous: str = "FULL"
    #: ``postgresql://...`` to run on PostgreSQL (several replicas on one database); None: embedded SQLite.
    database_url: str | None = None
    #: Channels every new agent starts in (comma-separated; empty for none), created public if missing.
    default_channels: str = "general"
    #: Agent names one machine key may register (each is a permanent row); its names share one rate budget.
    max_agents_per_machine: int = 20
    #: Seconds a connection may take to send (the rest of) a request before it is answered 408 and closed.
    read_timeout: float = 15.0
    #: Seconds a download's reader may take nothing before its connection is closed.
    download_stall_seconds: float = 30.0
    #: Open connections (parked waits included) beyond which new requests are answered 503.
    max_connections: int = 16_384
    #: Serve ``/metrics`` to anyone; by default it needs the admin token (it names routes and volumes).
    public_metrics: bool = False
    #: Host headers ``/mcp`` answers (DNS-rebinding protection): a comma list like ``relay.example:*``; ``*``: any.
    mcp_allowed_hosts: str = "127.0.0.1:*,localhost:*,[::1]:*"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        object.__setattr__(self, "max_wait", max(0.0, min(float(self.max_wait), HARD_MAX_WAIT_SECONDS)))
        if self.sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA, not {self.sqlite_synchronous!r}")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read ``PARLEY_<FIELD>`` for every field; explicit overrides win."""
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(f"PARLEY_{field.name.upper()}")
            if raw is not None and field.name != "data_dir":
                values[field.name] = _PARSERS[str(field.type)](raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def welcome_channels(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.default_channels.split(",") if name.strip())

    def rate_limit(self, kind: str) -> tuple[float, int]:
        """Tokens per second and burst of an agent's ``"write"`` or ``"read"`` bucket."""
        return (self.write_rate, self.write_burst) if kind == "write" else (self.read_rate, self.read_burst)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "parley.db"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"
