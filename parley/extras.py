"""Install what you use: each part that needs more than the standard library says which extra brings it."""

from __future__ import annotations


class MissingExtra(ImportError):
    """A part of parley was used without the extra that installs what it needs."""


def missing(extra: str, what: str, cause: ImportError) -> MissingExtra:
    """The error to raise when importing ``what`` failed for want of ``extra``."""
    module = cause.name or str(cause)
    return MissingExtra(f"{what} needs {module}: install it with  pip install 'parley-relay[{extra}]'")
