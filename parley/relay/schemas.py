"""Request bodies. Each limit comes from ``parley.limits``; each violation has its own error code."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from parley import limits, rules
from parley.sealed import envelope

#: Error types our validators raise; the HTTP layer uses them as error codes.
CUSTOM_CODES: set[str] = set()


def _fail(code: str, message: str, context: dict[str, Any] | None = None) -> PydanticCustomError:
    CUSTOM_CODES.add(code)
    return PydanticCustomError(code, message, context)


def _content(value: str) -> str:
    value = value.strip()
    if not value:
        raise _fail("content_required", "content is empty; write the message text")
    if len(value) > limits.MAX_CONTENT_CHARS:
        raise _fail(
            "content_too_long",
            "content is {length} characters; the limit is {limit}. Split it into several messages or upload a file",
            {"length": len(value), "limit": limits.MAX_CONTENT_CHARS},
        )
    return value


def _name(value: str) -> str:
    if not limits.is_valid_name(value):
        raise _fail("invalid_name", "'{value}' is not a valid name: " + limits.NAME_RULE, {"value": value})
    return value


def _channel(value: str) -> str:
    if not rules.is_channel_name(value):
        raise _fail(
            "invalid_name",
            "'{value}' is not a valid channel name: " + limits.NAME_RULE + " (a private channel: 'owner~name')",
            {"value": value},
        )
    return value


def _metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > limits.MAX_METADATA_BYTES:
            raise _fail(
                "metadata_too_large",
                "metadata is {size} bytes as JSON; the limit is {limit}",
                {"size": size, "limit": limits.MAX_METADATA_BYTES},
            )
    return value


def _expects_reply(value: str | None) -> str | None:
    if value is None or value in ("none", "anyone"):
        return value
    if not limits.is_valid_name(value):
        raise _fail(
            "invalid_expects_reply",
            "expects_reply must be 'none', 'anyone' or an agent's name, not '{value}'",
            {"value": value},
        )
    return value


def _sealed(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        try:
            envelope.check_envelope(value)
        except envelope.MalformedEnvelope as exc:
            raise _fail(
                "malformed_envelope", "the sealed envelope is malformed: {reason}", {"reason": str(exc)}
            ) from exc
    return value


Content = Annotated[str, AfterValidator(_content)]
Name = Annotated[str, AfterValidator(_name)]
ChannelName = Annotated[str, AfterValidator(_channel)]
Metadata = Annotated[dict[str, Any] | None, AfterValidator(_metadata)]
ExpectsReply = Annotated[str | None, AfterValidator(_expects_reply)]
ClientMsgId = Annotated[str | None, Field(min_length=1, max_length=limits.MAX_CLIENT_MSG_ID_CHARS)]
MessageId = Annotated[int, Field(ge=1, le=limits.MAX_ID)]
Sealed = Annotated[dict[str, Any] | None, AfterValidator(_sealed)]


def _check_text(value: Any) -> None:
    """No text anywhere in a body may hold NUL, or lone surrogates (which no database can store), and no number
    may be infinite (``1e400``: JSON has no Infinity, and no reader could parse it back)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail("invalid_number", "numbers must be finite (JSON has no Infinity or NaN); send a smaller number")
    if isinstance(value, str):
        if "\x00" in value:
            raise _fail("nul_character", "text may not contain NUL (\\u0000) characters")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise _fail(
                    "invalid_unicode", "text holds a lone surrogate (e.g. \\ud800); send valid UTF-8 text"
                ) from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def _plain_text(value: str) -> str:
    _check_text(value)
    return value


PlainText = Annotated[str, AfterValidator(_plain_text)]


class Body(BaseModel):
    """Unknown fields are refused (a typo is an error, not silence); no text may hold NUL or lone surrogates."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_bad_text(cls, data: Any) -> Any:
        _check_text(data)
        return data


class PostMessage(Body):
    """Plain ``content``, or (in a sealed channel) a ``sealed`` envelope with the ``mentions`` it makes."""

    channel: ChannelName
    content: Content | None = None
    parent_message_id: MessageId | None = None
    metadata: Metadata = None
    expects_reply: ExpectsReply = None
    client_msg_id: ClientMsgId = None
    sealed: Sealed = None
    mentions: Annotated[list[Name] | None, Field(max_length=limits.MAX_SEALED_MENTIONS)] = None

    @model_validator(mode="after")
    def _content_or_sealed(self) -> PostMessage:
        if self.sealed is None:
            if self.content is None:
                raise _fail("content_required", "content is empty; write the message text")
            if self.mentions is not None:
                raise _fail("mentions_not_sealed", "mentions are read from content; send them only with sealed")
        elif self.content is not None or self.metadata is not None:
            raise _fail(
                "plaintext_in_sealed",
                "a sealed message carries no content or metadata in the clear: seal them into the envelope",
            )
        return self


class PostDM(Body):
    target_agent: Name
    content: Content
    parent_message_id: MessageId | None = None
    metadata: Metadata = None
    expects_reply: ExpectsReply = None
    client_msg_id: ClientMsgId = None


class ReleaseClaim(Body):
    reason: Content | None = None


class CreateChannel(Body):
    name: ChannelName
    description: Annotated[str, Field(max_length=limits.MAX_DESCRIPTION_CHARS)] = ""
    private: bool = False
    encrypted: bool = False


class AddMember(Body):
    agent: Name


class MarkMentions(Body):
    mention_ids: Annotated[list[MessageId], Field(min_length=1, max_length=limits.MAX_MENTION_IDS)]


class UploadFile(Body):
    channel: ChannelName
    filename: Annotated[str, Field(min_length=1, max_length=limits.MAX_FILENAME_CHARS)]
    content: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    content_type: Annotated[str | None, Field(max_length=limits.MAX_REFERENCE_CHARS)] = None
    message: Annotated[str | None, Field(max_length=limits.MAX_CONTENT_CHARS)] = None
    announce: bool = True


class CreateKey(Body):
    kind: Literal["machine", "agent"]
    machine: Name | None = None
    name: Name | None = None
    channels: list[ChannelName] | None = None
    expires: Annotated[str | None, Field(max_length=32)] = None
    human: bool = False


#: A key, the admin token or a name as the dashboard's sign-in sends it.
Credential = Annotated[str, Field(max_length=limits.MAX_REFERENCE_CHARS)]


class SignIn(Body):
    key: Credential = ""
    name: Credential = ""


class AdminSignIn(Body):
    token: Credential = ""


class Revoke(Body):
    target: Annotated[str, Field(min_length=1, max_length=limits.MAX_REFERENCE_CHARS)]
