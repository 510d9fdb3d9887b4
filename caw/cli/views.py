"""What the ``caw`` command shows: the views of a turn (plain, quiet, JSON, JSONL; the live one in ``live``).

Everything here writes to streams handed in by ``caw.cli``; nothing decides exit codes, and nothing imports
rich: the live view (``caw.cli.live``), the tables (``caw.cli.reports``) and the countdown
(``caw.cli.countdown``) do, and only a terminal or a report loads them.

Output modes of ``caw run`` / ``caw resume`` (``caw.cli.runner.make_view``):

* ``live``: stdout is a terminal; text as it arrives, one line per tool call, a spinner while the agent
  works, a usage/cost/duration footer;
* ``plain``: no terminal, no mode flag; progress lines on stderr, the result text on stdout at the end;
* ``quiet``: only the result text on stdout;
* ``json``: the final trajectory (plus ``resume_handle``, ``exit_code``, ``error``) on stdout;
* ``jsonl``: one event per line as it arrives (each line validates against ``caw.events.EVENT_ADAPTER``).

The live view is ``caw.cli.live.LiveView``: the other modes never import rich.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any, ClassVar, Literal, Protocol

from caw.events import (
    CawSessionEvent,
    ErrorEvent,
    ErrorKind,
    Event,
    LimitWaitEvent,
    RateLimitEvent,
    RawEvent,
    ResultEvent,
    TextEvent,
    ThinkingEvent,
    UsageEvent,
    event_summary,
)
from caw.models import ToolGroup, Trajectory, Turn, UsageStats
from caw.text import clip

Mode = Literal["live", "plain", "quiet", "json", "jsonl"]

#: lines of a tool's output shown in the live view and in ``caw traj show`` before folding
FOLD_LINES = 3


# ---- small formatting helpers ---------------------------------------------------------------------------
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


def footer_text(traj: Trajectory | None, turn: Turn | None, waited_ms: int = 0) -> str:
    """``claude · sonnet · 12,071 in · 44 out · $0.0615 · 3.2s · waited 2h 03m for a limit · s:3f2a9c1b``.

    The turn just run; ``waited_ms``: time spent waiting for usage limits before it answered; ``s:`` is the
    start of caw's session id (``caw sessions``, ``caw resume <id>``).
    """
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
    if waited_ms > 0:
        parts.append(f"waited {seconds_text(waited_ms)} for a limit")
    if traj is not None and traj.session_id:
        parts.append(f"s:{traj.session_id[:8]}")
    return " · ".join(parts)


# ---- what a run ended with ------------------------------------------------------------------------------
#: the usage figures ``caw run`` reports in ``--json``, the step outputs and the step summary (issue 16)
USAGE_KEYS = ("cost_usd", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


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
    #: milliseconds spent waiting for usage limits during the run (the footer says it)
    waited_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def result(self) -> str:
        if self.turn is None or not self.ok:
            return ""
        if self.turn.parsed is not None:  # caw run --schema: the validated JSON (issue 16)
            return json.dumps(self.turn.model_dump(mode="json")["parsed"], ensure_ascii=False)
        return self.turn.result

    def to_json(self) -> dict[str, Any]:
        """``Trajectory.to_dict()`` plus ``resume_handle``, ``exit_code`` and ``error`` (what ``--json`` prints)."""
        data: dict[str, Any] = self.trajectory.to_dict() if self.trajectory is not None else {}
        data["resume_handle"] = self.resume_handle
        data["exit_code"] = self.exit_code
        data["error"] = self.error
        usage = self.trajectory.usage if self.trajectory is not None else None  # issue 16: the run's totals
        for key in USAGE_KEYS:
            data[key] = getattr(usage, key) if usage is not None else None
        return data


#: the --tools group that allows a tool, by the names the three CLIs give their tools (for the hint only)
_GROUP_OF_TOOL: dict[str, ToolGroup] = {
    **dict.fromkeys(("read", "glob", "grep", "list", "lsp"), ToolGroup.READER),
    **dict.fromkeys(("edit", "write", "multiedit", "notebookedit", "apply_patch", "patch"), ToolGroup.WRITER),
    **dict.fromkeys(("bash", "exec_command", "shell", "taskoutput", "taskstop"), ToolGroup.EXEC),
    **dict.fromkeys(("webfetch", "websearch", "web_search"), ToolGroup.WEB),
    "task": ToolGroup.PARALLEL,
}


def refusal_warning(turn: Turn | None, granted: ToolGroup | None) -> str | None:
    """The end-of-run line for tool uses the CLI refused (issue 12: a "completed" turn that changed nothing).

    ``granted`` is what ``--tools`` asked for (None: the CLI's defaults, which read). None when nothing was
    refused.

    >>> turn = Turn(input="Fix it", provider="claude", denied_tools=["Edit", "Bash", "Edit"])
    >>> refusal_warning(turn, None)
    'claude refused 3 tool uses (Edit, Bash) — allow them with --tools reader,writer,exec'
    """
    if turn is None or not turn.denied_tools:
        return None
    names = list(dict.fromkeys(turn.denied_tools))
    needed = ToolGroup.NONE
    for name in names:
        needed |= _GROUP_OF_TOOL.get(name.lower().removeprefix("mcp__"), ToolGroup.NONE)
    count = len(turn.denied_tools)
    what = f"{turn.provider or 'the CLI'} refused {count} tool use{'s' if count != 1 else ''} ({', '.join(names)})"
    if not needed or (granted is not None and needed in granted):
        return f"{what} — its own permission settings refused them"
    groups = (ToolGroup.READER if granted is None else granted) | needed
    spelled = ",".join(str(m.name).lower() for m in ToolGroup if m in groups)
    return f"{what} — allow them with --tools {spelled}"


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
            return  # caw.policy.autowait prints its own wait lines on stderr
        if isinstance(ev, RawEvent) and not self.debug:
            return  # issue 12: frames caw does not read (claude's task_* notices) say nothing to a person
        self.err.write(f"caw: {event_summary(ev)}\n")
        self.err.flush()

    def finish(self, outcome: Outcome) -> None:
        if outcome.ok:
            self.err.write(f"caw: done: {footer_text(outcome.trajectory, outcome.turn, outcome.waited_ms)}\n")
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

    A failure that the stream itself did not end with (provider not installed, every provider failed, a
    usage error) is reported as a fatal ``error`` event; an interrupted turn ends with the non-fatal
    ``error`` of kind ``cancelled``. The last line is always caw's ``caw_session`` event (caw's session id,
    the resume handle, the exit code), so a consumer reading only stdout learns how the run ended and how
    to continue it.
    """

    _KIND_BY_CODE: ClassVar[dict[int, ErrorKind]] = {
        2: "invalid_request", 3: "cli", 4: "auth", 75: "rate_limit", 130: "cancelled",
    }  # fmt: skip

    def __init__(self, out: IO[str], err: IO[str], *, debug: bool = False) -> None:
        super().__init__(out, err, debug=debug)
        self._ended_with_error = False

    def event(self, ev: Event) -> None:
        self.out.write(ev.model_dump_json() + "\n")
        self.out.flush()
        self._ended_with_error = isinstance(ev, ErrorEvent) and (ev.fatal or ev.kind == "cancelled")

    def finish(self, outcome: Outcome) -> None:
        if not outcome.ok and not self._ended_with_error:
            kind = outcome.error_kind or self._KIND_BY_CODE.get(outcome.exit_code, "unknown")
            message = outcome.error or "failed"
            self.event(ErrorEvent(provider=outcome.provider, kind=kind, message=message, fatal=kind != "cancelled"))
        traj = outcome.trajectory
        if traj is not None:
            self.event(
                CawSessionEvent(
                    provider=traj.agent or outcome.provider,
                    session_id=traj.session_id,
                    resume_handle=outcome.resume_handle,
                    provider_session_id=traj.provider_session_id,
                    exit_code=outcome.exit_code,
                )
            )


#: the views that need no terminal, by output mode (``caw.cli.runner.make_view`` adds ``live``)
PLAIN_VIEWS: dict[str, type[_Base]] = {"plain": PlainView, "quiet": QuietView, "json": JsonView, "jsonl": JsonlView}


__all__ = [
    "PLAIN_VIEWS",
    "JsonView",
    "JsonlView",
    "Mode",
    "Outcome",
    "PlainView",
    "QuietView",
    "View",
    "clip",
    "fold",
    "footer_text",
    "local_and_utc",
]
