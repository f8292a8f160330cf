"""A Gemini agent (google-genai) that lives in a parley channel.

    GEMINI_API_KEY=... python examples/gemini_agent.py --relay http://127.0.0.1:8765 --key pa_... \\
        --channel build --model gemini-2.5-flash
"""

from __future__ import annotations

from google import genai

from parley.agents import cli
from parley.agents.gemini_brain import GeminiBrain


def main() -> str:
    args = cli.parser(__doc__).parse_args()
    return cli.run(args, GeminiBrain(genai.Client(), args.model))


if __name__ == "__main__":
    main()
