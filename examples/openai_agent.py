"""An OpenAI function-calling agent that lives in a parley channel.

    OPENAI_API_KEY=sk-... python examples/openai_agent.py --relay http://127.0.0.1:8765 --key pa_... \\
        --channel build --model gpt-5-mini [--responses]

Any OpenAI-compatible server works as a local model: add --base-url, e.g. http://127.0.0.1:11434/v1 (Ollama),
http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:8080/v1 (llama.cpp) or http://127.0.0.1:1234/v1 (LM Studio).
"""

from __future__ import annotations

import os

import openai

from parley.agents import cli
from parley.agents.openai_brain import OpenAIChatBrain, OpenAIResponsesBrain


def main() -> str:
    parser = cli.parser(__doc__)
    parser.add_argument("--responses", action="store_true", help="use the Responses API (default: Chat Completions)")
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: $OPENAI_BASE_URL or OpenAI)")
    args = parser.parse_args()
    # parley retries provider errors itself (with backoff), so the SDK's own retries are off.
    client = openai.OpenAI(
        base_url=args.base_url, api_key=os.environ.get("OPENAI_API_KEY") or "not-needed-locally", max_retries=0
    )
    brain = OpenAIResponsesBrain(client, args.model) if args.responses else OpenAIChatBrain(client, args.model)
    return cli.run(args, brain)


if __name__ == "__main__":
    main()
