"""A scripted model provider on a loopback port, answering in each vendor's documented wire format.

No provider can be reached from the tests, so the real ``openai``, ``google-genai`` and ``anthropic``
clients talk HTTP to this server instead: OpenAI Chat Completions (``/v1/chat/completions``), OpenAI
Responses (``/v1/responses``), Gemini ``models/...:generateContent`` and Anthropic ``/v1/messages``.

``GET`` answers the model lookups the agents make at start (OpenAI ``/v1/models[/id]``, Gemini
``/v1beta/models/id``) for the one model ``scripted``.

The script: call ``tool`` (with ``arguments``) until the conversation holds ``tool_rounds`` tool results,
then answer ``answer`` (with ``answer=None`` it only ever calls the tool). A forced final request
(``tool_choice: none`` / Gemini mode NONE) always gets the answer. ``failures`` are HTTP statuses to
answer first, one per request, in the vendor's error format. Every request body is kept.
"""

from __future__ import annotations

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE_TOKENS = 15


_MODEL = {"id": "scripted", "object": "model", "created": 1_700_000_000, "owned_by": "scripted"}


def _openai_chat(call: tuple[str, dict[str, Any]] | None, answer: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer if call is None else None}
    if call is not None:
        name, arguments = call
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        ]
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "scripted",
        "choices": [{"index": 0, "finish_reason": "tool_calls" if call else "stop", "message": message}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": USAGE_TOKENS},
    }


def _openai_responses(call: tuple[str, dict[str, Any]] | None, answer: str) -> dict[str, Any]:
    if call is not None:
        name, arguments = call
        output: dict[str, Any] = {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": name,
            "arguments": json.dumps(arguments),
            "status": "completed",
        }
    else:
        output = {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": answer, "annotations": []}],
        }
    return {
        "id": "resp_scripted",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "model": "scripted",
        "output": [output],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "total_tokens": USAGE_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def _gemini(call: tuple[str, dict[str, Any]] | None, answer: str) -> dict[str, Any]:
    part = {"functionCall": {"name": call[0], "args": call[1]}} if call else {"text": answer}
    return {
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": USAGE_TOKENS},
        "modelVersion": "scripted",
    }


def _anthropic(call: tuple[str, dict[str, Any]] | None, answer: str) -> dict[str, Any]:
    block = (
        {"type": "tool_use", "id": "toolu_1", "name": call[0], "input": call[1]}
        if call
        else {"type": "text", "text": answer}
    )
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [block],
        "stop_reason": "tool_use" if call else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def _tool_results(path: str, body: dict[str, Any]) -> int:
    if path.endswith("/chat/completions"):
        return sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
    if path.endswith("/responses"):
        return sum(1 for i in body.get("input", []) if isinstance(i, dict) and i.get("type") == "function_call_output")
    if ":generateContent" in path:
        return sum(1 for c in body.get("contents", []) for p in c.get("parts", []) if "functionResponse" in p)
    return sum(
        1
        for m in body.get("messages", [])
        for b in (m.get("content") or [])
        if isinstance(b, dict) and b.get("type") == "tool_result"
    )


def _forced_final(path: str, body: dict[str, Any]) -> bool:
    if ":generateContent" in path:
        return body.get("toolConfig", {}).get("functionCallingConfig", {}).get("mode") == "NONE"
    return body.get("tool_choice") == "none"


def _error(path: str, status: int) -> dict[str, Any]:
    if ":generateContent" in path:
        return {"error": {"code": status, "message": "scripted failure", "status": "UNAVAILABLE"}}
    return {"error": {"message": "scripted failure", "type": "server_error", "code": None}}


class ScriptedProvider:
    def __init__(
        self,
        tool: str = "parley_check_board",
        arguments: dict[str, Any] | None = None,
        *,
        answer: str | None = None,
        tool_rounds: int | None = 1,
    ) -> None:
        self.tool, self.arguments, self.answer, self.tool_rounds = tool, arguments or {}, answer, tool_rounds
        self.failures: collections.deque[int] = collections.deque()
        self.requests: list[tuple[str, dict[str, Any]]] = []  # model calls (POST)
        self.lookups: list[str] = []  # model lookups (GET)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.lookups.append(self.path)
                self._answer(*provider.lookup(self.path))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                provider.requests.append((self.path, body))
                self._answer(*provider.respond(self.path, body))

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def lookup(self, path: str) -> tuple[int, dict[str, Any]]:
        if self.failures:
            status = self.failures.popleft()
            return status, _error(path, status)
        path = path.partition("?")[0]
        if path == "/v1/models":
            return 200, {"object": "list", "data": [_MODEL]}
        if path == "/v1/models/scripted":
            return 200, _MODEL
        if path.endswith("/models/scripted"):
            return 200, {"name": "models/scripted", "displayName": "scripted", "version": "1"}
        if path.startswith("/v1beta"):
            return 404, {"error": {"code": 404, "message": f"{path} is not found", "status": "NOT_FOUND"}}
        return 404, {"error": {"message": f"The model {path.rsplit('/', 1)[-1]} does not exist", "code": None}}

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.failures:
            status = self.failures.popleft()
            return status, _error(path, status)
        done = self.answer is not None and (
            _forced_final(path, body)
            or (self.tool_rounds is not None and _tool_results(path, body) >= self.tool_rounds)
        )
        call = None if done else (self.tool, self.arguments)
        answer = self.answer or ""
        if path.endswith("/chat/completions"):
            return 200, _openai_chat(call, answer)
        if path.endswith("/responses"):
            return 200, _openai_responses(call, answer)
        if ":generateContent" in path:
            return 200, _gemini(call, answer)
        if path.endswith("/messages"):
            return 200, _anthropic(call, answer)
        return 404, {"error": {"message": f"no scripted route for {path}"}}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
