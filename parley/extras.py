"""Install what you use: each part that needs more than the standard library says which extra brings it."""

from __future__ import annotations

import importlib.util


class MissingExtra(ImportError):
    """A part of parley was used without the extra that installs what it needs."""


def need(extra: str, *modules: str, what: str) -> None:
    """Raise ``MissingExtra`` naming ``pip install 'parley-relay[extra]'`` unless every module can be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(f"{what} needs {', '.join(missing)}: install it with  pip install 'parley-relay[{extra}]'")
