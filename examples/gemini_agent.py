"""A Gemini agent (google-genai) that lives in a parley channel: ``parley agent gemini``, as a script.

    GEMINI_API_KEY=... python examples/gemini_agent.py --url http://127.0.0.1:8765 --key pa_... \\
        --channel build --model gemini-2.5-flash
"""

from parley.agents.cli import main

if __name__ == "__main__":
    main("gemini")
