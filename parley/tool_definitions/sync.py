"""Keep the committed exports and the README's tool table in step with the catalogue."""

from __future__ import annotations

import re
from pathlib import Path

from parley.tool_definitions.catalog import TOOLS
from parley.tool_definitions.exporters import FORMATS, generated_path, render

README = Path(__file__).resolve().parents[2] / "README.md"
_TABLE_RE = re.compile(r"(<!-- tools:start -->\n).*?(<!-- tools:end -->)", re.DOTALL)


def tool_table() -> str:
    rows = ["| tool | what it does | arguments (* required) |", "|---|---|---|"]
    for tool in TOOLS:
        args = ", ".join(f"`{p.name}`{'*' if p.required else ''}" for p in tool.params) or "none"
        rows.append(f"| `{tool.name}` | {tool.description} | {args} |")
    return "\n".join(rows) + "\n"


def expected() -> dict[Path, str]:
    """Every generated file and what it must contain."""
    files = {generated_path(name): render(name) for name in FORMATS}
    if README.exists():
        text = README.read_text()
        if _TABLE_RE.search(text):
            files[README] = _TABLE_RE.sub(lambda m: m.group(1) + tool_table() + m.group(2), text)
    return files


def stale() -> list[Path]:
    return [path for path, text in expected().items() if not path.exists() or path.read_text() != text]


def update() -> list[Path]:
    changed = stale()
    for path, text in expected().items():
        if path in changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return changed
