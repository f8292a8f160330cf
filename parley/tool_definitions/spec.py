"""How a tool is declared, how its arguments are checked, and how a call becomes a relay request.

Standard library only: the zero-dependency executor imports this module.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

from parley.client.calls import Sealing

ParamType = Literal["string", "integer", "boolean", "array"]

#: Vendor exports carry this prefix; MCP (which prefixes by server) does not.
PREFIX = "parley_"
TOOL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_PATH_PARAM_RE = re.compile(r"{(\w+)}")


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    description: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    items: Literal["string", "integer"] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    #: The relay's name for it, when it differs (``reply_to`` -> ``parent_message_id``).
    relay_name: str | None = None
    #: Sent when the model leaves the argument out (documented in the description).
    default: int | None = None

    @property
    def wire_name(self) -> str:
        return self.relay_name or self.name

    def bounds_text(self) -> str:
        """The constraints in words, for exports whose schemas cannot carry them."""
        parts = []
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"{self.minimum}-{self.maximum}")
        elif self.minimum is not None:
            parts.append(f">= {self.minimum}")
        if self.max_length is not None:
            parts.append(f"at most {self.max_length} characters")
        if self.max_items is not None:
            parts.append(f"{self.min_items or 0}-{self.max_items} items")
        return f" ({'; '.join(parts)})" if parts else ""


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    description: str
    method: Literal["GET", "POST"]
    path: str
    params: tuple[Param, ...] = ()
    #: The result holds other agents' words: wrap it in the boundary before a model sees it.
    untrusted: bool = True
    #: A send: the executor adds a client_msg_id so that a retry is stored once.
    idempotent: bool = False
    #: Repeating the call after an unclear failure does no harm (false: an upload could be stored twice).
    retry_safe: bool = True
    #: The name of the parameter that makes the relay hold the request open (seconds).
    wait_param: str | None = None
    #: The relay answers with file bytes rather than JSON.
    returns_file: bool = False
    #: Sent with every call, never chosen by the model (``mark_read=true`` for check_mentions).
    constants: tuple[tuple[str, str], ...] = ()
    #: What sealing may apply to the call in a sealed channel (``parley.sealed.sealer``).
    sealing: Sealing | None = None

    @property
    def exported_name(self) -> str:
        return PREFIX + self.name

    @property
    def read_only(self) -> bool:
        return self.method == "GET"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None


class ArgumentError(ValueError):
    """The model's arguments do not fit the tool; the message says what to change."""


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, list)


def _a(kind: str) -> str:
    return f"{'an' if kind == 'integer' else 'a'} {kind}"


#: Each check: what is wrong with a value of the right type, or None. Run in order, all of them.
_CHECKS: tuple[Callable[[Param, Any], str | None], ...] = (
    lambda p, v: f"must be one of {', '.join(p.enum)}" if p.enum is not None and v not in p.enum else None,
    lambda p, v: f"must be at least {p.minimum}" if p.minimum is not None and v < p.minimum else None,
    lambda p, v: f"must be at most {p.maximum}" if p.maximum is not None and v > p.maximum else None,
    lambda p, v: (
        f"is {len(v)} characters; the limit is {p.max_length}"
        if p.max_length is not None and len(v) > p.max_length
        else None
    ),
    lambda p, v: (
        f"must have {p.min_items or 0}-{p.max_items} items"
        if p.max_items is not None and not (p.min_items or 0) <= len(v) <= p.max_items
        else None
    ),
)


def _problems(p: Param, value: Any) -> list[str]:
    """What is wrong with one given argument (empty: nothing)."""
    if not _type_ok(value, p.type):
        return [f"'{p.name}' must be {_a(p.type)}"]
    found = [f"'{p.name}' {problem}" for check in _CHECKS if (problem := check(p, value)) is not None]
    if p.items is not None and not all(_type_ok(item, p.items) for item in value):
        found.append(f"every item of '{p.name}' must be {_a(p.items)}")
    return found


def check_arguments(tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments without nulls (strict exports send null for 'not given'), or ArgumentError."""
    given = {k: v for k, v in arguments.items() if v is not None}
    problems = [f"unknown argument '{k}'" for k in given if tool.param(k) is None]
    for p in tool.params:
        if p.name in given:
            value = given[p.name]
            if p.type == "integer" and isinstance(value, float) and value.is_integer():
                given[p.name] = int(value)
            problems += _problems(p, given[p.name])
        elif p.required:
            problems.append(f"'{p.name}' is required")
        elif p.default is not None:
            given[p.name] = p.default
    if problems:
        raise ArgumentError("; ".join(problems))
    return given


def build_request(tool: Tool, arguments: Mapping[str, Any]) -> Request:
    """Map checked arguments onto the relay route: path parameters, then query (GET) or JSON body (POST)."""
    remaining = dict(arguments)
    path = _PATH_PARAM_RE.sub(lambda m: quote(str(remaining.pop(m.group(1))), safe=""), tool.path)
    wire = {tool.param(k).wire_name: v for k, v in remaining.items()}  # type: ignore[union-attr]
    wire.update(tool.constants)
    if tool.method == "GET":
        query = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in wire.items()}
        return Request(tool.method, path, query, None)
    return Request(tool.method, path, {}, wire)
