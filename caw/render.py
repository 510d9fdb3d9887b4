"""What the ``caw`` command shows: the live turn view, plain/JSON/JSONL outputs, saved trajectories, tables.

Everything here writes to streams handed in by ``caw.cli``; nothing decides exit codes. rich is used only
here, in ``caw.cli`` and in the countdown (``caw.countdown``). User text always goes through
``rich.text.Text`` (never markup), so a prompt containing ``[red]`` prints as typed.

Output modes of ``caw run`` / ``caw resume`` (``make_view``):

* ``live``: stdout is a terminal; text as it arrives, one line per tool call, a spinner while the agent
  works, a usage/cost/duration footer;
* ``plain``: no terminal, no mode flag; progress lines on stderr, the result text on stdout at the end;
* ``quiet``: only the result text on stdout;
* ``json``: the final trajectory (plus ``resume_handle``, ``exit_code``, ``error``) on stdout;
* ``jsonl``: one event per line as it arrives (each line validates against ``caw.events.EVENT_ADAPTER``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any, ClassVar, Literal, Protocol

from rich.console import Console, RenderableType
from rich.status import Status
from rich.table import Table
from rich.text import Text

from caw.events import (
    ErrorEvent,
    ErrorKind,
    Event,
    LimitWaitEvent,
    RateLimitEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
    event_summary,
)
from caw.models import TextBlock, ThinkingBlock, ToolUse, Trajectory, Turn, UsageStats

Mode = Literal["live", "plain", "quiet", "json", "jsonl"]

#: lines of a tool's output shown in the live view and in ``caw traj show`` before folding
FOLD_LINES = 3


# ---- small formatting helpers ---------------------------------------------------------------------------
def clip(text: str, n: int = 80) -> str:
    """One line of at most ``n`` characters (whitespace collapsed, ``…`` when cut)."""
    one = " ".join(text.split())
    return one if len(one) <= n else one[: max(0, n - 1)] + "…"


def fold(text: str, lines: int = FOLD_LINES, width: int = 160) -> tuple[list[str], int]:
    """The first ``lines`` lines of ``text`` (each clipped to ``width``) and how many lines were left out."""
    all_lines = text.rstrip("\n").splitlines() or [""]
    shown = [ln if len(ln) <= width else ln[: width - 1] + "…" for ln in all_lines[:lines]]
    return shown, max(0, len(all_lines) - lines)


def local_and_utc(when: datetime) -> str:
    """``2026-11-22 15:05 CET (14:05 UTC)``: the local time a person reads, and UTC for logs of other zones."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    local = aware.astimezone()
    utc = aware.astimezone(timezone.utc)
    zone = local.tzname() or "local"
    if local.utcoffset() == utc.utcoffset():
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    same_day = local.date() == utc.date()
    return f"{local:%Y-%m-%d %H:%M} {zone} ({utc:{'%H:%M' if same_day else '%Y-%m-%d %H:%M'}} UTC)"


def seconds_text(ms: int) -> str:
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    minutes, sec = divmod(round(s), 60)
    return f"{minutes}m {sec:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def usage_text(usage: UsageStats) -> str:
    """``12,071 in · 44 out · 3,000 cached · $0.0615``."""
    parts = [f"{usage.input_tokens:,} in", f"{usage.output_tokens:,} out"]
    if usage.cache_read_tokens:
        parts.append(f"{usage.cache_read_tokens:,} cached")
    if usage.cost_usd is not None:
        parts.append(f"${usage.cost_usd:.4f}")
    return " · ".join(parts)


def tool_call_text(name: str, arguments: dict[str, Any], width: int = 100) -> str:
    """``Bash(echo hi)``: the tool and its most telling argument, on one line."""
    if not arguments:
        return f"{name}()"
    for key in ("command", "cmd", "file_path", "path", "pattern", "url", "query", "description"):
        value = arguments.get(key)
        if isinstance(value, str) and value:
            return f"{name}({clip(value, width)})"
    return f"{name}({clip(json.dumps(arguments, ensure_ascii=False), width)})"


def footer_text(traj: Trajectory | None, turn: Turn | None) -> str:
    """``claude · sonnet · 12,071 in · 44 out · $0.0615 · 3.2s`` for the turn just run."""
    parts: list[str] = []
    provider = (turn.provider if turn else "") or (traj.agent if traj else "")
    if provider:
        parts.append(provider)
    model = (turn.model if turn else None) or (traj.model if traj else None)
    if model:
        parts.append(model)
    if turn is not None:
        parts.append(usage_text(turn.usage))
        parts.append(seconds_text(turn.duration_ms))
    return " · ".join(parts)


# ---- what a run ended with ------------------------------------------------------------------------------
@dataclass
class Outcome:
    """The end of a ``caw run`` / ``caw resume``: what the views, the JSON and the CI files report."""

    exit_code: int
    trajectory: Trajectory | None = None
    turn: Turn | None = None
    #: the one-line error (what happened — what to do), None on success
    error: str | None = None
    resume_handle: str | None = None
    #: the failing provider, when one is known
    provider: str = ""
    resets_at: datetime | None = None
    #: the failure's class for the closing ``--jsonl`` error event, when the exit code does not say it
    error_kind: ErrorKind | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def result(self) -> str:
        return self.turn.result if self.turn is not None and self.ok else ""

    def to_json(self) -> dict[str, Any]:
        """``Trajectory.to_dict()`` plus ``resume_handle``, ``exit_code`` and ``error`` (what ``--json`` prints)."""
        data: dict[str, Any] = self.trajectory.to_dict() if self.trajectory is not None else {}
        data["resume_handle"] = self.resume_handle
        data["exit_code"] = self.exit_code
        data["error"] = self.error
        return data


# ---- views ----------------------------------------------------------------------------------------------
class View(Protocol):
    """Receives a run's events as they arrive and its outcome at the end."""

    def start(self, label: str) -> None: ...
    def event(self, ev: Event) -> None: ...
    def log(self, level: str, message: str) -> None: ...
    def finish(self, outcome: Outcome) -> None: ...


class _Base:
    def __init__(self, out: IO[str], err: IO[str], *, debug: bool = False) -> None:
        self.out = out
        self.err = err
        self.debug = debug

    def start(self, label: str) -> None:
        pass

    def event(self, ev: Event) -> None:
        pass

    def log(self, level: str, message: str) -> None:
        # the session logs each event at info level too: only warnings (fallback skips, ...) are news
        if level != "info" or self.debug:
            self.err.write(f"caw: {message}\n")
            self.err.flush()

    def finish(self, outcome: Outcome) -> None:
        pass

    def _print_result(self, outcome: Outcome) -> None:
        if outcome.ok:
            text = outcome.result
            self.out.write(text if text.endswith("\n") or not text else text + "\n")
            self.out.flush()


class QuietView(_Base):
    """``--quiet``: the result text and nothing else on stdout."""

    def log(self, level: str, message: str) -> None:
        if self.debug:
            super().log(level, message)

    def finish(self, outcome: Outcome) -> None:
        self._print_result(outcome)


class PlainView(_Base):
    """No terminal: progress lines on stderr as events arrive, the result text on stdout at the end."""

    def start(self, label: str) -> None:
        self.err.write(f"caw: starting {label}\n")
        self.err.flush()

    def event(self, ev: Event) -> None:
        if isinstance(ev, TextEvent | ThinkingEvent | UsageEvent) and not self.debug:
            return  # the text is the result on stdout; usage is in the closing line
        if isinstance(ev, RateLimitEvent) and ev.status != "rejected" and not self.debug:
            return  # claude reports "allowed" on every healthy turn
        if isinstance(ev, ResultEvent | LimitWaitEvent) and not self.debug:
            return  # caw.ratelimit prints its own wait lines on stderr
        self.err.write(f"caw: {event_summary(ev)}\n")
        self.err.flush()

    def finish(self, outcome: Outcome) -> None:
        if outcome.ok:
            self.err.write(f"caw: done: {footer_text(outcome.trajectory, outcome.turn)}\n")
            self.err.flush()
        self._print_result(outcome)


class JsonView(_Base):
    """``--json``: one JSON document at the end (also on failure, with ``exit_code`` and ``error``)."""

    def log(self, level: str, message: str) -> None:
        if level != "info" or self.debug:
            super().log(level, message)

    def finish(self, outcome: Outcome) -> None:
        self.out.write(json.dumps(outcome.to_json(), ensure_ascii=False, indent=2) + "\n")
        self.out.flush()


class JsonlView(_Base):
    """``--jsonl``: every event as one JSON line, flushed as it arrives.

    A failure that the stream itself did not end with (provider not installed, every provider failed, an
    interrupt, a usage error) is reported as a final fatal ``error`` event, so a consumer reading only
    stdout always learns how the run ended.
    """

    _KIND_BY_CODE: ClassVar[dict[int, ErrorKind]] = {2: "invalid_request", 3: "cli", 4: "auth", 75: "rate_limit"}

    def __init__(self, out: IO[str], err: IO[str], *, debug: bool = False) -> None:
        super().__init__(out, err, debug=debug)
        self._ended_with_error = False

    def event(self, ev: Event) -> None:
        self.out.write(ev.model_dump_json() + "\n")
        self.out.flush()
        self._ended_with_error = isinstance(ev, ErrorEvent) and ev.fatal

    def finish(self, outcome: Outcome) -> None:
        if outcome.ok or self._ended_with_error:
            return
        kind = outcome.error_kind or self._KIND_BY_CODE.get(outcome.exit_code, "unknown")
        ev = ErrorEvent(provider=outcome.provider, kind=kind, message=outcome.error or "failed")
        self.event(ev)


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
            self._line(f"⏺ {tool_call_text(ev.name, ev.arguments)}", "cyan")
        elif isinstance(ev, ToolResultEvent):
            self._tool_result(ev)
        elif isinstance(ev, SessionStarted):
            self._label = f"{ev.provider or self._label}" + (f" ({ev.model})" if ev.model else "")
        elif isinstance(ev, UsageEvent):
            self._tokens = usage_text(ev.usage)
        elif isinstance(ev, RetryEvent | WarningEvent) or (isinstance(ev, RateLimitEvent) and ev.status == "rejected"):
            self._line(event_summary(ev), "yellow")
        elif isinstance(ev, ErrorEvent):
            self._line(event_summary(ev), "red" if ev.fatal else "yellow")
        elif isinstance(ev, LimitWaitEvent):
            # caw.ratelimit draws its own countdown on stderr when that is a terminal: step aside
            self._flush()
            self._pause()
            return
        elif self.debug:
            self._line(event_summary(ev), "dim")
        self._spin(self._working())

    def _tool_result(self, ev: ToolResultEvent) -> None:
        if ev.name and ev.arguments is not None:  # call and result reported together (codex, opencode)
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
            self.console.print(Text(f"─ {footer_text(outcome.trajectory, outcome.turn)}", style=style))


def make_view(mode: Mode, out: IO[str], err: IO[str], *, debug: bool = False) -> View:
    """The view for an output mode (``live`` draws on ``out``, which must be a terminal)."""
    if mode == "live":
        return LiveView(Console(file=out, highlight=False), debug=debug)
    views: dict[str, type[_Base]] = {"plain": PlainView, "quiet": QuietView, "json": JsonView, "jsonl": JsonlView}
    return views[mode](out, err, debug=debug)


# ---- saved trajectories (caw traj show) -----------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One numbered item of a trajectory: a user message or one output block of a turn.

    Steps are numbered from 1 across the whole trajectory, in the order they happened: turn 1's user
    message, then each of its blocks (thinking, text, tool call with its output), then turn 2's message...
    """

    number: int
    turn_index: int  # 1-based
    kind: Literal["user", "text", "thinking", "tool"]
    title: str
    body: str


def steps(traj: Trajectory) -> list[Step]:
    out: list[Step] = []
    for t_index, turn in enumerate(traj.turns, start=1):
        out.append(Step(len(out) + 1, t_index, "user", "user", turn.input))
        for block in turn.output:
            n = len(out) + 1
            if isinstance(block, TextBlock):
                out.append(Step(n, t_index, "text", "text", block.text))
            elif isinstance(block, ThinkingBlock):
                out.append(Step(n, t_index, "thinking", "thinking", block.text))
            elif isinstance(block, ToolUse):
                out.append(Step(n, t_index, "tool", _tool_title(block), block.output or ""))
    return out


def _tool_title(use: ToolUse) -> str:
    status = " (error)" if use.is_error else ("" if use.output is not None else " (no result)")
    return f"tool {tool_call_text(use.name, use.arguments)}{status}"


def render_trajectory(console: Console, traj: Trajectory, *, source: str = "") -> None:
    """A readable overview: header, fallback attempts, each turn with its steps (tool output folded)."""
    title = f"caw trajectory {traj.session_id}" + (f" ({source})" if source else "")
    console.print(Text(title, style="bold"))
    facts = [
        ("provider", traj.agent or "-"),
        ("model", traj.model or next((t.model for t in reversed(traj.turns) if t.model), None) or "-"),
        ("effort", traj.reasoning or "-"),
        ("created", local_and_utc(traj.created_at)),
        ("cwd", traj.cwd or "-"),
        ("turns", str(len(traj.turns))),
        ("usage", f"{usage_text(traj.usage)} · {seconds_text(traj.duration_ms)}"),
    ]
    if traj.resume_handle:
        facts.append(("resume", f"caw resume {traj.resume_handle}"))
    if traj.usage_limited:
        facts.append(("limits", "this conversation ran into a usage limit"))
    if traj.pending_message is not None:
        facts.append(("pending", clip(traj.pending_message, 100) + " (not answered yet)"))
    for label, value in facts:
        console.print(Text.assemble((f"  {label:<9}", "dim"), value))
    for note in traj.notes:
        console.print(Text(f"  note     {note}", style="yellow"))
    if traj.attempts:
        console.print(Text("attempts", style="bold"))
        for a in traj.attempts:
            line = f"  {a.provider}: {a.reason}"
            if a.resets_at is not None:
                line += f", resets {local_and_utc(a.resets_at)}"
            if a.error:
                line += f" ({clip(a.error, 120)})"
            console.print(Text(line, style="green" if a.reason == "answered" else "yellow"))
    by_turn: dict[int, list[Step]] = {}
    for step in steps(traj):
        by_turn.setdefault(step.turn_index, []).append(step)
    show_cmd = f"caw traj show {shlex.quote(source) if source else 'FILE'}"
    for t_index, turn in enumerate(traj.turns, start=1):
        _render_turn(console, t_index, turn, by_turn.get(t_index, []), show_cmd)


def _render_turn(console: Console, index: int, turn: Turn, turn_steps: list[Step], show_cmd: str) -> None:
    status_style = "green" if turn.status == "completed" else "red"
    head = Text.assemble(
        (f"turn {index}", "bold"),
        " · ",
        (turn.status, status_style),
        f" · {turn.provider or '-'}" + (f" ({turn.model})" if turn.model else ""),
        f" · {usage_text(turn.usage)} · {seconds_text(turn.duration_ms)}",
    )
    console.print(head)
    if turn.error is not None:
        console.print(Text(f"  error: {turn.error.type} ({turn.error.reason}): {turn.error.message}", style="red"))
    if turn.limit is not None:
        when = local_and_utc(turn.limit.resets_at) if turn.limit.resets_at else "unknown"
        kind = turn.limit.kind + ("" if turn.limit.waitable else ", not waitable")
        console.print(Text(f"  limit: {kind}, resets {when}", style="yellow"))
    if turn.retries:
        console.print(Text(f"  the CLI retried {turn.retries} time(s) on its own", style="dim"))
    for step in turn_steps:
        _render_step_folded(console, step, show_cmd)


_STEP_STYLE = {"user": "bold blue", "text": "", "thinking": "dim italic", "tool": "cyan"}


def _render_step_folded(console: Console, step: Step, show_cmd: str) -> None:
    shown, more = fold(step.body)
    label = Text.assemble((f"  [{step.number}] ", "dim"), (step.title, _STEP_STYLE[step.kind] or "bold"))
    console.print(label)
    for line in shown:
        console.print(Text(f"      {line}", style="dim" if step.kind == "tool" else ""))
    if more:
        console.print(Text(f"      … +{more} lines ({show_cmd} --step {step.number})", style="dim"))


def render_step(out: IO[str], step: Step) -> None:
    """One step in full: a header line, then the body exactly as recorded."""
    out.write(f"step {step.number} · turn {step.turn_index} · {step.title}\n")
    out.write(step.body if step.body.endswith("\n") or not step.body else step.body + "\n")
    out.flush()


# ---- tables ---------------------------------------------------------------------------------------------
def render_doctor(console: Console, rows: list[dict[str, Any]], order: Iterable[str]) -> None:
    """``caw doctor``: a table on a terminal, one line per provider in a log (the configured order first)."""
    in_order = list(order)
    if not console.is_terminal:
        for row in rows:
            console.print(Text(_doctor_line(row, in_order)), soft_wrap=True)
        return
    show_live = any(row.get("live") is not None for row in rows)
    table = Table(title="caw doctor", title_justify="left")
    table.add_column("#", no_wrap=True)
    table.add_column("provider", no_wrap=True, style="bold")
    table.add_column("ok", no_wrap=True)
    table.add_column("version")
    table.add_column("credential", overflow="fold")
    table.add_column("cooldown until")
    if show_live:
        table.add_column("live")
    table.add_column("binary", overflow="fold")
    for row in rows:
        name = str(row.get("provider", ""))
        installed = bool(row.get("installed"))
        cooldown = row.get("cooldown_until")
        cells = [
            Text(str(in_order.index(name) + 1) if name in in_order else "-"),
            Text(name),
            Text("yes" if row.get("ok") else "no", style="green" if row.get("ok") else "red"),
            Text(str(row.get("version") or "-")) if installed else Text("not installed", style="red"),
            Text(str(row.get("credential") or "none found")),
            Text(local_and_utc(_parse_dt(cooldown)) if cooldown else "-"),
        ]
        if show_live:
            live, detail = row.get("live"), row.get("live_detail")
            cells.append(Text("-" if live is None else (f"{live}: {detail}" if detail else str(live))))
        cells.append(Text(str(row.get("binary") or "-")))
        table.add_row(*cells)
    console.print(table)


def _doctor_line(row: dict[str, Any], order: list[str]) -> str:
    name = str(row.get("provider", ""))
    rank = f"{order.index(name) + 1}. " if name in order else "-  "
    if not row.get("installed"):
        return f"{rank}{name}: not installed"
    parts = [f"{row.get('version') or 'unknown version'} at {row.get('binary')}"]
    parts.append(f"credential: {row.get('credential') or 'none found'}")
    if row.get("cooldown_until"):
        parts.append(f"usage limit until {local_and_utc(_parse_dt(row['cooldown_until']))}")
    if row.get("live") is not None:
        detail = f" ({row['live_detail']})" if row.get("live_detail") else ""
        parts.append(f"live: {row['live']}{detail}")
    return f"{rank}{name}: {'ok' if row.get('ok') else 'NOT ok'} — " + "; ".join(parts)


def _parse_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def render_sessions(console: Console, infos: Iterable[Any]) -> None:
    """``caw sessions``: newest first, two lines each (facts, then the resume command)."""
    count = 0
    for info in infos:
        count += 1
        head = Text.assemble(
            (info.session_id, "bold"),
            f"  {info.provider or '-':<8}  {local_and_utc(info.created_at)}  {info.turns} turn(s)  ",
            (json.dumps(clip(info.first_prompt, 60), ensure_ascii=False), "italic"),
        )
        console.print(head, soft_wrap=True)
        if info.resume_handle:
            console.print(Text(f"  caw resume {info.resume_handle}", style="dim"), soft_wrap=True)
        else:
            console.print(Text("  (no resume handle: no turn finished)", style="dim"))
    if count == 0:
        console.print(Text("no sessions", style="dim"))


def session_json(info: Any) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "provider": info.provider,
        "created_at": info.created_at.isoformat(),
        "first_prompt": info.first_prompt,
        "turns": info.turns,
        "resume_handle": info.resume_handle,
        "path": str(info.path),
    }


__all__ = [
    "LiveView",
    "Mode",
    "Outcome",
    "Step",
    "View",
    "clip",
    "fold",
    "footer_text",
    "local_and_utc",
    "make_view",
    "render_doctor",
    "render_sessions",
    "render_step",
    "render_trajectory",
    "session_json",
    "steps",
]
