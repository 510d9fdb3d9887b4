"""The ``caw`` command (typer): run, resume, sessions, doctor, traj show, schema, chat.

The commands are thin: they collect their options and call one shared runner (``execute``) or a small
body. Two rules hold for every command:

* every failure becomes ONE line on stderr, ``caw: error: <what happened> — <what to do>``, never a
  traceback (``--debug`` adds the traceback and the CLI's stderr tail);
* ``failure_for`` is the only place an exception becomes an exit code (the contract in docs/ci.md):

  ===  ==========================================================================================
  0    success
  1    the agent's turn failed (model API error, context overflow, conversation gone, a crash after
       the first turn, anything unexpected)
  2    usage error (bad flags, empty prompt, invalid resume handle, bad configuration, a data directory or
       --save path caw cannot write: checked before the turn)
  3    no provider available (not installed, or every provider failed to start)
  4    authentication or account (logged out, bad key; out of credits / spend cap)
  5    the answer did not match ``--schema``, also after the repair turn (``StructuredOutputError``)
  6    a budget was crossed (``--max-cost``, ``--max-tokens``, ``--max-duration``): caw stopped the turn
  75   rate-limited beyond ``--max-wait`` or with ``--no-wait`` (EX_TEMPFAIL: requeue the job)
  124  a timeout (``--timeout``, ``--idle-timeout``, ``--first-output-timeout``)
  130  interrupted (Ctrl-C, SIGTERM)
  ===  ==========================================================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from caw.cli.views import local_and_utc
from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
    BudgetExceeded,
    CawError,
    CawTimeoutError,
    ConfigurationError,
    ContextOverflowError,
    ConversationNotFound,
    FirstOutputTimeout,
    InvalidResumeHandle,
    ProviderCrashed,
    ProviderError,
    ProviderNotInstalled,
    SessionNotFound,
    SessionStateError,
    StorageError,
    StructuredOutputError,
    TurnCancelled,
    TurnFailed,
    UsageLimitError,
)
from caw.events import ErrorKind
from caw.text import clip_sentences, limit_name

if TYPE_CHECKING:
    pass


class ExitCode(enum.IntEnum):
    """The exit codes of ``caw`` (docs/ci.md)."""

    OK = 0
    TURN_FAILED = 1
    USAGE = 2
    NO_PROVIDER = 3
    AUTH = 4
    INVALID_OUTPUT = 5  # issue 16: --schema not met after the repair turn
    BUDGET = 6  # issue 16: --max-cost / --max-tokens / --max-duration crossed
    RATE_LIMITED = 75  # EX_TEMPFAIL
    TIMEOUT = 124  # what timeout(1) uses
    INTERRUPTED = 130  # 128 + SIGINT


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
    if isinstance(exc, BudgetExceeded):  # before TurnCancelled, its base: caw stopped it on purpose
        return Failure(
            ExitCode.BUDGET,
            str(exc),
            "raise the limit, or continue with a new budget" + (f": `caw resume {handle}`" if handle else ""),
        )
    if isinstance(exc, StructuredOutputError):
        return Failure(
            ExitCode.INVALID_OUTPUT, str(exc), "the raw answer is in the saved turn; loosen the schema or the prompt"
        )
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
            str(exc) if str(exc).startswith("invalid resume handle") else f"invalid resume handle: {exc}",
            "pass the whole `caw1_…` string printed after a run (or a session id from `caw sessions`)",
        )
    if isinstance(exc, SessionNotFound):
        return Failure(
            ExitCode.USAGE, str(exc), "`caw sessions` lists the sessions there; a resume handle starts with caw1_"
        )
    if isinstance(exc, ConfigurationError | SessionStateError):
        return Failure(ExitCode.USAGE, str(exc), "see `caw run --help`")
    if isinstance(exc, StorageError) and exc.errno is None and exc.operation == "read":  # a damaged file
        return Failure(ExitCode.USAGE, str(exc), "move the file aside (or pass a resume handle instead of the id)")
    if isinstance(exc, StorageError):  # raised before the turn: after it, the session warns and goes on
        return Failure(
            ExitCode.USAGE, str(exc), "point --data-dir / CAW_DATA_DIR / --save at a writable place, or free disk space"
        )
    if isinstance(exc, AllProvidersFailed):
        return _all_failed(exc)
    if isinstance(exc, ProviderNotInstalled) and exc.reason:
        return Failure(
            ExitCode.NO_PROVIDER,
            f"{exc.provider} cannot start: {exc.reason}",
            f"point {_bin_var(exc)} at the {exc.provider} executable, or unset it to use the one on PATH",
            provider=exc.provider,
        )
    if isinstance(exc, ProviderNotInstalled):
        return Failure(
            ExitCode.NO_PROVIDER,
            f"{exc.provider} is not installed (the `{exc.binary}` command was not found)",
            install_hint(exc.provider),
            provider=exc.provider,
        )
    if isinstance(exc, AuthenticationError):
        return Failure(
            ExitCode.AUTH,
            f"{exc.provider} could not authenticate: {exc.detail}",
            login_hint(exc.provider),
            provider=exc.provider,
        )
    if isinstance(exc, UsageLimitError):
        return _limit_failure(exc, handle)
    if isinstance(exc, CawTimeoutError):
        flags = "--first-output-timeout" if isinstance(exc, FirstOutputTimeout) else "--timeout / --idle-timeout"
        todo = f"raise {flags}" + (f", or {resume}" if resume else "")
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


def install_hint(provider: str) -> str:
    """The provider's own install hint (``Provider.install_hint``); a generic one for an unregistered name."""
    from caw.providers import canonical_name, get_provider
    from caw.providers.base import install_hint_for

    canonical = canonical_name(provider)
    return get_provider(canonical).install_hint() if canonical else install_hint_for(provider)


def login_hint(provider: str) -> str:
    """The provider's own login hint (``Provider.login_hint``); a generic one for an unregistered name."""
    from caw.providers import canonical_name, get_provider
    from caw.providers.base import login_hint_for

    canonical = canonical_name(provider)
    return get_provider(canonical).login_hint() if canonical else login_hint_for(provider)


def _limit_failure(exc: UsageLimitError, handle: str | None) -> Failure:
    original = exc.__cause__ if isinstance(exc.__cause__, UsageLimitError) else exc
    detail = clip_sentences(original.detail, 240)
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
    # with no reset time there is no "time to the reset" a --max-wait could be longer than
    wait = ", or rerun with a --max-wait longer than the time to the reset" if exc.resets_at else ""
    return Failure(
        ExitCode.RATE_LIMITED,
        f"{exc.provider} hit its {limit_name(exc.kind)} ({detail}); {when}",
        f"{resume}{wait} (exit 75: requeue the job)",
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
        hints = [f"{e.provider}: {login_hint(e.provider)}" for c, e in classes if isinstance(e, AuthenticationError)]
        if hints:
            return Failure(ExitCode.AUTH, what, "; ".join(hints))
        return Failure(ExitCode.AUTH, what, "add credits or raise the spend cap", kind="billing")
    if kinds == {"timeout"}:
        return Failure(ExitCode.TIMEOUT, what, "raise --timeout / --idle-timeout")
    missing = [e for _, e in classes if isinstance(e, ProviderNotInstalled)]
    fixes = [f"fix or unset {_bin_var(e)}" for e in missing if e.reason]
    absent = [e.provider for e in missing if not e.reason]
    if absent:
        fixes.append(f"install one: {_install_commands(absent)}")
    if kinds:
        fixes.append("`caw doctor` shows what is usable")
    return Failure(ExitCode.NO_PROVIDER, what, "; ".join(fixes))


def _bin_var(exc: ProviderNotInstalled) -> str:
    return exc.reason.split("=", 1)[0] if "=" in exc.reason else f"CAW_{exc.provider.upper()}_BIN"


def _install_commands(names: list[str]) -> str:
    """``npm install -g @anthropic-ai/claude-code | @openai/codex | opencode-ai``: each command once, the
    shared ``npm install -g`` written once too."""
    from caw.providers import canonical_name, get_provider

    commands = []
    for name in names:
        canonical = canonical_name(name)
        command = get_provider(canonical).install_command if canonical else None
        commands.append(command or f"set CAW_{name.upper()}_BIN to its path")
    prefix = "npm install -g "
    if len(commands) > 1 and all(c.startswith(prefix) for c in commands):
        return prefix + " | ".join(c.removeprefix(prefix) for c in commands)
    return " | ".join(commands)
