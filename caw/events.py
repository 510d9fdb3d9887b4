"""Typed streaming events: what every provider's output is translated into.

Events are immutable pydantic models forming one discriminated union on ``type``. A provider parser emits
them; the session folds them into a ``Turn``. Anything a parser does not understand becomes a ``RawEvent``
(kept, never a crash), so a new event type from a future CLI version cannot break a run.

    >>> from caw.events import EVENT_ADAPTER
    >>> EVENT_ADAPTER.validate_json('{"type": "text", "text": "hi"}')
    TextEvent(type='text', provider='', text='hi', message_id=None)
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from caw.models import UsageStats

#: error classes a parser may assign; the session maps them onto caw.errors
ErrorKind = Literal[
    "rate_limit",  # usage or rate limit (waitable unless the limit says otherwise)
    "billing",  # out of credits / quota: money, not time
    "auth",  # logged out, bad key, forbidden
    "context_overflow",
    "not_found",  # the conversation to resume does not exist
    "server",  # 5xx, overloaded, connection problems: transient on the provider's side
    "invalid_request",  # the API rejected the request (4xx other than the above)
    "cli",  # the CLI itself failed (bad flag, config error, crash)
    "cancelled",  # the turn was interrupted (Session.cancel, Ctrl-C, SIGTERM): a stream's last word, non-fatal
    "budget",  # the CLI's own cap stopped the turn (claude --max-budget-usd / --max-turns): caw.BudgetExceeded
    "structured_output",  # the CLI gave up on a valid answer to its schema flag (claude's own retries)
    "unknown",
]


class _Event(BaseModel):
    # defer_build: a class's validator is built on its first use, not at import (most runs use a few)
    model_config = ConfigDict(frozen=True, defer_build=True)

    #: the provider the event is about: whose CLI printed it, or whose limit caw waits for
    provider: str = ""


class SessionStarted(_Event):
    """The CLI announced the conversation: ``session_id`` is the provider's resume key."""

    type: Literal["session_started"] = "session_started"
    session_id: str
    model: str | None = None
    cli_version: str | None = None


class TextEvent(_Event):
    """Text the agent wrote. Events with the same ``message_id`` are pieces of one block."""

    type: Literal["text"] = "text"
    text: str
    message_id: str | None = None


class ThinkingEvent(_Event):
    """The model's reasoning, where the CLI shows it. Events with the same ``message_id`` are one block."""

    type: Literal["thinking"] = "thinking"
    text: str
    message_id: str | None = None


class ToolCallEvent(_Event):
    """The agent called a tool. ``id`` pairs it with its ``ToolResultEvent``."""

    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResultEvent(_Event):
    """A tool's result. The session fills ``name`` and ``arguments`` from the call (``tool_call``) it answers."""

    type: Literal["tool_result"] = "tool_result"
    id: str
    output: str = ""
    is_error: bool = False
    name: str | None = None
    arguments: dict[str, Any] | None = None


class ToolDeniedEvent(_Event):
    """The CLI refused a tool use its permissions do not allow: the model asked, nothing ran (issue 12).

    ``name`` is the tool as the CLI names it; ``tools=`` (``--tools``) allows it. From claude's
    ``permission_denials``, opencode's auto-rejected permission asks, codex's declined items and MCP calls
    that need an approval (codex 0.169 prints no item for a command its read-only sandbox refuses).
    """

    type: Literal["tool_denied"] = "tool_denied"
    id: str = ""
    name: str
    message: str = ""


class UsageEvent(_Event):
    """Token usage and cost for the turn so far (``final`` on the provider's closing summary)."""

    type: Literal["usage"] = "usage"
    usage: UsageStats
    final: bool = False


class ResultEvent(_Event):
    """The CLI closed the turn successfully. ``text`` is the answer (the session fills it when the CLI does not)."""

    type: Literal["result"] = "result"
    text: str | None = None
    duration_ms: int | None = None
    stop_reason: str | None = None
    #: the CLI's validated answer to its schema flag (claude ``structured_output``), when it gives one
    structured: Any = None


class RateLimitEvent(_Event):
    """Rate-limit information. Only ``status == "rejected"`` means the turn is limited."""

    type: Literal["rate_limit"] = "rate_limit"
    status: Literal["allowed", "warning", "rejected"] = "rejected"
    resets_at: datetime | None = None
    kind: str = "rate"
    waitable: bool = True
    message: str = ""


class RetryEvent(_Event):
    """The CLI is retrying on its own (not a failure unless it gives up later)."""

    type: Literal["retry"] = "retry"
    attempt: int | None = None
    max_retries: int | None = None
    delay_ms: float | None = None
    status: int | None = None
    message: str = ""


class WarningEvent(_Event):
    """A non-fatal notice from the CLI (e.g. codex's warning items)."""

    type: Literal["warning"] = "warning"
    message: str
    #: a stable name for warnings a program may act on (e.g. ``session_writes_lost``); empty otherwise
    code: str = ""


class ErrorEvent(_Event):
    """An error. ``fatal`` errors end the turn as failed."""

    type: Literal["error"] = "error"
    kind: ErrorKind = "unknown"
    message: str
    status: int | None = None
    fatal: bool = True


class LimitWaitEvent(_Event):
    """caw is waiting for a usage limit to reset before continuing the same conversation."""

    type: Literal["limit_wait"] = "limit_wait"
    resets_at: datetime | None = None
    wake_at: datetime
    #: when this wait began (the wait lasts ``wake_at - started_at``; the same on each event of one wait)
    started_at: datetime | None = None
    kind: str = "rate"
    message: str = ""


class CawSessionEvent(_Event):
    """caw's own closing line of ``caw run --jsonl``: the session to look up (``caw sessions``) or resume.

    ``session_id`` is caw's id (not the CLI's, which is ``provider_session_id``); ``resume_handle`` is what
    ``caw resume`` takes (None when the conversation never started).
    """

    type: Literal["caw_session"] = "caw_session"
    session_id: str
    resume_handle: str | None = None
    provider_session_id: str | None = None
    exit_code: int = 0


class RawEvent(_Event):
    """A line the parser did not recognise, passed through unchanged."""

    type: Literal["raw"] = "raw"
    data: dict[str, Any]


Event = Annotated[
    Union[
        SessionStarted,
        TextEvent,
        ThinkingEvent,
        ToolCallEvent,
        ToolResultEvent,
        ToolDeniedEvent,
        UsageEvent,
        ResultEvent,
        RateLimitEvent,
        RetryEvent,
        WarningEvent,
        ErrorEvent,
        LimitWaitEvent,
        CawSessionEvent,
        RawEvent,
    ],
    Field(discriminator="type"),
]

if TYPE_CHECKING:
    #: validates one event from JSON or a dict (``EVENT_ADAPTER.validate_json(line)``); built on first use
    EVENT_ADAPTER: TypeAdapter[Event]


@functools.cache
def _event_adapter() -> TypeAdapter[Event]:
    return TypeAdapter(Event)


def __getattr__(name: str) -> Any:
    # PEP 562: the union's adapter costs milliseconds to build, and a `caw run` never validates an event
    if name == "EVENT_ADAPTER":
        return _event_adapter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def event_json_schema() -> dict[str, Any]:
    """The JSON schema of one streamed event (what ``caw run --jsonl`` prints per line).

    >>> schema = event_json_schema()
    >>> "text" in schema["discriminator"]["mapping"]
    True
    """
    return _event_adapter().json_schema()


def event_summary(ev: Event) -> str:
    """One line describing an event, for loggers and CI logs."""
    p = f"[{ev.provider}] " if ev.provider else ""
    if isinstance(ev, SessionStarted):
        return f"{p}session {ev.session_id} started" + (f" (model {ev.model})" if ev.model else "")
    if isinstance(ev, TextEvent):
        return f"{p}text: {_clip(ev.text)}"
    if isinstance(ev, ThinkingEvent):
        return f"{p}thinking: {_clip(ev.text)}"
    if isinstance(ev, ToolCallEvent):
        # compact JSON, as a CI log reader expects, never a Python repr ({'command': ...})
        return f"{p}tool call {ev.name}: {_clip(json.dumps(ev.arguments, ensure_ascii=False, default=str))}"
    if isinstance(ev, ToolResultEvent):
        named = f" {ev.name}" if ev.name else ""
        return f"{p}tool result{named}{' (error)' if ev.is_error else ''}: {_clip(ev.output)}"
    if isinstance(ev, ToolDeniedEvent):
        return f"{p}tool use refused: {ev.name}" + (f": {_clip(ev.message)}" if ev.message else "")
    if isinstance(ev, UsageEvent):
        u = ev.usage
        cost = f", ${u.cost_usd:.4f}" if u.cost_usd is not None else ""
        return f"{p}usage: {u.input_tokens} in, {u.output_tokens} out{cost}"
    if isinstance(ev, ResultEvent):
        return f"{p}turn completed"
    if isinstance(ev, RateLimitEvent):
        when = f", resets {ev.resets_at.isoformat()}" if ev.resets_at else ""
        return f"{p}rate limit {ev.status} ({ev.kind}{when})"
    if isinstance(ev, RetryEvent):
        # offline codex's "Reconnecting... waiting for network" has no count: no "attempt None/None" (issue 12)
        count = f"attempt {ev.attempt}" if ev.attempt is not None else ""
        count += f"/{ev.max_retries}" if count and ev.max_retries is not None else ""
        return f"{p}retrying{f' ({count})' if count else ''}: {_clip(ev.message)}"
    if isinstance(ev, WarningEvent):
        return f"{p}warning: {_clip(ev.message)}"
    if isinstance(ev, ErrorEvent) and ev.kind == "cancelled":
        return f"{p}interrupted: {_clip(ev.message)}"  # issue 12: an interrupt is no crash
    if isinstance(ev, ErrorEvent):
        return f"{p}error ({ev.kind}): {_clip(ev.message)}"
    if isinstance(ev, LimitWaitEvent):
        if ev.message:
            return f"{p}{ev.message}"
        return f"{p}waiting for the {ev.kind} limit to reset; continuing at {ev.wake_at.isoformat()}"
    if isinstance(ev, CawSessionEvent):
        return f"{p}caw session {ev.session_id}" + (f", resume with {ev.resume_handle}" if ev.resume_handle else "")
    return f"{p}{ev.type}"


def _clip(text: str, n: int = 160) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"
