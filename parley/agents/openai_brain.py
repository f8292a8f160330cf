"""OpenAI adapters: Chat Completions and the Responses API, with the strict exports as tools.

Works with any OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) through the client's base_url.
"""

from __future__ import annotations

import functools
from typing import Any

from parley.extras import missing

try:
    import openai
    from openai.types.chat import ChatCompletionMessageFunctionToolCall
except ImportError as exc:
    raise missing("openai", "the OpenAI agents", exc) from exc

from parley.agents.brain import ProviderRetry, ToolRunner, Turn
from parley.client.retry import parse_retry_after
from parley.tool_definitions import load


def openai_client(base_url: str | None, api_key: str) -> openai.OpenAI:
    """An OpenAI client (or one of a compatible server's) with the SDK's own retries off: parley retries
    provider errors itself, with backoff."""
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)


def classify_openai(exc: BaseException) -> float | None:
    """Seconds to wait before retrying (0.0: our backoff decides), or None when retrying cannot help."""
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return 0.0
    if isinstance(exc, openai.APIStatusError) and (exc.status_code in (408, 409, 429) or exc.status_code >= 500):
        return parse_retry_after(exc.response.headers.get("retry-after")) or 0.0
    return None


def check_model(client: openai.OpenAI, model: str) -> None:
    """The model exists on this server: ``GET /models/{model}``, or in ``GET /models`` where a compatible
    server (vLLM, llama.cpp) only lists them."""
    try:
        client.models.retrieve(model)
    except openai.NotFoundError:
        listed = [m.id for m in client.models.list()]
        if model not in listed:
            raise LookupError(f"no model '{model}' here; it serves {', '.join(listed[:10]) or 'none'}") from None


class OpenAIChatBrain:
    vendor = "openai"

    def __init__(self, client: openai.OpenAI, model: str, *, retry: ProviderRetry | None = None) -> None:
        self.client, self.model = client, model
        self.retry = retry or ProviderRetry(classify_openai)
        self.tools: list[Any] = load("openai-chat")

    def check(self) -> None:
        self.retry(functools.partial(check_model, self.client, self.model))

    def turn(self, system: str, prompt: str, run_tool: ToolRunner, max_rounds: int) -> Turn:
        messages: list[Any] = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        turn = Turn("")
        for round_ in range(max_rounds + 1):
            last = round_ == max_rounds  # out of tool rounds: the model must answer now
            create = functools.partial(
                self.client.chat.completions.create,
                model=self.model,
                messages=messages,
                tools=self.tools,
                tool_choice="none" if last else "auto",
            )
            response = self.retry(create)
            turn.calls += 1
            turn.tokens += response.usage.total_tokens if response.usage else 0
            message = response.choices[0].message
            calls = [c for c in message.tool_calls or [] if isinstance(c, ChatCompletionMessageFunctionToolCall)]
            if last or not calls:
                turn.text = message.content or ""
                return turn
            messages.append(message.model_dump(exclude_none=True))
            for call in calls:
                turn.tool_calls.append(call.function.name)
                result = run_tool(call.function.name, call.function.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        raise AssertionError("unreachable")


class OpenAIResponsesBrain:
    vendor = "openai-responses"

    def __init__(self, client: openai.OpenAI, model: str, *, retry: ProviderRetry | None = None) -> None:
        self.client, self.model = client, model
        self.retry = retry or ProviderRetry(classify_openai)
        self.tools: list[Any] = load("openai-responses")

    def check(self) -> None:
        self.retry(functools.partial(check_model, self.client, self.model))

    def turn(self, system: str, prompt: str, run_tool: ToolRunner, max_rounds: int) -> Turn:
        items: list[Any] = [{"role": "user", "content": prompt}]
        turn = Turn("")
        for round_ in range(max_rounds + 1):
            last = round_ == max_rounds
            create = functools.partial(
                self.client.responses.create,
                model=self.model,
                instructions=system,
                input=items,
                tools=self.tools,
                tool_choice="none" if last else "auto",
            )
            response = self.retry(create)
            turn.calls += 1
            turn.tokens += response.usage.total_tokens if response.usage else 0
            calls = [item for item in response.output if item.type == "function_call"]
            if last or not calls:
                turn.text = response.output_text
                return turn
            items += [item.model_dump(exclude_none=True) for item in response.output]
            for call in calls:
                turn.tool_calls.append(call.name)
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": call.call_id,
                        "output": run_tool(call.name, call.arguments),
                    }
                )
        raise AssertionError("unreachable")
