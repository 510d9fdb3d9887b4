"""Data caw hands to users: usage, content blocks, turns, trajectories, tool groups, MCP servers.

Everything here is plain pydantic v2 and round-trips through JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, computed_field


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UsageStats(BaseModel):
    """Token usage and cost. ``input_tokens`` counts input that was not read from cache.

    Providers report cached input differently (Anthropic excludes it, OpenAI includes it); caw normalises
    to the Anthropic meaning so that ``total_tokens`` adds up the same way for every provider.
    ``cost_usd`` is None when the provider does not report a cost.
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def __add__(self, other: UsageStats) -> UsageStats:
        if not isinstance(other, UsageStats):
            return NotImplemented
        cost: float | None
        if self.cost_usd is None and other.cost_usd is None:
            cost = None
        else:
            cost = round((self.cost_usd or 0.0) + (other.cost_usd or 0.0), 10)
        return UsageStats(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=cost,
        )

    def __sub__(self, other: UsageStats) -> UsageStats:
        """Difference of two running totals (codex reports usage cumulatively per thread)."""
        cost = None if self.cost_usd is None else max(0.0, self.cost_usd - (other.cost_usd or 0.0))
        return UsageStats(
            input_tokens=max(0, self.input_tokens - other.input_tokens),
            output_tokens=max(0, self.output_tokens - other.output_tokens),
            cache_read_tokens=max(0, self.cache_read_tokens - other.cache_read_tokens),
            cache_write_tokens=max(0, self.cache_write_tokens - other.cache_write_tokens),
            reasoning_tokens=max(0, self.reasoning_tokens - other.reasoning_tokens),
            cost_usd=cost,
        )


class TextBlock(BaseModel):
    """Text the agent wrote (what ``Turn.result`` joins)."""

    model_config = ConfigDict(defer_build=True)

    type: Literal["text"] = "text"
    text: str


class ThinkingBlock(BaseModel):
    """The model's reasoning, where the CLI shows it (never part of ``Turn.result``)."""

    model_config = ConfigDict(defer_build=True)

    type: Literal["thinking"] = "thinking"
    text: str


class ToolUse(BaseModel):
    """A tool call and (once it arrived) its result."""

    model_config = ConfigDict(defer_build=True)

    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: str | None = None
    is_error: bool = False
    #: a subagent's call: the subagent's trajectory file (under the parent session's directory, docs/tools.md)
    subagent: str | None = None
    #: what the subagent's own turns used (counted apart from the parent's usage)
    subagent_usage: UsageStats | None = None


Block = Annotated[Union[TextBlock, ThinkingBlock, ToolUse], Field(discriminator="type")]

TurnStatus = Literal["completed", "failed", "cancelled", "timeout", "rate_limited", "running"]


class TurnError(BaseModel):
    """Why a turn did not complete: the error class name, a reason class and the message."""

    model_config = ConfigDict(defer_build=True)

    type: str
    reason: str
    message: str
    status: int | None = None


class LimitInfo(BaseModel):
    """A usage limit a turn ran into (see ``caw.detect_limit`` for the text fallback)."""

    model_config = ConfigDict(defer_build=True)

    kind: str = "rate"
    resets_at: datetime | None = None
    waitable: bool = True
    message: str = ""


class Turn(BaseModel):
    """One user message and everything the agent produced for it."""

    model_config = ConfigDict(defer_build=True)

    input: str
    output: list[Block] = Field(default_factory=list)
    usage: UsageStats = Field(default_factory=UsageStats)
    duration_ms: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    status: TurnStatus = "running"
    provider: str = ""
    model: str | None = None
    error: TurnError | None = None
    limit: LimitInfo | None = None
    #: retry notices the CLI printed while it retried on its own (kept for diagnosis)
    retries: int = 0
    #: the tool uses the CLI refused (its permissions did not allow them), one name per refusal, in order
    denied_tools: list[str] = Field(default_factory=list)
    #: non-JSON lines the CLI printed on stdout (bounded), useful when something goes wrong
    diagnostics: list[str] = Field(default_factory=list)
    #: the validated answer to ``output=`` (a model instance for a model class; JSON data once loaded from disk)
    parsed: Any = None

    @property
    def result(self) -> str:
        """The turn's answer: the text after its last tool use (all its text when it used none, or said
        nothing after it).

        What the model said before and between tool calls ("Let me look at the tests.") is narration, kept in
        ``output``; the answer is what it said last, as each CLI's own result has it (claude's ``result``,
        codex's last agent message, opencode's last text)."""
        last_tool = max((i for i, b in enumerate(self.output) if isinstance(b, ToolUse)), default=-1)
        answer = "".join(b.text for b in self.output[last_tool + 1 :] if isinstance(b, TextBlock))
        return answer or "".join(b.text for b in self.output if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> list[ToolUse]:
        return [b for b in self.output if isinstance(b, ToolUse)]


class Attempt(BaseModel):
    """One provider that was tried by the fallback selector."""

    model_config = ConfigDict(defer_build=True)

    provider: str
    reason: str  # "answered", "not_installed", "auth", "rate_limited", "crashed", "timeout", "cooldown", ...
    error: str = ""
    started_at: datetime = Field(default_factory=utcnow)
    duration_ms: int = 0
    resets_at: datetime | None = None


class Trajectory(BaseModel):
    """A whole conversation: its configuration, turns, usage and how the provider was chosen."""

    model_config = ConfigDict(defer_build=True)

    agent: str = ""  # provider name
    model: str | None = None
    session_id: str = ""
    provider_session_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    system_prompt: str | None = None
    reasoning: str | None = None
    cwd: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    usage_limited: bool = False
    attempts: list[Attempt] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    #: the opaque string that resumes this conversation elsewhere (set after the first turn)
    resume_handle: str | None = None
    #: a message accepted but not yet answered (e.g. interrupted while waiting for a usage limit)
    pending_message: str | None = None
    notes: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usage(self) -> UsageStats:
        total = UsageStats()
        for turn in self.turns:
            total = total + turn.usage
        return total

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_ms(self) -> int:
        return sum(t.duration_ms for t in self.turns)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def subagent_usage(self) -> UsageStats:
        """What the subagents this conversation called used (not part of ``usage``; see ``ToolUse.subagent``)."""
        total = UsageStats()
        for turn in self.turns:
            for use in turn.tool_uses:
                if use.subagent_usage is not None:
                    total = total + use.subagent_usage
        return total

    @computed_field  # type: ignore[prop-decorator]
    @property
    def denied_tool_uses(self) -> int:
        """How many tool uses the CLIs refused over every turn (each turn's ``denied_tools`` names them)."""
        return sum(len(t.denied_tools) for t in self.turns)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def result(self) -> str:
        """The last completed turn's text ('' when there is none)."""
        for turn in reversed(self.turns):
            if turn.status == "completed":
                return turn.result
        return ""

    @property
    def parsed(self) -> Any:
        """The last completed turn's ``parsed``: the validated answer to ``output=`` (None when there is none)."""
        for turn in reversed(self.turns):
            if turn.status == "completed":
                return turn.parsed
        return None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        computed = ("usage", "duration_ms", "result", "denied_tool_uses", "subagent_usage")
        clean = {k: v for k, v in data.items() if k not in computed}
        return cls.model_validate(clean)


class ToolGroup(enum.Flag):
    """Families of built-in tools an agent may use, mapped onto each CLI's own permission flags."""

    NONE = 0
    READER = enum.auto()  # read files, search the tree
    WRITER = enum.auto()  # create and edit files
    EXEC = enum.auto()  # run shell commands
    WEB = enum.auto()  # fetch pages, web search
    PARALLEL = enum.auto()  # sub-agents / tasks
    INTERACTION = enum.auto()  # ask the user questions (never answerable in scripted runs)
    ALL = READER | WRITER | EXEC | WEB | PARALLEL | INTERACTION
    NO_INTERACTION = READER | WRITER | EXEC | WEB | PARALLEL

    def __sub__(self, other: ToolGroup) -> ToolGroup:
        return self & ~other

    @classmethod
    def parse(cls, text: str) -> ToolGroup:
        """The ``--tools`` spelling: a comma list of group names, any case; ``-name`` subtracts.

        >>> ToolGroup.parse("reader,exec") == ToolGroup.READER | ToolGroup.EXEC
        True
        >>> ToolGroup.parse("all,-web") == ToolGroup.ALL - ToolGroup.WEB
        True

        Raises ``ValueError`` for a name that is not a group (the message lists the groups; ``caw.Agent``
        raises it as ``ConfigurationError``).
        """
        result = cls.NONE
        for raw in text.split(","):
            part = raw.strip()
            if not part:
                continue
            name = part.lstrip("+-").strip().upper().replace("-", "_")
            member = cls.__members__.get(name)
            if member is None:
                raise ValueError(f"unknown tool group {part!r}; the groups are: {cls.names()}")
            result = result - member if part.startswith("-") else result | member
        return result

    @classmethod
    def names(cls) -> str:
        """``reader, writer, exec, ...``: every group's name as ``parse`` takes it."""
        return ", ".join(m.lower() for m in cls.__members__)


#: reasoning-effort levels the CLIs take (claude --effort: low..max; codex model_reasoning_effort: none,
#: minimal..xhigh; opencode --variant passes the provider's own names, these among them)
REASONING_EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


class ModelTier(str, enum.Enum):
    """A provider-neutral model choice; each provider maps it to a concrete model."""

    STRONGEST = "strongest"
    FAST = "fast"


class MCPServer(BaseModel):
    """An MCP server the agent may use: a stdio command, or a URL."""

    model_config = ConfigDict(defer_build=True)

    name: str
    command: str = ""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str = ""
    #: let the CLI hide this server's tools behind its own tool search (claude ToolSearch, codex tool_search);
    #: by default caw has them offered to the model directly on the first request (docs/tools.md)
    defer_tools: bool = False
    #: seconds the CLI waits for one call of this server's tools (claude ``timeout``, codex
    #: ``tool_timeout_sec``); None: the CLI's own default (codex: 60 s). caw sets it for its own servers
    tool_timeout: float | None = None
