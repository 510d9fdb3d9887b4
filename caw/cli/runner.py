"""One turn from the command line: open the session, stream it into the view, handle signals, report the end."""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, cast

from caw.agent import Agent
from caw.cli.args import PromptSource, RunArgs, parse_tools
from caw.cli.exit_codes import UsageProblem, failure_for
from caw.cli.views import PLAIN_VIEWS, Mode, Outcome, View, refusal_warning
from caw.errors import (
    CawError,
    CawTimeoutError,
    TurnCancelled,
    TurnFailed,
    UsageLimitError,
)
from caw.events import Event, LimitWaitEvent
from caw.models import ToolGroup, Trajectory, Turn
from caw.redact import NO_REDACTION, Redactor

if TYPE_CHECKING:
    import typer

    from caw.session import Session


# ---- running a turn -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CliContext:
    """What a program embedding the ``caw`` app hands every command, as click's context object.

    ``agent_options`` are extra ``Agent`` options, applied over the ones the command line builds: a
    ``runner`` (``caw.session.runner.TurnRunner``), a ``clock`` and ``sleeper`` for limit waits, ... Tests
    drive the real Agent and Session this way, with no process::

        CliRunner().invoke(app, ["run", "hi"], obj=CliContext(agent_options={"runner": scripted}))
    """

    agent_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: typer.Context | None) -> CliContext:
        """The context handed to ``app(obj=...)`` / ``CliRunner.invoke(obj=...)``, else the empty one."""
        found = ctx.find_object(CliContext) if ctx is not None else None
        return found if found is not None else cls()


def make_agent(context: CliContext | None = None, /, **kwargs: Any) -> Agent:
    """The Agent every command runs: the command line's options, then the embedding program's (``context``)."""
    extra = context.agent_options if context is not None else {}
    return Agent(**{**kwargs, **extra})


class _ViewLogger:
    """The session's warnings (fallback skips, storage problems) forwarded to the view.

    The session logs every event at info level too; the view already gets each event from the stream (and
    prints it itself under ``--debug``), so forwarding those would print every line twice.
    """

    def __init__(self, view: View) -> None:
        self._view = view

    def info(self, msg: str) -> None:
        pass

    def warn(self, msg: str) -> None:
        self._view.log("warn", msg)

    def error(self, msg: str) -> None:
        self._view.log("error", msg)


class _Interrupts:
    """SIGINT / SIGTERM during a run: cancel the session (the partial turn is kept), then exit 130.

    The cancel runs on a thread, because it waits for the CLI's process tree to be gone while the main
    thread is still reading the CLI's output. A second signal hurries the stop (the CLI's process tree is
    killed without its grace period) but never skips saving the session or printing its resume handle: the
    handlers stay in place until the run has reported its end. Before a session exists there is nothing to
    save, and a signal stops at once (KeyboardInterrupt).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.session: Session | None = None
        self._previous: dict[int, Any] = {}
        self.received: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        session = self.session
        if session is None:
            raise KeyboardInterrupt
        hurry = self.received is not None
        self.received = self.received or signum
        cancel = functools.partial(session.cancel, now=hurry)
        threading.Thread(target=cancel, name="caw-cancel", daemon=True).start()

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _open_session(args: RunArgs, view: View, handle: str | None, context: CliContext) -> tuple[Agent, Session]:
    agent = make_agent(context, logger=_ViewLogger(view), **args.agent_kwargs())
    if handle is not None:
        return agent, agent.resume_session(handle, traj_path=args.save, one_turn=True)
    return agent, agent.start_session(traj_path=args.save, one_turn=True)


def _pending_prompt(session: Session) -> str:
    """What to send when ``caw resume`` gets no prompt: the message a limit or an interrupt left unanswered."""
    pending = session.trajectory.pending_message
    if not pending:
        return ""
    if session.provider:
        from caw.providers import get_provider

        # the CLI may already hold the message in its history (claude does): don't send it twice
        return get_provider(session.provider).continuation_prompt(pending)
    return pending


def _order_label(order: tuple[str, ...]) -> str:
    return order[0] + (f" (then {', '.join(order[1:])})" if len(order) > 1 else "")


class _Waits:
    """The usage-limit waits of a run, from its ``LimitWaitEvent``s (one wait repeats its event every few
    minutes with the same ``wake_at``): how long they took, for the footer."""

    def __init__(self) -> None:
        self._waits: dict[datetime, float] = {}

    def see(self, ev: Event) -> None:
        if isinstance(ev, LimitWaitEvent) and ev.started_at is not None:
            self._waits[ev.wake_at] = max(0.0, (ev.wake_at - ev.started_at).total_seconds())

    @property
    def ms(self) -> int:
        return int(sum(self._waits.values()) * 1000)


def _stream_turn(session: Session, prompt: str, view: View, waits: _Waits, output: Any = None) -> Turn:
    with session.stream(prompt, output=output) as stream:  # closing the stream on any exit stops the CLI
        for ev in stream:
            waits.see(ev)
            view.event(ev)
        turn = stream.turn
    if turn.status != "completed":  # never report a turn that did not complete as a success
        raise TurnFailed(turn.provider, f"the turn ended as {turn.status}", turn=turn)
    return turn


def _resume_handle(session: Session | None, exc: BaseException | None) -> str | None:
    handle = getattr(exc, "resume_handle", None)
    if isinstance(handle, str) and handle:
        return handle
    if session is None:
        return None
    try:
        return session.resume_handle
    except CawError:
        return session.trajectory.resume_handle


def _debug_dump(exc: BaseException) -> None:
    err = sys.stderr
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=err)
    for sub in [exc, *getattr(exc, "errors", [])]:
        tail = getattr(sub, "stderr_tail", "")
        if tail:
            who = getattr(sub, "provider", "") or "the CLI"
            err.write(f"caw: --- stderr of {who} (tail) ---\n{tail[-4000:].rstrip()}\n")
    err.flush()


#: failures after which the message is still unanswered (and worth continuing later)
_UNANSWERED = (UsageLimitError, CawTimeoutError, TurnCancelled, KeyboardInterrupt)


class RedactingStream:
    """A text stream that masks secrets in every write (issue 17.4): the view prints through it.

    ``redact`` starts as the key patterns alone (no session yet) and becomes the session's own once it opens.
    A secret split across two writes (model text streamed in pieces) is not seen; whole blocks are.
    """

    def __init__(self, stream: IO[str], redact: Callable[[str], str]) -> None:
        self.stream = stream
        self.redact = redact

    def write(self, text: str) -> int:
        self.stream.write(self.redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, flush, encoding: the wrapped stream's
        return getattr(self.stream, name)


def make_view(mode: Mode, out: IO[str], err: IO[str], *, debug: bool = False) -> View:
    """The view for an output mode (``live`` draws on ``out``, which must be a terminal)."""
    if mode == "live":
        # only a terminal pays for rich: --quiet, --json, --jsonl and plain output never import it (issue 18)
        from rich.console import Console

        from caw.cli.live import LiveView

        return LiveView(Console(file=out, highlight=False), debug=debug)
    return PLAIN_VIEWS[mode](out, err, debug=debug)


def execute(args: RunArgs, prompt: PromptSource, handle: str | None, context: CliContext | None = None) -> int:
    """Run one turn (new conversation, or ``handle``'s) and report it in the chosen output mode."""
    with _Interrupts() as interrupts:
        return _execute(args, prompt, handle, context, interrupts)


def _execute(
    args: RunArgs, prompt: PromptSource, handle: str | None, context: CliContext | None, interrupts: _Interrupts
) -> int:
    off = os.environ.get("CAW_REDACT", "1").strip() in ("0", "off")
    out, err = (RedactingStream(s, NO_REDACTION if off else Redactor()) for s in (sys.stdout, sys.stderr))
    view = make_view(args.mode(), cast("IO[str]", out), cast("IO[str]", err), debug=args.debug)
    session: Session | None = None
    turn: Turn | None = None
    unanswered: str | None = None  # the user's message, as it should be continued later
    waits = _Waits()
    try:
        text = prompt.read()
        if text is None and handle is None:
            raise UsageProblem("no prompt given", 'pass it as an argument (`caw run "..."`), `-` for stdin, or --file')
        if text is not None and not text.strip():
            raise UsageProblem("the prompt is empty", "nothing to send")
        agent, session = _open_session(args, view, handle, context or CliContext())
        interrupts.session = session
        out.redact = err.redact = session.redact
        unanswered = text if text is not None else session.trajectory.pending_message
        if text is None:
            text = _pending_prompt(session)
            if not text:
                raise UsageProblem(
                    "no prompt given, and this conversation has no unanswered message to continue",
                    'pass a prompt: `caw resume HANDLE "..."` (or `-` for stdin)',
                )
        view.start(session.provider or _order_label(agent.order))
        turn = _stream_turn(session, text, view, waits, args.output_schema())  # --schema (issue 16)
        if interrupts.received is not None:
            raise TurnCancelled(f"stopped by signal {signal.Signals(interrupts.received).name}", turn=turn)
        if session.trajectory.pending_message == unanswered:
            session.trajectory.pending_message = None  # answered now
    except SystemExit:
        raise
    except BaseException as exc:
        if isinstance(exc, _UNANSWERED) and session is not None and unanswered:
            session.trajectory.pending_message = unanswered  # `caw resume <handle>` without a prompt sends it
        if args.debug:
            _debug_dump(exc)
        turn = turn or getattr(exc, "turn", None)
        return _finish(args, view, session, turn, exc, fresh=handle is None, waited_ms=waits.ms, err=err)
    return _finish(args, view, session, turn, None, fresh=handle is None, waited_ms=waits.ms, err=err)


def _finish(
    args: RunArgs,
    view: View,
    session: Session | None,
    turn: Turn | None,
    error: BaseException | None,
    *,
    fresh: bool,
    waited_ms: int = 0,
    err: RedactingStream | None = None,
) -> int:
    """End the session, show the outcome, write the CI files; the exit code."""
    stderr = err or RedactingStream(sys.stderr, session.redact if session is not None else Redactor())
    traj = session.end() if session is not None else None
    resume_handle = _resume_handle(session, error)
    failure = failure_for(error, handle=resume_handle, fresh=fresh) if error is not None else None
    outcome = Outcome(
        exit_code=int(failure.code) if failure else 0,
        trajectory=traj,
        turn=turn,
        error=failure.line if failure else None,
        resume_handle=resume_handle,
        provider=(failure.provider if failure else "") or (traj.agent if traj else ""),
        resets_at=failure.resets_at if failure else None,
        error_kind=failure.kind if failure else None,
        waited_ms=waited_ms,
    )
    view.finish(outcome)
    if args.html is not None and traj is not None:
        _write_html(args.html, traj, session, stderr)
    refused = refusal_warning(turn or getattr(error, "turn", None), _granted(args))
    if refused:
        stderr.write(f"caw: warning: {refused}\n")
    if failure is not None:
        stderr.write(f"caw: error: {failure.line}\n")
    elif resume_handle and args.mode() != "quiet":
        stderr.write(f"caw: resume with: caw resume {resume_handle}\n")
    stderr.flush()
    from caw.cli import ci

    ci.report(outcome, os.environ, stderr.redact)
    REPORTED.append(outcome.exit_code)
    return outcome.exit_code


def _write_html(path: Path, traj: Trajectory, session: Session | None, stderr: RedactingStream) -> None:
    """``--html FILE``: the report of the run's trajectory, masked like the saved files (issue 17.4)."""
    import json

    from caw.errors import StorageError
    from caw.state.store import atomic_write_text
    from caw.viewer.html import render_report
    from caw.viewer.source import Source

    raw = traj.to_dict()
    if session is not None:  # masked as trajectory.json is: the JSON text, then parsed back
        raw = json.loads(session.redact(json.dumps(raw, ensure_ascii=False)))
    base = getattr(session, "session_dir", None)
    source = Source(Trajectory.from_dict(raw), raw, base if isinstance(base, Path) else None, traj.session_id)
    try:
        atomic_write_text(path, render_report(source))
    except StorageError as exc:  # the run itself is over: its exit code stands, the report is a warning
        stderr.write(f"caw: warning: --html: {exc}\n")


#: the exit codes of the runs this process has reported (``caw.cli.main`` exits with the last one when a
#: late signal arrives after the report: the report already said everything)
REPORTED: list[int] = []


def _granted(args: RunArgs) -> ToolGroup | None:
    try:
        return parse_tools(args.tools) if args.tools is not None else None
    except UsageProblem:
        return None


def guard(debug: bool, body: Any) -> int:
    """Run a command body that is not a turn; map any failure through ``failure_for``."""
    import typer  # only typer's commands call this, so it is loaded already

    try:
        code: int = body()
        return code
    except (SystemExit, typer.Exit):
        raise
    except BaseException as exc:
        if debug:
            _debug_dump(exc)
        failure = failure_for(exc)
        sys.stderr.write(f"caw: error: {failure.line}\n")
        return int(failure.code)
