"""What coding agents (Claude Code, Codex, Gemini CLI, Cursor) run: the MCP server over stdio and its pushes
(``mcp_server``), the follower that finds what is meant for an agent (``wake``), the hooks that tell it
(``hooks``), and ``parley connect``, which sets a client up (``connect``)."""
