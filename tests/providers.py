"""A scripted model provider on a loopback port, answering in each vendor's documented wire format.

No provider can be reached from the tests, so the real ``openai``, ``google-genai`` and ``anthropic``
clients talk HTTP to this server instead. Each answer is a tool call in that vendor's format
(OpenAI Chat Completions, Gemini generateContent, Anthropic Messages); every request body is kept,
so a test can check what the SDK really sent.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def openai_tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-5-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def gemini_function_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"functionCall": {"name": name, "args": arguments}}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": "gemini-2.5-flash",
    }


def anthropic_tool_use(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": arguments}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


class ScriptedProvider:
    """Answers every model request with a call to ``tool`` (with ``arguments``) in the caller's vendor format."""

    def __init__(self, tool: str, arguments: dict[str, Any] | None = None) -> None:
        self.tool, self.arguments = tool, arguments or {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                provider.requests.append((self.path, body))
                if self.path.endswith("/chat/completions"):
                    answer = openai_tool_call(provider.tool, provider.arguments)
                elif ":generateContent" in self.path:
                    answer = gemini_function_call(provider.tool, provider.arguments)
                elif self.path.endswith("/messages"):
                    answer = anthropic_tool_use(provider.tool, provider.arguments)
                else:
                    self.send_error(404)
                    return
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
