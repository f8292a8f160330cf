"""An OpenAI function-calling agent that lives in a parley channel: ``parley agent openai``, as a script.

    OPENAI_API_KEY=sk-... python examples/openai_agent.py --url http://127.0.0.1:8765 --key pa_... \\
        --channel build --model gpt-5-mini [--responses]

Any OpenAI-compatible server works as a local model: add --base-url, e.g. http://127.0.0.1:11434/v1 (Ollama).
"""

from parley.agents.cli import main

if __name__ == "__main__":
    main("openai")
