"""What the next model request gets: provider-neutral reply descriptions.

A test enqueues replies on a fake server (`srv.enqueue(Text("hi"), ToolCall("echo hi"))`); each
model request consumes one. The three fakes render the same reply in their own wire format
(Anthropic Messages SSE, OpenAI Responses SSE, OpenAI Chat Completions SSE), so a scenario reads
the same whichever CLI runs it.

Replies also travel as JSON (`POST /_control/enqueue`, `{"kind": "text", "text": "hi"}`), see
`reply_to_dict` / `reply_from_dict`.

Per-provider error helpers (`anthropic_rate_limited`, `codex_usage_limit`, ...) build `Error`
replies with the exact headers and bodies the real APIs send.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Usage:
    """Token counts a reply reports. `None` fields are filled in by the fake from the request size."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Text:
    """Streamed assistant text, split into `chunks` deltas with `delay_s` between them."""

    text: str
    chunks: int = 3
    delay_s: float = 0.0
    usage: Usage | None = None


@dataclass(frozen=True)
class Echo:
    """Reply `ECHO messages=<n> last_len=<len> last=<first 120 chars of the last user text>`.

    The default reply when the queue is empty and the last message is not a tool result.
    """


@dataclass(frozen=True)
class ToolCall:
    """Ask the agent to run `command` with its own shell tool (claude Bash, codex exec_command,
    opencode bash). `call_id` defaults to a fresh id."""

    command: str
    call_id: str | None = None
    description: str = "Run a shell command"
    usage: Usage | None = None
    #: call this tool with this input instead (e.g. claude's ``StructuredOutput``, a caw tool). A name the
    #: request does not offer is looked up as an MCP tool: ``mcp__<server>__<tool>`` (claude), namespace
    #: ``mcp__<server>`` (codex), ``<server>_<tool>`` (opencode); see ``resolve_tool``
    tool: str | None = None
    input: dict[str, Any] | None = None


@dataclass(frozen=True)
class Thinking:
    """A reasoning/thinking part followed by a text part."""

    thought: str
    text: str
    usage: Usage | None = None


@dataclass(frozen=True)
class Error:
    """An HTTP error in the provider's JSON error shape; `body` (if set) replaces the body entirely.

    `type` / `code` default per provider (anthropic `rate_limit_error`, openai `rate_limit_exceeded`
    for 429, and so on), see the fakes' `error_body`.
    """

    status: int
    message: str = "fake error"
    type: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str | None = None


@dataclass(frozen=True)
class Drop:
    """HTTP 200 and the start of a text stream, then the connection is closed mid-stream."""

    partial_text: str = "partial"


@dataclass(frozen=True)
class Hang:
    """Wait `seconds` (bounded by server stop) and then answer with `then` (default: the default reply)."""

    seconds: float
    then: Reply | None = None


Reply = Union[Text, Echo, ToolCall, Thinking, Error, Drop, Hang]


def resolve_tool(wanted: str, offered: list[str]) -> str:
    """The offered tool name ``wanted`` means: itself, else the one MCP tool ending in ``__wanted`` or
    ``_wanted`` (so a test names ``add`` and claude gets ``mcp__caw__add``, opencode ``caw_add``)."""
    if wanted in offered:
        return wanted
    for suffix in (f"__{wanted}", f"_{wanted}"):
        found = [name for name in offered if name.endswith(suffix)]
        if found:
            return found[0]
    return wanted


_KINDS: dict[str, type[Any]] = {
    "text": Text,
    "echo": Echo,
    "tool_call": ToolCall,
    "thinking": Thinking,
    "error": Error,
    "drop": Drop,
    "hang": Hang,
}
_KIND_OF: dict[type[Any], str] = {cls: kind for kind, cls in _KINDS.items()}


def reply_kind(reply: Reply) -> str:
    """The wire name of a reply class (`"text"`, `"tool_call"`, ...)."""
    return _KIND_OF[type(reply)]


def reply_to_dict(reply: Reply) -> dict[str, Any]:
    """JSON-able form of a reply, e.g. `{"kind": "text", "text": "hi", "chunks": 3, ...}`."""
    out: dict[str, Any] = {"kind": reply_kind(reply)}
    for f in dataclasses.fields(reply):
        value = getattr(reply, f.name)
        if isinstance(value, Usage):
            value = dataclasses.asdict(value)
        elif f.name == "then" and value is not None:
            value = reply_to_dict(value)
        out[f.name] = value
    return out


def reply_from_dict(data: dict[str, Any]) -> Reply:
    """Inverse of `reply_to_dict`; unknown keys raise `TypeError` so typos in scenarios show up."""
    fields = dict(data)
    kind = fields.pop("kind")
    cls = _KINDS[kind]
    if isinstance(fields.get("usage"), dict):
        fields["usage"] = Usage(**fields["usage"])
    if isinstance(fields.get("then"), dict):
        fields["then"] = reply_from_dict(fields["then"])
    reply: Reply = cls(**fields)
    return reply


# --- error helpers -----------------------------------------------------------------------------


def anthropic_rate_limited(
    reset_epoch: int, claim: str = "five_hour", retry_after_s: int = 0, message: str = "Rate limited"
) -> Error:
    """Subscription (OAuth) rate limit: claude turns these headers into a `rate_limit_event`
    with `resetsAt`/`rateLimitType` and does not retry. With an API key the headers are ignored."""
    return Error(
        429,
        message=message,
        type="rate_limit_error",
        headers={
            "anthropic-ratelimit-unified-status": "rejected",
            "anthropic-ratelimit-unified-reset": str(reset_epoch),
            "anthropic-ratelimit-unified-representative-claim": claim,
            "retry-after": str(retry_after_s),
        },
    )


def codex_usage_limit(resets_at_epoch: int, plan_type: str = "plus", now: float | None = None) -> Error:
    """ChatGPT-plan usage limit: codex renders `resets_at` in local time and does not retry."""
    now_s = time.time() if now is None else now
    return Error(
        429,
        body={
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": plan_type,
                "resets_at": resets_at_epoch,
                "resets_in_seconds": max(0, int(resets_at_epoch - now_s)),
            }
        },
    )


def openai_rate_limited(retry_after_s: float, message: str | None = None) -> Error:
    """429 `rate_limit_exceeded` with `retry-after`/`retry-after-ms` (opencode and codex honour them)."""
    seconds = f"{retry_after_s:g}"
    return Error(
        429,
        message=message or f"Rate limit reached for requests. Please try again in {seconds}s.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(max(0, round(retry_after_s))),
            "retry-after-ms": str(int(retry_after_s * 1000)),
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{seconds}s",
        },
    )


def auth_error(message: str = "Invalid API key (fake)") -> Error:
    """401 in the provider's shape (anthropic `authentication_error`, openai `invalid_api_key`)."""
    return Error(401, message=message)


def server_error(message: str = "Internal server error (fake)", retry_after_ms: int | None = None) -> Error:
    """500; `retry_after_ms` adds `retry-after-ms`, which keeps opencode's retry loop short."""
    headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
    return Error(500, message=message, headers=headers)
