"""A walker that checks a schema against OpenAI's strict mode and names the JSON path of each violation."""

from __future__ import annotations

import re
from typing import Any

OPENAI_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

# Keywords strict mode rejects (some only on fine-tuned models; parley avoids them everywhere).
UNSUPPORTED = frozenset(
    {
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "oneOf",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "patternProperties",
        "propertyNames",
        "unevaluatedProperties",
        "const",
        "$schema",
        "default",
    }
)


def strict_violations(schema: Any, path: str = "$") -> list[str]:
    """Every way ``schema`` breaks strict mode, each as ``"<json path>: <problem>"``; [] when strict."""
    if not isinstance(schema, dict):
        return [f"{path}: a schema must be an object"]
    problems = [f"{path}: '{key}' is not supported in strict mode" for key in sorted(UNSUPPORTED & schema.keys())]
    if path == "$":
        if schema.get("type") != "object":
            problems.append("$: the root must be an object")
        if "anyOf" in schema:
            problems.append("$: the root must not be anyOf")
    types = schema.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            problems.append(f"{path}: an object needs declared properties (no free-form objects)")
            properties = {}
        if schema.get("additionalProperties") is not False:
            problems.append(f"{path}: additionalProperties must be false")
        missing = sorted(set(properties) - set(schema.get("required", [])))
        if missing:
            problems.append(f"{path}: every property must be required (missing {', '.join(missing)})")
        for name, sub in properties.items():
            problems += strict_violations(sub, f"{path}.properties.{name}")
    if "items" in schema:
        problems += strict_violations(schema["items"], f"{path}.items")
    for index, option in enumerate(schema.get("anyOf", []) if path != "$" else []):
        problems += strict_violations(option, f"{path}.anyOf[{index}]")
    for name, sub in schema.get("$defs", {}).items():
        problems += strict_violations(sub, f"{path}.$defs.{name}")
    return problems


def openai_tool_violations(tool: dict[str, Any]) -> list[str]:
    """Check one Chat Completions or Responses tool definition: its name, strict flag and schema."""
    function = tool.get("function", tool)
    name = function.get("name", "")
    problems = [] if OPENAI_NAME_RE.match(name) else [f"$.name: '{name}' does not match {OPENAI_NAME_RE.pattern}"]
    if function.get("strict") is not True:
        problems.append(f"{name}: strict must be true")
    return problems + [f"{name}: {p}" for p in strict_violations(function.get("parameters"))]
