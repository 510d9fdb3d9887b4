"""The ``caw`` command (typer): run, resume, sessions, doctor, traj show, schema, chat.

The commands are thin: they collect their options and call one shared runner (``_execute``) or a small
body. Two rules hold for every command:

* every failure becomes ONE line on stderr, ``caw: error: <what happened> — <what to do>``, never a
  traceback (``--debug`` adds the traceback and the CLI's stderr tail);
* ``failure_for`` is the only place an exception becomes an exit code (the contract in docs/ci.md):

  ===  ==========================================================================================
  0    success
  1    the agent's turn failed (model API error, context overflow, conversation gone, a crash after
       the first turn, anything unexpected)
  2    usage error (bad flags, empty prompt, invalid resume handle, bad configuration)
  3    no provider available (not installed, or every provider failed to start)
  4    authentication or account (logged out, bad key; out of credits / spend cap)
  75   rate-limited beyond ``--max-wait`` or with ``--no-wait`` (EX_TEMPFAIL: requeue the job)
  124  a timeout (``--timeout``, ``--idle-timeout``)
  130  interrupted (Ctrl-C, SIGTERM)
  ===  ==========================================================================================
"""

from __future__ import annotations

import enum
import json
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
    CawError,
    CawTimeoutError,
    ConfigurationError,
    ContextOverflowError,
    ConversationNotFound,
    InvalidResumeHandle,
    ProviderCrashed,
    ProviderError,
    ProviderNotInstalled,
    SessionStateError,
    TurnCancelled,
    TurnFailed,
    UsageLimitError,
)
from caw.events import ErrorKind
from caw.models import ToolGroup, Trajectory, Turn
from caw.render import Mode, Outcome, View, clip, local_and_utc, make_view

if TYPE_CHECKING:
    from caw.agent import Agent
    from caw.session import Session


class ExitCode(enum.IntEnum):
    """The exit codes of ``caw`` (docs/ci.md)."""

    OK = 0
    TURN_FAILED = 1
    USAGE = 2
    NO_PROVIDER = 3
    AUTH = 4
    RATE_LIMITED = 75  # EX_TEMPFAIL
    TIMEOUT = 124  # what timeout(1) uses
    INTERRUPTED = 130  # 128 + SIGINT


INSTALL = {
    "claude": "npm install -g @anthropic-ai/claude-code",
    "codex": "npm install -g @openai/codex",
    "opencode": "npm install -g opencode-ai",
}
LOGIN = {
    "claude": "run `claude /login` or set ANTHROPIC_API_KEY",
    "codex": "run `codex login` or set OPENAI_API_KEY",
    "opencode": "run `opencode auth login`",
}


class UsageProblem(Exception):
    """A command line caw cannot act on (what the parser cannot check itself). Exit code 2."""

    def __init__(self, what: str, todo: str = "see `caw --help`") -> None:
        super().__init__(what)
        self.what = what
        self.todo = todo


@dataclass(frozen=True)
class Failure:
    """How a run failed: the exit code and the one line a person reads."""

    code: ExitCode
    what: str
    todo: str = ""
    provider: str = ""
    resets_at: datetime | None = None
    #: the class in the event schema's terms when the exit code alone does not say it (money: "billing")
    kind: ErrorKind | None = None

    @property
    def line(self) -> str:
        text = f"{self.what} — {self.todo}" if self.todo else self.what
        return " ".join(text.split())  # one line, whatever the CLI's message contained


# ---- the one place errors become exit codes ------------------------------------------------------------
def failure_for(exc: BaseException, *, handle: str | None = None, fresh: bool = True) -> Failure:
    """Map an exception onto an exit code and a message saying what happened and what to do.

    ``handle``: the conversation's resume handle, when there is one (the message says how to resume).
    ``fresh``: the failing turn was the conversation's first (a crash then means the CLI cannot run: 3).
    """
    resume = f"resume with `caw resume {handle}`" if handle else ""
    if isinstance(exc, KeyboardInterrupt | TurnCancelled):
        what = "interrupted"
        if isinstance(exc, TurnCancelled) and str(exc) not in ("", "the turn was cancelled"):
            what = f"interrupted ({str(exc).split(';')[0]})"
        return Failure(ExitCode.INTERRUPTED, what, resume or "run the command again")
    if isinstance(exc, UsageProblem):
        return Failure(ExitCode.USAGE, exc.what, exc.todo)
    if isinstance(exc, InvalidResumeHandle):
        return Failure(
            ExitCode.USAGE,
            f"invalid resume handle: {exc}",
            "pass the whole `caw1_…` string printed after a run (or a session id from `caw sessions`)",
        )
    if isinstance(exc, ConfigurationError | SessionStateError):
        return Failure(ExitCode.USAGE, str(exc), "see `caw run --help`")
    if isinstance(exc, AllProvidersFailed):
        return _all_failed(exc)
    if isinstance(exc, ProviderNotInstalled):
        return Failure(
            ExitCode.NO_PROVIDER,
            f"{exc.provider} is not installed (the `{exc.binary}` command was not found)",
            _install_hint(exc.provider),
            provider=exc.provider,
        )
    if isinstance(exc, AuthenticationError):
        return Failure(
            ExitCode.AUTH,
            f"{exc.provider} could not authenticate: {exc.detail}",
            _login_hint(exc.provider),
            provider=exc.provider,
        )
    if isinstance(exc, UsageLimitError):
        return _limit_failure(exc, handle)
    if isinstance(exc, CawTimeoutError):
        todo = "raise --timeout / --idle-timeout" + (f", or {resume}" if resume else "")
        return Failure(ExitCode.TIMEOUT, str(exc), todo, provider=exc.provider)
    if isinstance(exc, ProviderCrashed):
        todo = "run with --debug to see its stderr"
        if fresh:
            todo += "; `caw doctor` checks the installation"
        elif resume:
            todo += f"; then {resume}"
        code = ExitCode.NO_PROVIDER if fresh else ExitCode.TURN_FAILED
        return Failure(code, f"{exc.provider} exited without finishing the turn: {exc.detail}", todo, exc.provider)
    if isinstance(exc, ContextOverflowError):
        return Failure(
            ExitCode.TURN_FAILED,
            f"{exc.provider}: the conversation no longer fits the model's context window ({exc.detail})",
            "start a new conversation with `caw run`",
            exc.provider,
        )
    if isinstance(exc, ConversationNotFound):
        return Failure(
            ExitCode.TURN_FAILED,
            f"{exc.provider} no longer has this conversation ({exc.detail})",
            "start a new one with `caw run`; a handle resumes only where the CLI keeps its history "
            "(same machine and config home)",
            exc.provider,
        )
    if isinstance(exc, ProviderError):
        what = f"{exc.provider}: the turn failed: {exc.detail}"
        if isinstance(exc, TurnFailed) and exc.status:
            what += f" (HTTP {exc.status})"
        return Failure(
            ExitCode.TURN_FAILED,
            what,
            "retry later or try another provider (--provider); --debug shows the CLI's stderr"
            + (f"; {resume}" if resume else ""),
            exc.provider,
        )
    if isinstance(exc, CawError):
        return Failure(ExitCode.TURN_FAILED, str(exc), resume or "rerun with --debug for details")
    return Failure(
        ExitCode.TURN_FAILED,
        f"internal error: {type(exc).__name__}: {exc}",
        "rerun with --debug and report it at the caw issue tracker",
    )


def _install_hint(provider: str) -> str:
    how = INSTALL.get(provider)
    binvar = f"CAW_{provider.upper()}_BIN"
    return f"install it with `{how}`, or set {binvar} to its path" if how else f"set {binvar} to its path"


def _login_hint(provider: str) -> str:
    return f"log in: {LOGIN[provider]}" if provider in LOGIN else f"check {provider}'s login"


def _limit_failure(exc: UsageLimitError, handle: str | None) -> Failure:
    original = exc.__cause__ if isinstance(exc.__cause__, UsageLimitError) else exc
    detail = clip(original.detail, 120)
    if not exc.waitable:  # money, not time: requeueing would spin forever
        return Failure(
            ExitCode.AUTH,
            f"{exc.provider} is out of credits or over its spend cap ({detail}); waiting will not help",
            "add credits or raise the spend cap, or use another provider (--provider)",
            exc.provider,
            kind="billing",
        )
    when = f"it resets at {local_and_utc(exc.resets_at)}" if exc.resets_at else "the reset time is unknown"
    resume = f"resume after the reset with `caw resume {handle}`" if handle else "run it again after the reset"
    return Failure(
        ExitCode.RATE_LIMITED,
        f"{exc.provider} hit its {exc.kind or 'rate'} usage limit ({detail}); {when}",
        f"{resume}, or rerun with a --max-wait longer than the time to the reset (exit 75: requeue the job)",
        exc.provider,
        exc.resets_at,
    )


def _failure_class(exc: BaseException) -> str:
    if isinstance(exc, ProviderNotInstalled):
        return "not_installed"
    if isinstance(exc, UsageLimitError):
        return "limit" if exc.waitable else "money"
    if isinstance(exc, AuthenticationError):
        return "auth"
    if isinstance(exc, CawTimeoutError):
        return "timeout"
    return "other"


def _all_failed(exc: AllProvidersFailed) -> Failure:
    """Every provider failed: report the most actionable class (the rule is documented in docs/ci.md).

    Providers that are not installed do not count as long as some provider was installed. Of the rest:
    all usage limits (or cooldowns) -> 75; any auth / money problem -> 4; all timeouts -> 124; else -> 3.
    """
    classes: list[tuple[str, BaseException | None]] = [(_failure_class(e), e) for e in exc.errors]
    classes += [("limit", None) for a in exc.attempts if getattr(a, "reason", "") == "cooldown"]
    kinds = {c for c, _ in classes if c != "not_installed"}
    what = str(exc)
    if kinds == {"limit"}:
        resets = [a.resets_at for a in exc.attempts if getattr(a, "resets_at", None) is not None]
        resets += [e.resets_at for _, e in classes if isinstance(e, UsageLimitError) and e.resets_at is not None]
        earliest = min(resets) if resets else None
        todo = f"requeue the job after {local_and_utc(earliest)}" if earliest else "requeue the job later"
        return Failure(ExitCode.RATE_LIMITED, what, f"{todo} (exit 75), or let caw wait with --max-wait", "", earliest)
    if kinds & {"auth", "money"}:
        hints = [f"{e.provider}: {_login_hint(e.provider)}" for c, e in classes if isinstance(e, AuthenticationError)]
        if hints:
            return Failure(ExitCode.AUTH, what, "; ".join(hints))
        return Failure(ExitCode.AUTH, what, "add credits or raise the spend cap", kind="billing")
    if kinds == {"timeout"}:
        return Failure(ExitCode.TIMEOUT, what, "raise --timeout / --idle-timeout")
    hints = [f"{e.provider}: {_install_hint(e.provider)}" for _, e in classes if isinstance(e, ProviderNotInstalled)]
    return Failure(ExitCode.NO_PROVIDER, what, "; ".join([*hints, "`caw doctor` shows what is usable"]))


# ---- shared options of run / resume ------------------------------------------------------------------
@dataclass(frozen=True)
class RunArgs:
    """The options ``caw run`` and ``caw resume`` share, as typed on the command line."""

    provider: str | None = None
    model: str | None = None
    effort: str | None = None
    tools: str | None = None
    system_prompt: str | None = None
    cwd: Path | None = None
    data_dir: Path | None = None
    max_wait: str | None = None
    no_wait: bool = False
    timeout: str | None = None
    idle_timeout: str | None = None
    save: Path | None = None
    json: bool = False
    jsonl: bool = False
    quiet: bool = False
    debug: bool = False

    def mode(self) -> Mode:
        if self.jsonl:
            return "jsonl"
        if self.json:
            return "json"
        if self.quiet:
            return "quiet"
        return "live" if _isatty(sys.stdout) else "plain"

    def agent_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``caw.Agent``. Raises UsageProblem for values no provider could take."""
        if sum((self.json, self.jsonl, self.quiet)) > 1:
            raise UsageProblem("--json, --jsonl and --quiet exclude each other", "pick one output mode")
        if self.no_wait and self.max_wait is not None:
            raise UsageProblem("--no-wait and --max-wait exclude each other", "pick one")
        kw: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "reasoning": self.effort,
            "system_prompt": self.system_prompt,
            "data_dir": self.data_dir or _default_data_dir(),
        }
        if self.tools is not None:
            kw["tools"] = parse_tools(self.tools)
        if self.cwd is not None:
            if not self.cwd.is_dir():
                raise UsageProblem(f"--cwd {self.cwd}: no such directory", "pass an existing directory")
            kw["cwd"] = str(self.cwd.resolve())
        if self.no_wait:
            kw["auto_wait"] = False
        if self.max_wait is not None:
            kw["auto_wait"] = True
            kw["max_wait"] = parse_duration_arg("--max-wait", self.max_wait)
        if self.timeout is not None:
            kw["timeout"] = parse_duration_arg("--timeout", self.timeout)
        if self.idle_timeout is not None:
            kw["idle_timeout"] = parse_duration_arg("--idle-timeout", self.idle_timeout)
        return kw


def parse_tools(text: str) -> ToolGroup:
    """``reader,writer`` -> READER|WRITER; ``all,-web`` subtracts; names are ToolGroup members, any case.

    >>> parse_tools("reader,exec") == ToolGroup.READER | ToolGroup.EXEC
    True
    """
    result = ToolGroup.NONE
    names = ", ".join(m.lower() for m in ToolGroup.__members__)
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        subtract = part.startswith("-")
        name = part.lstrip("+-").strip().upper().replace("-", "_")
        member = ToolGroup.__members__.get(name)
        if member is None:
            raise UsageProblem(f"--tools: unknown tool group {part!r}", f"use a comma list of: {names}")
        result = result - member if subtract else result | member
    return result


def parse_duration_arg(flag: str, text: str) -> float:
    """Seconds in ``6h``, ``90m``, ``45s``, ``1h30m`` or plain seconds; a bad value is a usage error."""
    from caw.ratelimit import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageProblem(f"{flag} {text!r}: {exc}", "use e.g. 30s, 10m, 6h or 1h30m") from None


def _default_data_dir() -> Path:
    from caw.store import default_data_dir

    return default_data_dir()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass(frozen=True)
class PromptSource:
    """Where the prompt comes from: the argument (``-`` = stdin) or ``--file`` (``-`` = stdin too)."""

    text: str | None = None
    file: Path | None = None

    def read(self) -> str | None:
        if self.text is not None and self.file is not None:
            raise UsageProblem("give the prompt either as an argument or with --file, not both")
        if self.file is not None:
            if str(self.file) == "-":
                return sys.stdin.read()
            try:
                return self.file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageProblem(
                    f"cannot read --file {self.file}: {exc}", "pass a readable UTF-8 text file"
                ) from None
        if self.text == "-":
            return sys.stdin.read()
        return self.text


# ---- running a turn -----------------------------------------------------------------------------------
class _ViewLogger:
    """The session's logger (fallback skips, limit waits) forwarded to the view."""

    def __init__(self, view: View) -> None:
        self._view = view

    def info(self, msg: str) -> None:
        self._view.log("info", msg)

    def warn(self, msg: str) -> None:
        self._view.log("warn", msg)

    def error(self, msg: str) -> None:
        self._view.log("error", msg)


class _Interrupts:
    """SIGINT / SIGTERM during a turn: cancel the session (the partial turn is kept), then exit 130.

    The cancel runs on a thread, because it waits for the CLI's process tree to be gone while the main
    thread is still reading the CLI's output. A second signal stops at once (KeyboardInterrupt).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, session: Session) -> None:
        self._session = session
        self._previous: dict[int, Any] = {}
        self.received: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        threading.Thread(target=self._session.cancel, name="caw-cancel", daemon=True).start()

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _open_session(args: RunArgs, view: View, handle: str | None) -> tuple[Agent, Session]:
    import caw  # looked up at call time, so tests can replace caw.Agent

    agent: Agent = caw.Agent(logger=_ViewLogger(view), **args.agent_kwargs())
    if handle is not None:
        return agent, agent.resume_session(handle, traj_path=args.save)
    return agent, agent.start_session(traj_path=args.save)


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


def _stream_turn(session: Session, prompt: str, view: View) -> Turn:
    with session.stream(prompt) as stream:  # closing the stream on any exit stops the CLI
        for ev in stream:
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


def _execute(args: RunArgs, prompt: PromptSource, handle: str | None) -> int:
    """Run one turn (new conversation, or ``handle``'s) and report it in the chosen output mode."""
    view = make_view(args.mode(), sys.stdout, sys.stderr, debug=args.debug)
    session: Session | None = None
    turn: Turn | None = None
    unanswered: str | None = None  # the user's message, as it should be continued later
    try:
        text = prompt.read()
        if text is None and handle is None:
            raise UsageProblem("no prompt given", 'pass it as an argument (`caw run "..."`), `-` for stdin, or --file')
        if text is not None and not text.strip():
            raise UsageProblem("the prompt is empty", "nothing to send")
        agent, session = _open_session(args, view, handle)
        unanswered = text if text is not None else session.trajectory.pending_message
        if text is None:
            text = _pending_prompt(session)
            if not text:
                raise UsageProblem(
                    "no prompt given, and this conversation has no unanswered message to continue",
                    'pass a prompt: `caw resume HANDLE "..."` (or `-` for stdin)',
                )
        view.start(session.provider or _order_label(agent.order))
        with _Interrupts(session) as interrupts:
            turn = _stream_turn(session, text, view)
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
        return _finish(args, view, session, turn or getattr(exc, "turn", None), exc, fresh=handle is None)
    return _finish(args, view, session, turn, None, fresh=handle is None)


def _finish(
    args: RunArgs, view: View, session: Session | None, turn: Turn | None, error: BaseException | None, *, fresh: bool
) -> int:
    """End the session, show the outcome, write the CI files; the exit code."""
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
    )
    view.finish(outcome)
    if failure is not None:
        sys.stderr.write(f"caw: error: {failure.line}\n")
    elif resume_handle and args.mode() != "quiet":
        sys.stderr.write(f"caw: resume with: caw resume {resume_handle}\n")
    sys.stderr.flush()
    from caw import ci

    ci.report(outcome, os.environ)
    return outcome.exit_code


def _guard(debug: bool, body: Any) -> int:
    """Run a command body that is not a turn; map any failure through ``failure_for``."""
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


# ---- the typer app ------------------------------------------------------------------------------------
app = typer.Typer(
    name="caw",
    help="One dependable command over the coding-agent CLIs you already have: claude, codex, opencode.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
traj_app = typer.Typer(help="Saved trajectories.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(traj_app, name="traj")

PromptArg = Annotated[
    Optional[str],
    typer.Argument(help="The prompt; `-` reads stdin. A prompt starting with `-` goes after `--`.", show_default=False),
]
FileOpt = Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the prompt from this file (`-`: stdin).")]
ProviderOpt = Annotated[
    Optional[str],
    typer.Option("--provider", "-p", help="Provider or fallback order, e.g. claude,codex,opencode [env CAW_PROVIDER]."),
]
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Model (for the first provider) [env CAW_MODEL].")
]
EffortOpt = Annotated[
    Optional[str], typer.Option("--effort", help="Reasoning effort: low, medium, high... [env CAW_EFFORT].")
]
ToolsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tools",
        help="Tool groups, a comma list of reader, writer, exec, web, parallel, interaction, all, "
        "no_interaction, none; -name subtracts (all,-web).",
    ),
]
SystemOpt = Annotated[Optional[str], typer.Option("--system-prompt", help="System prompt for the agent.")]
CwdOpt = Annotated[Optional[Path], typer.Option("--cwd", help="Working directory of the agent (default: here).")]
DataDirOpt = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Where sessions are kept [env CAW_DATA_DIR, else caw's data dir].")
]
MaxWaitOpt = Annotated[
    Optional[str],
    typer.Option("--max-wait", help="Wait up to this long for a usage limit (6h, 90m) [env CAW_MAX_WAIT]."),
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Never wait for a usage limit: exit 75 at once.")]
TimeoutOpt = Annotated[Optional[str], typer.Option("--timeout", help="Give up on a turn after this long (30s, 10m).")]
IdleOpt = Annotated[Optional[str], typer.Option("--idle-timeout", help="Give up when the CLI is silent this long.")]
SaveOpt = Annotated[Optional[Path], typer.Option("--save", help="Also write the trajectory JSON to this file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the final trajectory as JSON.")]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="Print one JSON event per line as they arrive.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result text.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="On failure also show the traceback and the CLI's stderr.")]


def _version_callback(value: bool) -> None:
    if value:
        from caw import __version__

        typer.echo(f"caw {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """caw: run coding agents from scripts and CI with one exit-code contract (see docs/ci.md)."""


@app.command()
def run(
    prompt: PromptArg = None,
    file: FileOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    tools: ToolsOpt = None,
    system_prompt: SystemOpt = None,
    cwd: CwdOpt = None,
    data_dir: DataDirOpt = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue this conversation (a handle).")] = None,
    max_wait: MaxWaitOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = None,
    idle_timeout: IdleOpt = None,
    save: SaveOpt = None,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Send one prompt to the first provider that can answer. Example: caw run "Fix the failing test"."""
    args = RunArgs(
        provider=provider, model=model, effort=effort, tools=tools, system_prompt=system_prompt, cwd=cwd,
        data_dir=data_dir, max_wait=max_wait, no_wait=no_wait, timeout=timeout, idle_timeout=idle_timeout,
        save=save, json=json_out, jsonl=jsonl, quiet=quiet, debug=debug,
    )  # fmt: skip
    raise typer.Exit(_execute(args, PromptSource(prompt, file), resume))


@app.command("resume")
def resume_cmd(
    handle: Annotated[str, typer.Argument(help="A resume handle (or a session id from `caw sessions`).")],
    prompt: PromptArg = None,
    file: FileOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    tools: ToolsOpt = None,
    system_prompt: SystemOpt = None,
    data_dir: DataDirOpt = None,
    max_wait: MaxWaitOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = None,
    idle_timeout: IdleOpt = None,
    save: SaveOpt = None,
    json_out: JsonOpt = False,
    jsonl: JsonlOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Continue a conversation. Without a prompt, re-sends the message a usage limit left unanswered."""
    args = RunArgs(
        provider=provider, model=model, effort=effort, tools=tools, system_prompt=system_prompt,
        data_dir=data_dir, max_wait=max_wait, no_wait=no_wait, timeout=timeout, idle_timeout=idle_timeout,
        save=save, json=json_out, jsonl=jsonl, quiet=quiet, debug=debug,
    )  # fmt: skip
    raise typer.Exit(_execute(args, PromptSource(prompt, file), handle))


@app.command()
def sessions(
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List the sessions of a data dir, newest first (id, provider, created, first prompt, handle)."""

    def body() -> int:
        import caw
        from caw.render import render_sessions, session_json

        infos = caw.list_sessions(data_dir or _default_data_dir())
        if json_out:
            typer.echo(json.dumps([session_json(i) for i in infos], ensure_ascii=False, indent=2))
        else:
            render_sessions(Console(highlight=False, soft_wrap=True), infos)
        return 0

    raise typer.Exit(_guard(debug, body))


@app.command()
def doctor(
    live: Annotated[bool, typer.Option("--live", help="Also send one minimal request per provider.")] = False,
    json_out: JsonOpt = False,
    provider: ProviderOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Which providers are installed, logged in, cooling down. Exit 0 if the first in the order is usable, else 3."""

    def body() -> int:
        from caw.fallback import resolve_order
        from caw.health import check_all
        from caw.render import render_doctor

        order = resolve_order(provider)
        rows = [h.model_dump(mode="json") for h in check_all(order, live=live)]
        first = next((r for r in rows if r.get("provider") == order[0]), None)
        usable = bool(first and first.get("ok"))
        if json_out:
            doc = {"order": list(order), "usable": usable, "providers": rows}
            typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            render_doctor(Console(highlight=False), rows, order)
        if usable:
            return 0
        sys.stderr.write(
            f"caw: error: the first provider in the order ({order[0]}) is not usable — "
            f"{_install_hint(order[0]) if not (first and first.get('installed')) else _login_hint(order[0])}\n"
        )
        return int(ExitCode.NO_PROVIDER)

    raise typer.Exit(_guard(debug, body))


@traj_app.command("show")
def traj_show(
    file: Annotated[Path, typer.Argument(help="A trajectory JSON (caw run --json / --save, or a session dir).")],
    step: Annotated[Optional[int], typer.Option("--step", "-s", help="Print step N in full (see docs/cli.md).")] = None,
    debug: DebugOpt = False,
) -> None:
    """Show a saved trajectory: turns, tool calls (outputs folded), usage, attempts, limits."""

    def body() -> int:
        from caw.render import render_step, render_trajectory, steps

        traj = load_trajectory(file)
        if step is None:
            render_trajectory(Console(highlight=False, soft_wrap=True), traj, source=str(file))
            return 0
        all_steps = steps(traj)
        if not 1 <= step <= len(all_steps):
            raise UsageProblem(f"--step {step}: the trajectory has {len(all_steps)} steps", "pick 1..N")
        render_step(sys.stdout, all_steps[step - 1])
        return 0

    raise typer.Exit(_guard(debug, body))


def load_trajectory(path: Path) -> Trajectory:
    """A trajectory from a JSON file (``--json`` output, ``--save``, ``trajectory.json``) or a session dir."""
    target = path / "trajectory.json" if path.is_dir() else path
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"cannot read {target}: {exc}", "pass a trajectory JSON file or a session dir") from None
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"{target} is not JSON ({exc})", "pass a trajectory JSON file") from None
    if not isinstance(data, dict):
        raise UsageProblem(f"{target} is not a caw trajectory", "pass a trajectory JSON file")
    try:
        return Trajectory.from_dict(data)
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise UsageProblem(f"{target} is not a caw trajectory ({first})", "pass a trajectory JSON file") from None


@app.command()
def schema(
    events: Annotated[bool, typer.Option("--events", help="Only the schema of one streamed event.")] = False,
    trajectory: Annotated[bool, typer.Option("--trajectory", help="Only the trajectory schema.")] = False,
) -> None:
    """Print the JSON schema of events (`--jsonl` lines) and/or trajectories (`--json`)."""
    from caw.events import event_json_schema

    doc: dict[str, Any]
    if events and not trajectory:
        doc = event_json_schema()
    elif trajectory and not events:
        doc = Trajectory.model_json_schema(mode="serialization")
    else:
        doc = {"event": event_json_schema(), "trajectory": Trajectory.model_json_schema(mode="serialization")}
    typer.echo(json.dumps(doc, indent=2))


@app.command()
def chat(
    prompt: Annotated[Optional[str], typer.Argument(help="Initial prompt (after `--` if it starts with `-`).")] = None,
    provider: ProviderOpt = None,
    pick: Annotated[bool, typer.Option("--pick", help="Choose the provider from a menu first.")] = False,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Open the provider's own interactive UI with caw's configuration. Exits with the CLI's exit code."""

    def body() -> int:
        import caw

        agent = caw.Agent(provider=provider, model=model, reasoning=effort)
        result = agent.interactive(prompt or "", select_provider=pick)
        return int(result.exit_code)

    raise typer.Exit(_guard(debug, body))


def main() -> None:
    """Entry point of the ``caw`` script and ``python -m caw``."""
    app(prog_name="caw")


__all__ = ["ExitCode", "Failure", "app", "failure_for", "main", "parse_tools"]
