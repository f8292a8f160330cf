"""One relay per SQLite data directory: an exclusive lock held for the relay's lifetime.

Two relays on one directory would each trust their own key cache, wake only their own waits and
keep their own rate buckets; the second one refuses to start instead. (Several relays on one
database is what the PostgreSQL store is for.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DataDirectoryInUse(RuntimeError):
    """Another process holds the data directory."""


class DataDirectoryLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "relay.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirectoryInUse(
                f"another parley relay (pid {holder}) is running on the data directory {self.path.parent}; one"
                " data directory serves one relay. Stop it, pick another --data directory, or run several relays"
                " on one PostgreSQL database (--database postgresql://...)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def check(self) -> None:
        """Raise DataDirectoryInUse if a relay holds the directory now."""
        self.acquire()
        self.release()
