"""What really differs between SQLite and PostgreSQL SQL, side by side; every other statement is shared.

The operations (``sql``) write SQL that both databases accept: ``:name`` parameters, ``NOT flag``
for booleans, ``INSERT ... RETURNING``, ``ON CONFLICT``. What is left is here: how a list travels
as a parameter (and is stored), how JSON is stored, and the name of the two-argument maximum.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Dialect:
    name: str
    #: SQL that is true when ``column`` is one of the values of the list parameter ``param``.
    in_list: Callable[[str, str], str]
    #: A list of strings or ints as a parameter (and as a stored list column, e.g. a key's channels).
    to_list: Callable[[Iterable[Any]], Any]
    from_list: Callable[[Any], tuple[str, ...]]
    #: A JSON object as stored, and back.
    to_json: Callable[[dict[str, Any]], Any]
    from_json: Callable[[Any], dict[str, Any]]
    #: The larger of two values.
    greatest: str


def _json_text(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


SQLITE = Dialect(
    name="sqlite",
    in_list=lambda column, param: f"{column} IN (SELECT value FROM json_each(:{param}))",
    to_list=lambda values: json.dumps(list(values)),
    from_list=lambda stored: tuple(json.loads(stored)),
    to_json=_json_text,
    from_json=json.loads,
    greatest="max",
)

# PostgreSQL adapts lists to arrays, and dicts to jsonb (the engine registers that dumper).
POSTGRES = Dialect(
    name="postgresql",
    in_list=lambda column, param: f"{column} = ANY(:{param})",
    to_list=list,
    from_list=tuple,
    to_json=lambda value: value,
    from_json=lambda value: dict(value),
    greatest="greatest",
)
