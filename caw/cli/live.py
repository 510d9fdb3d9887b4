"""The live view of ``caw run`` on a terminal: rich draws it, and only a terminal imports this module.

``caw.cli.runner.make_view`` picks it for the ``live`` mode; ``--quiet``, ``--json``, ``--jsonl`` and plain
output (no terminal) never import rich (issue 18). User text always goes through ``rich.text.Text``
(never markup), so a prompt containing ``[red]`` prints as typed.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.status import Status
from rich.text import Text

from caw.cli.views import Outcome, fold, footer_text, tool_call_text, usage_text
from caw.events import (
    ErrorEvent,
    Event,
    LimitWaitEvent,
    RateLimitEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolDeniedEvent,
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
    event_summary,
)
from caw.text import clip

__all__ = ["LiveView"]


class LiveView:
    """On a terminal: text as it arrives, one line per tool call, a spinner while working, a footer."""

    def __init__(self, console: Console, *, debug: bool = False) -> None:
        self.console = console
        self.debug = debug
        self._status: Status | None = None
        self._label = ""
        self._buffer = ""
        self._message_id: str | None = None
        self._tokens = ""
        #: tool calls already shown (codex announces a call when it starts and again with its result)
        self._shown_calls: set[str] = set()

    # spinner -------------------------------------------------------------------------------------
    def _spin(self, text: RenderableType) -> None:
        if self._status is None:
            self._status = self.console.status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def _pause(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _working(self) -> str:
        extra = f" · {self._tokens}" if self._tokens else ""
        return f"{self._label} working…{extra}"

    # text ----------------------------------------------------------------------------------------
    def _write_text(self, text: str, message_id: str | None) -> None:
        if self._buffer and message_id != self._message_id:
            self._flush()
        self._message_id = message_id
        self._buffer += text
        if "\n" in self._buffer:
            done, self._buffer = self._buffer.rsplit("\n", 1)
            self.console.print(Text(done))

    def _flush(self) -> None:
        if self._buffer:
            self.console.print(Text(self._buffer))
            self._buffer = ""

    def _line(self, text: str, style: str) -> None:
        self._flush()
        self.console.print(Text(text, style=style))

    # View ----------------------------------------------------------------------------------------
    def start(self, label: str) -> None:
        self._label = label
        self._spin(self._working())

    def event(self, ev: Event) -> None:
        if isinstance(ev, TextEvent):
            self._write_text(ev.text, ev.message_id)
        elif isinstance(ev, ThinkingEvent):
            self._line(f"✻ {clip(ev.text, 120)}", "dim italic")
        elif isinstance(ev, ToolCallEvent):
            self._shown_calls.add(ev.id)
            self._line(f"⏺ {tool_call_text(ev.name, ev.arguments)}", "cyan")
        elif isinstance(ev, ToolResultEvent):
            self._tool_result(ev)
        elif isinstance(ev, SessionStarted):
            self._label = f"{ev.provider or self._label}" + (f" ({ev.model})" if ev.model else "")
        elif isinstance(ev, UsageEvent):
            self._tokens = usage_text(ev.usage)
        elif isinstance(ev, RetryEvent | WarningEvent | ToolDeniedEvent) or (
            isinstance(ev, RateLimitEvent) and ev.status == "rejected"
        ):
            self._line(event_summary(ev), "yellow")
        elif isinstance(ev, ErrorEvent):
            self._line(event_summary(ev), "red" if ev.fatal else "yellow")
        elif isinstance(ev, LimitWaitEvent):
            # caw.policy.autowait draws its own countdown on stderr when that is a terminal: step aside
            self._flush()
            self._pause()
            return
        elif self.debug:
            self._line(event_summary(ev), "dim")
        self._spin(self._working())

    def _tool_result(self, ev: ToolResultEvent) -> None:
        # a result that names its call (codex, opencode) shows the call line unless it was shown already
        if ev.name and ev.arguments is not None and ev.id not in self._shown_calls:
            self._shown_calls.add(ev.id)
            self._line(f"⏺ {tool_call_text(ev.name, ev.arguments)}", "cyan")
        shown, more = fold(ev.output or "(no output)")
        style = "red" if ev.is_error else "dim"
        for i, line in enumerate(shown):
            self._line(f"  {'⎿' if i == 0 else ' '} {line}", style)
        if more:
            self._line(f"    … +{more} lines", style)

    def log(self, level: str, message: str) -> None:
        if level != "info":
            self._line(f"caw: {message}", "yellow")
        elif self.debug:
            self._line(f"caw: {message}", "dim")

    def finish(self, outcome: Outcome) -> None:
        self._flush()
        self._pause()
        if outcome.turn is not None:
            style = "dim" if outcome.ok else "red"
            footer = footer_text(outcome.trajectory, outcome.turn, outcome.waited_ms)
            self.console.print(Text(f"─ {footer}", style=style))
