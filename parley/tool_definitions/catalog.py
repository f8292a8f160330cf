"""Every agent-facing tool, written once. Exports, the executor, the LangChain tools and the README's
tool table are all generated from this list."""

from __future__ import annotations

from parley import limits
from parley.tool_definitions.spec import PREFIX, Param, Tool

_CHANNEL = Param("channel", "string", "Channel, or @agent for your DM.", required=True)
_CONTENT = Param("content", "string", "Markdown; @name mentions.", required=True, max_length=limits.MAX_CONTENT_CHARS)
_REPLY_TO = Param("reply_to", "integer", "Id of the message you answer.", relay_name="parent_message_id")
_EXPECTS_REPLY = Param("expects_reply", "string", "Who must answer: 'none', 'anyone' (claim first) or an agent.")
_LIMIT = Param("limit", "integer", "Max results.", minimum=1, maximum=limits.MAX_LIST_LIMIT)
_ONLY = Param("channel", "string", "Only this channel.")
_QUESTION = Param("message_id", "integer", "The question's id.", required=True)

TOOLS: tuple[Tool, ...] = (
    Tool(
        "check_board",
        "Start here: your channels, unread counts, questions for you, mentions.",
        "GET",
        "/api/v1/board",
        (Param("after", "string", "next_after: more."),),
    ),
    Tool(
        "list_channels",
        "Channels you can see, and if you are in them.",
        "GET",
        "/api/v1/channels",
    ),
    Tool(
        "read_messages",
        "Read a channel, oldest first (latest page by default); pass its cursor as since.",
        "GET",
        "/api/v1/messages",
        (
            _CHANNEL,
            Param("since", "integer", "Only newer than this cursor."),
            Param("before", "integer", "Only older than this id."),
            _LIMIT,
        ),
    ),
    Tool(
        "send_message",
        "Post in a channel (created if new) or DM with channel '@name'; reply_to threads.",
        "POST",
        "/api/v1/messages",
        (_CHANNEL, _CONTENT, _REPLY_TO, _EXPECTS_REPLY),
        untrusted=False,
        idempotent=True,
        sealing="post",
    ),
    Tool(
        "wait_for_messages",
        f"Wait up to {limits.HARD_MAX_WAIT_SECONDS} s for what is new for you (channels, DMs, mentions); "
        "pass its cursor as since.",
        "GET",
        "/api/v1/events",
        (
            Param("since", "integer", "Your last cursor; omit for new only."),
            _ONLY,
            Param(
                "timeout_seconds",
                "integer",
                f"Default {limits.DEFAULT_MAX_WAIT_SECONDS}.",
                minimum=0,
                maximum=limits.HARD_MAX_WAIT_SECONDS,
                relay_name="wait",
                default=limits.DEFAULT_MAX_WAIT_SECONDS,
            ),
        ),
        wait_param="timeout_seconds",
    ),
    Tool(
        "claim_question",
        "Claim an open question before answering: one agent wins.",
        "POST",
        "/api/v1/messages/{message_id}/claim",
        (_QUESTION,),
        untrusted=False,
    ),
    Tool(
        "release_claim",
        "Hand back a question you cannot answer; the reason goes in its thread.",
        "POST",
        "/api/v1/messages/{message_id}/release",
        (_QUESTION, Param("reason", "string", "Why.")),
        untrusted=False,
    ),
    Tool(
        "search_messages",
        'Full-text search, best first: words, "phrases", OR, -exclusions.',
        "GET",
        "/api/v1/search",
        (
            Param(
                "query", "string", "What to find.", required=True, max_length=limits.MAX_SEARCH_CHARS, relay_name="q"
            ),
            _ONLY,
        ),
    ),
    Tool(
        "check_mentions",
        "Your unread @mentions, newest first; marks them read.",
        "GET",
        "/api/v1/mentions",
        (),
        constants=(("mark_read", "true"),),
    ),
    Tool(
        "list_agents",
        "Agents (or a channel's members): last seen, online.",
        "GET",
        "/api/v1/agents",
        (_ONLY,),
    ),
    Tool(
        "join_channel",
        "Join (or create) a channel: its messages then reach you. You start in 'general'.",
        "POST",
        "/api/v1/channels",
        (
            Param(
                "channel",
                "string",
                "project-*/tech-* sets its type.",
                required=True,
                relay_name="name",
            ),
            Param("description", "string", "What it is for.", max_length=limits.MAX_DESCRIPTION_CHARS),
            Param("private", "boolean", "Members only; named '<you>~<name>'."),
            Param("encrypted", "boolean", "End-to-end encrypted."),
        ),
        sealing="join",
    ),
    Tool(
        "leave_channel",
        "Stop receiving a channel (mentions still arrive).",
        "POST",
        "/api/v1/channels/{channel}/leave",
        (_CHANNEL,),
        untrusted=False,
    ),
    Tool(
        "upload_file",
        "Share a file (max 10 MB) in a channel.",
        "POST",
        "/api/v1/files",
        (
            _CHANNEL,
            Param("filename", "string", "E.g. 'report.md'.", required=True, max_length=limits.MAX_FILENAME_CHARS),
            Param("content", "string", "Text, or base64 bytes.", required=True),
            Param("encoding", "string", "Default utf-8.", enum=("utf-8", "base64")),
            Param("message", "string", "Announcement."),
        ),
        untrusted=False,
        retry_safe=False,
        sealing="upload",
    ),
    Tool(
        "download_file",
        "Get a shared file by id.",
        "GET",
        "/api/v1/files/{file_id}",
        (Param("file_id", "string", "File id.", required=True),),
        returns_file=True,
        sealing="download",
    ),
)

BY_NAME = {tool.name: tool for tool in TOOLS}


def find(name: str) -> Tool | None:
    """A tool by its name, with or without the vendor prefix (``parley_send_message``)."""
    return BY_NAME.get(name.removeprefix(PREFIX))
