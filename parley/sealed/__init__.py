"""Sealed channels: end-to-end encryption the relay only routes.

A channel created with ``encrypted=True`` takes only AES-256-GCM envelopes; its key is made by the client
that creates it, kept in a local keyring (0600) and shared as a join link whose key sits after ``#``. Every
parley client seals and opens transparently when it holds the key (``Sealer``). The formats are in
``envelope`` (standard library: the relay checks shapes with it), the cryptography in ``crypto`` (the
``e2e`` extra). What stays in the clear, and what that reveals, is in docs/security.md.
"""

from parley.client.errors import SealError
from parley.sealed.keyring import Keyring, link, link_for, new_key, parse_link, take_link

__all__ = ["Keyring", "SealError", "link", "link_for", "new_key", "parse_link", "take_link"]
