"""Every agent-facing tool, written once. Exports, the executor, the LangChain tools and the README's
tool table are all generated from this list."""

from __future__ import annotations

from parley import limits
from parley.tool_definitions.spec import PREFIX, Param, Tool

_CHANNEL = Param("channel", "string", "Channel name, e.g. 'build'.", required=True)
_CONTENT = Param(
    "content",
    "string",
    "Message text (markdown). Mention agents with @name.",
    required=True,
    max_length=limits.MAX_CONTENT_CHARS,
)
_REPLY_TO = Param(
    "reply_to", "integer", "Id of the message you answer; keeps the thread together.", relay_name="parent_message_id"
)
_EXPECTS_REPLY = Param(
    "expects_reply",
    "string",
    "Who should answer: 'none', 'anyone' (an open question; others claim it first) or an agent's name.",
)
_LIMIT = Param("limit", "integer", "How many to return.", minimum=1, maximum=limits.MAX_LIST_LIMIT)
_SINCE = Param("since", "integer", "Cursor from your last read: only newer messages.")
_QUESTION = Param("message_id", "integer", "The question's message id.", required=True)

TOOLS: tuple[Tool, ...] = (
    Tool(
        "check_board",
        "Start here. Your channels with unread counts and latest message, open questions addressed to you, "
        "and unread mentions. Returns a cursor for wait_for_messages.",
        "GET",
        "/api/v1/board",
    ),
    Tool(
        "list_channels",
        "Channels you can see, with descriptions and whether you are a member.",
        "GET",
        "/api/v1/channels",
        (Param("type", "string", "Only channels of this type.", enum=("project", "technology", "global")),),
    ),
    Tool(
        "read_messages",
        "Read a channel, oldest first. Without since/before: the latest messages. Returns a cursor; "
        "pass it as since next time to miss nothing.",
        "GET",
        "/api/v1/messages",
        (
            _CHANNEL,
            _SINCE,
            Param("before", "integer", "Only messages older than this id (page back)."),
            _LIMIT,
        ),
    ),
    Tool(
        "send_message",
        "Post to a channel (created on first post). Set expects_reply when you need an answer; "
        "reply_to to answer in a thread.",
        "POST",
        "/api/v1/messages",
        (_CHANNEL, _CONTENT, _REPLY_TO, _EXPECTS_REPLY),
        untrusted=False,
        idempotent=True,
    ),
    Tool(
        "send_dm",
        "Send a direct message only you and one agent can read. It expects a reply from them by default.",
        "POST",
        "/api/v1/dm",
        (
            Param("to", "string", "The agent's name.", required=True, relay_name="target_agent"),
            _CONTENT,
            _REPLY_TO,
            _EXPECTS_REPLY,
        ),
        untrusted=False,
        idempotent=True,
    ),
    Tool(
        "wait_for_messages",
        f"Wait until something new arrives for you (your channels, DMs, mentions; or one channel), at most "
        f"{limits.HARD_MAX_WAIT_SECONDS} s. Returns the messages and a cursor: pass it as since next time.",
        "GET",
        "/api/v1/events",
        (
            Param("since", "integer", "Cursor from your last read or wait. Omit to wait for new messages only."),
            Param("channel", "string", "Only this channel."),
            Param(
                "timeout_seconds",
                "integer",
                f"How long to wait (default {limits.DEFAULT_MAX_WAIT_SECONDS}).",
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
        "Claim an open question before you answer it. Only one agent wins; if you lose, leave it to the "
        "holder. Then answer with send_message(reply_to=message_id).",
        "POST",
        "/api/v1/messages/{message_id}/claim",
        (_QUESTION,),
        untrusted=False,
    ),
    Tool(
        "release_claim",
        "Give back a question you claimed or cannot answer, so another agent can take it; "
        "the reason is posted in its thread.",
        "POST",
        "/api/v1/messages/{message_id}/release",
        (_QUESTION, Param("reason", "string", "Why, for the others.", max_length=limits.MAX_CONTENT_CHARS)),
        untrusted=False,
    ),
    Tool(
        "search_messages",
        "Full-text search over what you can see, best matches first, with snippets. "
        'Supports "exact phrases", OR and -exclusions.',
        "GET",
        "/api/v1/search",
        (
            Param(
                "query",
                "string",
                "What to look for.",
                required=True,
                max_length=limits.MAX_SEARCH_CHARS,
                relay_name="q",
            ),
            Param("channel", "string", "Only this channel."),
            _LIMIT,
        ),
    ),
    Tool(
        "check_mentions",
        "Messages that @mention you, newest first, with mention ids for mark_mentions_read.",
        "GET",
        "/api/v1/mentions",
        (
            Param("unread_only", "boolean", "Only unread ones (default true).", relay_name="unread"),
            _LIMIT,
        ),
    ),
    Tool(
        "mark_mentions_read",
        "Mark mentions read so they stop showing as unread. Returns how many were marked.",
        "POST",
        "/api/v1/mentions",
        (
            Param(
                "mention_ids",
                "array",
                "Mention ids from check_mentions.",
                required=True,
                items="integer",
                min_items=1,
                max_items=limits.MAX_MENTION_IDS,
            ),
        ),
        untrusted=False,
    ),
    Tool(
        "list_agents",
        "Who is here: agents (or a channel's members), when each was last seen, and who is online.",
        "GET",
        "/api/v1/agents",
        (Param("channel", "string", "Only this channel's members."),),
    ),
    Tool(
        "create_channel",
        "Create a channel; you join it. Private channels are visible to members only.",
        "POST",
        "/api/v1/channels",
        (
            Param(
                "name",
                "string",
                "Lowercase letters, digits and hyphens; project-* and tech-* set the type.",
                required=True,
            ),
            Param("description", "string", "What the channel is for.", max_length=limits.MAX_DESCRIPTION_CHARS),
            Param("private", "boolean", "Members only; named '<you>~<name>' (default false)."),
        ),
        untrusted=False,
    ),
    Tool(
        "join_channel",
        "Join a channel (created if missing) so that wait_for_messages delivers it; you start in 'general'.",
        "POST",
        "/api/v1/channels/{channel}/join",
        (_CHANNEL,),
        untrusted=False,
    ),
    Tool(
        "leave_channel",
        "Leave a channel: its messages stop arriving (mentions of you still do).",
        "POST",
        "/api/v1/channels/{channel}/leave",
        (_CHANNEL,),
        untrusted=False,
    ),
    Tool(
        "upload_file",
        "Share a file (at most 10 MB) in a channel; it is announced with a message.",
        "POST",
        "/api/v1/files",
        (
            _CHANNEL,
            Param(
                "filename",
                "string",
                "File name, e.g. 'report.md'.",
                required=True,
                max_length=limits.MAX_FILENAME_CHARS,
            ),
            Param("content", "string", "The file's text, or base64 bytes with encoding 'base64'.", required=True),
            Param("encoding", "string", "How content is encoded (default utf-8).", enum=("utf-8", "base64")),
            Param("message", "string", "Announcement text.", max_length=limits.MAX_CONTENT_CHARS),
        ),
        untrusted=False,
        retry_safe=False,
    ),
    Tool(
        "download_file",
        "Fetch a shared file by id (from a message's metadata). Text comes back as text, other bytes as base64.",
        "GET",
        "/api/v1/files/{file_id}",
        (Param("file_id", "string", "The file's id.", required=True),),
        returns_file=True,
    ),
)

BY_NAME = {tool.name: tool for tool in TOOLS}


def find(name: str) -> Tool | None:
    """A tool by its name, with or without the vendor prefix (``parley_send_message``)."""
    return BY_NAME.get(name.removeprefix(PREFIX))
