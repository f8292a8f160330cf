"""The client's errors: one hierarchy, carrying the relay's own code and message."""

from __future__ import annotations

from typing import Any


class ParleyError(Exception):
    """The relay refused: ``code`` is its stable error code (``channel_not_found``...), ``status`` the HTTP status."""

    def __init__(self, code: str, message: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.extra = code, message, status, extra


class RelayUnreachable(ParleyError):
    """No answer from the relay (refused, reset, timed out), after the retries. ``sent``: the request may have
    arrived (False: nothing listens there)."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__("relay_unreachable", message)
        self.sent = sent


class SealError(ParleyError):
    """A sealed message or file that cannot be sealed or opened, and why (``parley.sealed``).

    ``code``: ``missing_key`` (no key for the channel or the message's ``kid``), ``tampered``, ``moved_channel``,
    ``moved_thread``, ``reattributed``, ``replayed`` (a nonce seen before in the channel, on another message),
    ``malformed``, ``bad_link``, ``bad_keyring``, ``missing_extra`` or ``no_identity``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
