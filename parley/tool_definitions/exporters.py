"""Generate each vendor's tool JSON from the catalogue, obeying that vendor's schema rules.

- ``openai-chat`` / ``openai-responses``: strict; every object closed, every property required,
  optional ones nullable; bounds moved into the description (strict mode rejects them).
- ``gemini``: ``FunctionDeclaration`` dicts; OpenAPI-subset schema, optional means "not required".
- ``anthropic``: ``{name, description, input_schema}``; plain JSON Schema with its bounds.
- ``mcp``: ``{name, description, inputSchema, annotations}``; names without the vendor prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from parley.tool_definitions.catalog import TOOLS
from parley.tool_definitions.spec import Param, Tool

GENERATED = Path(__file__).parent / "generated"


def _property(p: Param, *, bounds: bool) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": p.type}
    if p.items is not None:
        prop["items"] = {"type": p.items}
    if p.enum is not None:
        prop["enum"] = list(p.enum)
    if bounds:
        prop["description"] = p.description
        for key, value in (
            ("minimum", p.minimum),
            ("maximum", p.maximum),
            ("maxLength", p.max_length),
            ("minItems", p.min_items),
            ("maxItems", p.max_items),
        ):
            if value is not None:
                prop[key] = value
    else:
        prop["description"] = p.description + p.bounds_text()
    return prop


def json_schema(tool: Tool) -> dict[str, Any]:
    """The canonical JSON Schema of a tool's arguments (Anthropic and MCP use it as is)."""
    return {
        "type": "object",
        "properties": {p.name: _property(p, bounds=True) for p in tool.params},
        "required": [p.name for p in tool.params if p.required],
        "additionalProperties": False,
    }


def strict_schema(tool: Tool) -> dict[str, Any]:
    """OpenAI strict mode: all properties required, optional ones accept null, no bound keywords."""
    properties = {}
    for p in tool.params:
        prop = _property(p, bounds=False)
        if not p.required:
            prop["type"] = [p.type, "null"]
            if p.enum is not None:
                prop["enum"] = [*p.enum, None]
        properties[p.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": [p.name for p in tool.params],
        "additionalProperties": False,
    }


def gemini_schema(tool: Tool) -> dict[str, Any]:
    """Gemini's OpenAPI subset: no additionalProperties; optional means absent from required."""
    properties = {p.name: _property(p, bounds=True) for p in tool.params}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.name for p in tool.params if p.required]
    if required:
        schema["required"] = required
    return schema


def openai_chat(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": t.exported_name,
                "description": t.description,
                "parameters": strict_schema(t),
                "strict": True,
            },
        }
        for t in tools
    ]


def openai_responses(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": t.exported_name,
            "description": t.description,
            "parameters": strict_schema(t),
            "strict": True,
        }
        for t in tools
    ]


def gemini(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """Function declarations; a tool with no parameters has no ``parameters`` (Gemini rejects empty objects)."""
    declarations = []
    for t in tools:
        declaration: dict[str, Any] = {"name": t.exported_name, "description": t.description}
        if t.params:
            declaration["parameters"] = gemini_schema(t)
        declarations.append(declaration)
    return declarations


def anthropic(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    return [{"name": t.exported_name, "description": t.description, "input_schema": json_schema(t)} for t in tools]


def mcp(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "description": t.description,
            "inputSchema": json_schema(t),
            "annotations": {"readOnlyHint": t.read_only},
        }
        for t in tools
    ]


FORMATS: dict[str, Callable[[Iterable[Tool]], list[dict[str, Any]]]] = {
    "openai-chat": openai_chat,
    "openai-responses": openai_responses,
    "gemini": gemini,
    "anthropic": anthropic,
    "mcp": mcp,
}


def export(format: str, tools: Iterable[Tool] = TOOLS) -> list[dict[str, Any]]:
    """The tool definitions for one vendor format, ready to pass to its SDK."""
    try:
        exporter = FORMATS[format]
    except KeyError:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}") from None
    return exporter(tools)


def render(format: str) -> str:
    """The committed file's text for one format."""
    return json.dumps(export(format), indent=2, ensure_ascii=False) + "\n"


def generated_path(format: str) -> Path:
    return GENERATED / f"{format}.json"


def load(format: str) -> list[dict[str, Any]]:
    """The committed export (no generation at run time; works wherever parley is installed)."""
    data: list[dict[str, Any]] = json.loads(generated_path(format).read_text())
    return data
