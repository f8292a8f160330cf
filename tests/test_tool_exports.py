"""Every export obeys its vendor's rules, checked with the vendor SDK's own types where they exist."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import TypeAdapter

from parley.cli import main
from parley.tool_definitions import (
    FORMATS,
    PREFIX,
    TOOLS,
    export,
    json_schema,
    load,
    openai_tool_violations,
    strict_violations,
)
from parley.tool_definitions.exporters import gemini_schema, strict_schema


def test_committed_exports_and_readme_table_are_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "export", "--check"]) == 0
    for name in FORMATS:
        assert load(name) == export(name)


def test_export_command_prints_and_writes(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "export", "--format", "anthropic"]) == 0
    assert json.loads(capsys.readouterr().out) == export("anthropic")
    out = tmp_path / "tools.json"
    assert main(["tools", "export", "--format", "mcp", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == export("mcp")
    assert main(["tools", "export"]) == 1


def test_names_are_snake_case_and_prefixed_for_vendors() -> None:
    for tool in TOOLS:
        assert tool.name.replace("_", "").isalnum() and tool.name.islower()
    for name in ("openai-chat", "openai-responses", "gemini", "anthropic"):
        names = [t.get("function", t)["name"] for t in export(name)]
        assert names == [PREFIX + t.name for t in TOOLS]
    assert [t["name"] for t in export("mcp")] == [t.name for t in TOOLS]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_schemas_are_valid_json_schema(tool: Any) -> None:
    for schema in (json_schema(tool), strict_schema(tool), gemini_schema(tool)):
        jsonschema.Draft202012Validator.check_schema(schema)


def test_openai_exports_are_strict_and_accepted_by_the_sdk_types() -> None:
    from openai.types.chat import ChatCompletionFunctionToolParam
    from openai.types.responses import FunctionToolParam

    chat, responses = export("openai-chat"), export("openai-responses")
    for tool in chat + responses:
        assert openai_tool_violations(tool) == []
    chat_type, responses_type = TypeAdapter(ChatCompletionFunctionToolParam), TypeAdapter(FunctionToolParam)
    for tool in chat:
        chat_type.validate_python(tool, strict=True)
    for tool in responses:
        responses_type.validate_python(tool, strict=True)


def test_gemini_export_is_accepted_by_google_genai() -> None:
    from google.genai import types

    declarations = [types.FunctionDeclaration.model_validate(d) for d in export("gemini")]
    types.Tool(function_declarations=declarations)
    text = json.dumps(export("gemini"))
    for forbidden in ("additionalProperties", "$schema", "const", '"null"'):
        assert forbidden not in text
    for declaration in export("gemini"):
        for prop in declaration.get("parameters", {}).get("properties", {}).values():
            if "enum" in prop:
                assert prop["type"] == "string"


def test_anthropic_export_is_accepted_by_the_sdk_types() -> None:
    from anthropic.types import ToolParam

    adapter = TypeAdapter(ToolParam)
    for tool in export("anthropic"):
        adapter.validate_python(tool)
        assert tool["input_schema"]["type"] == "object" and "anyOf" not in tool["input_schema"]


def test_mcp_export_is_accepted_by_the_mcp_tool_model() -> None:
    from mcp.types import Tool as MCPTool

    for tool in export("mcp"):
        parsed = MCPTool.model_validate(tool)
        assert parsed.model_dump(by_alias=True, exclude_none=True) == tool  # nothing dropped or renamed


@pytest.mark.parametrize(
    ("schema", "path", "problem"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, "$", "additionalProperties"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": [], "additionalProperties": False},
            "$",
            "every property must be required (missing a)",
        ),
        (
            {
                "anyOf": [{"type": "object"}],
                "type": "object",
                "properties": {},
                "required": [],
                "additionalProperties": False,
            },
            "$",
            "anyOf",
        ),
        ({"type": "string"}, "$", "the root must be an object"),
        (
            {
                "type": "object",
                "properties": {"meta": {"type": "object"}},
                "required": ["meta"],
                "additionalProperties": False,
            },
            "$.properties.meta",
            "no free-form objects",
        ),
        (
            {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 5}}},
                "required": ["tags"],
                "additionalProperties": False,
            },
            "$.properties.tags.items",
            "'maxLength' is not supported",
        ),
        (
            {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1}},
                "required": ["n"],
                "additionalProperties": False,
            },
            "$.properties.n",
            "'minimum' is not supported",
        ),
    ],
)
def test_strict_checker_names_the_path_of_each_violation(schema: dict[str, Any], path: str, problem: str) -> None:
    problems = strict_violations(schema)
    assert any(p.startswith(f"{path}:") and problem in p for p in problems), problems


def test_strict_checker_flags_bad_names_and_missing_strict() -> None:
    problems = openai_tool_violations(
        {"type": "function", "function": {"name": "bad name!", "parameters": {"type": "object"}}}
    )
    assert any("does not match" in p for p in problems)
    assert any("strict must be true" in p for p in problems)


def test_export_sizes_stay_small() -> None:
    """Models pay for every token of tool definitions; a budget keeps descriptions tight."""
    for name in FORMATS:
        assert len(json.dumps(export(name), separators=(",", ":"))) < 6_000, name
