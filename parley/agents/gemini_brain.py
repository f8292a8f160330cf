"""The Gemini adapter (google-genai): function declarations from the Gemini export, results sent back
as FunctionResponse parts, automatic function calling off (parley's executor runs the tools)."""

from __future__ import annotations

import functools
from typing import Any

from parley.extras import missing

try:
    import httpx
    from google import genai
    from google.genai import errors, types
except ImportError as exc:
    raise missing("gemini", "the Gemini agents", exc) from exc

from parley.agents.brain import ProviderRetry, ToolRunner, Turn
from parley.client.retry import parse_retry_after
from parley.tool_definitions import load


def gemini_client(base_url: str | None) -> genai.Client:
    """A google-genai client, for Google's API or another endpoint."""
    return genai.Client(http_options=types.HttpOptions(base_url=base_url) if base_url else None)


def classify_gemini(exc: BaseException) -> float | None:
    if isinstance(exc, httpx.TimeoutException | httpx.TransportError):
        return 0.0
    if isinstance(exc, errors.APIError) and (exc.code == 429 or exc.code >= 500):
        headers = getattr(exc.response, "headers", None) or {}
        return parse_retry_after(headers.get("retry-after")) or 0.0
    return None


class GeminiBrain:
    vendor = "gemini"

    def __init__(self, client: genai.Client, model: str, *, retry: ProviderRetry | None = None) -> None:
        self.client, self.model = client, model
        self.retry = retry or ProviderRetry(classify_gemini)
        self.tools = [types.Tool(function_declarations=[types.FunctionDeclaration(**d) for d in load("gemini")])]

    def check(self) -> None:
        self.retry(functools.partial(self.client.models.get, model=self.model))

    def _config(self, system: str, last: bool) -> types.GenerateContentConfig:
        mode = types.FunctionCallingConfigMode.NONE if last else types.FunctionCallingConfigMode.AUTO
        return types.GenerateContentConfig(
            system_instruction=system,
            tools=self.tools,  # type: ignore[arg-type]
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode=mode)),
        )

    def turn(self, system: str, prompt: str, run_tool: ToolRunner, max_rounds: int) -> Turn:
        contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=prompt)])]
        turn = Turn("")
        for round_ in range(max_rounds + 1):
            last = round_ == max_rounds
            config = self._config(system, last)
            generate = functools.partial(
                self.client.models.generate_content, model=self.model, contents=contents, config=config
            )
            response = self.retry(generate)
            turn.calls += 1
            usage = response.usage_metadata
            turn.tokens += (usage.total_token_count or 0) if usage else 0
            calls = response.function_calls or []
            if last or not calls:
                turn.text = _text(response)
                return turn
            contents.append(response.candidates[0].content)  # type: ignore[index]
            parts = []
            for call in calls:
                name = call.name or ""
                turn.tool_calls.append(name)
                result = run_tool(name, dict(call.args or {}))
                parts.append(types.Part.from_function_response(name=name, response={"result": result}))
            contents.append(types.Content(role="user", parts=parts))
        raise AssertionError("unreachable")


def _text(response: types.GenerateContentResponse) -> str:
    """The answer's text parts (``response.text`` warns when other parts are present)."""
    content = response.candidates[0].content if response.candidates else None
    return "".join(part.text for part in (content.parts or []) if part.text) if content else ""
