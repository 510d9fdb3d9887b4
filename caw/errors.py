"""The error tree of caw. Every error carries data, so callers branch on attributes, not strings.

CawError
├── ConfigurationError (also ValueError)   bad arguments to caw's own API: every provider would fail
│   └── UnknownProviderError
├── ProviderNotInstalled                   the CLI binary is not on PATH (or CAW_<NAME>_BIN is wrong)
├── StorageError (also OSError)            caw could not read or write its own files (data dir, --save, temp files)
├── ProviderError                          the CLI ran but the turn did not produce an answer
│   ├── AuthenticationError                logged out, bad key, expired token
│   ├── UsageLimitError                    rate limit / usage limit / out of credits (see .waitable)
│   ├── ContextOverflowError               the conversation no longer fits the model's window
│   ├── ConversationNotFound               the CLI no longer has the conversation to resume
│   ├── ProviderCrashed                    the CLI exited without finishing the turn
│   └── TurnFailed                         the model API reported an error (5xx, bad request, ...)
│       └── ProviderUnavailable            the CLI only retried (reconnect notices) for transient_timeout
├── CawTimeoutError                        a watchdog fired; the partial turn is kept
│   ├── FirstOutputTimeout
│   ├── IdleTimeout
│   └── TurnTimeout
├── TurnCancelled                          Session.cancel() or a signal stopped the turn
│   └── BudgetExceeded                     a budget (cost, tokens, model turns, time) was crossed: caw stopped it
├── StructuredOutputError                  the answer to ``output=`` did not validate, also after one repair turn
├── InvalidResumeHandle (also ValueError)  a resume handle that cannot be decoded
├── SessionRecordCorrupt (also ValueError) a portable session record that fails its checksum (nothing restored)
├── SessionStateError                      e.g. resume_handle before the first turn, send on a read-only session
│   └── SessionNotFound                    a bare session id the data dir does not hold
└── AllProvidersFailed                     every provider of a fallback order failed (also an ExceptionGroup)

Every error pickles with all its attributes (``__reduce__`` below), so it crosses process boundaries:
multiprocessing, concurrent.futures, job queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caw.models import Turn


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    # skips __init__, whose signature is each class's own; pickle then restores the attributes
    exc = cls.__new__(cls, *args)
    exc.args = args  # OSError.__new__ leaves args empty for subclasses with their own __init__
    return exc


class CawError(Exception):
    """Base class of every error caw raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls cls(*args), which breaks on keyword-only and extra parameters
        return (_rebuild, (type(self), self.args), dict(self.__dict__))


class ConfigurationError(CawError, ValueError):
    """caw was called with arguments no provider could accept (a user error, never a reason to fail over)."""


class UnknownProviderError(ConfigurationError):
    """A provider name caw does not know: ``name`` is the one given, ``known`` the names caw knows."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(known)}")
        self.name = name
        self.known = known


class ProviderNotInstalled(CawError):
    """The provider's CLI cannot be found."""

    def __init__(self, provider: str, binary: str, hint: str = "", *, reason: str = "") -> None:
        """``reason``: what is wrong when it is not a missing command (``CAW_CLAUDE_BIN=/x is not an executable
        file``)."""
        msg = f"{provider}: {reason or f'the `{binary}` command was not found'}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.provider = provider
        self.binary = binary
        self.hint = hint
        self.reason = reason


class StorageError(CawError, OSError):
    """caw could not read or write one of its own files: the session store, the cooldown ledger, ``--save``,
    a temp file for an MCP config. Also an ``OSError``, so ``except OSError`` still catches it.

    Attributes: ``path`` (the file or directory), ``operation`` (what caw was doing, as the message words it:
    ``write``, ``append to``, ``read``, ``lock``, ``create the directory``, ``write a file in``,
    ``create a temp file in``), ``errno`` and ``strerror`` (from the OSError, which is also the ``__cause__``).

    >>> str(StorageError("/data/x.json", "write", errno=20, strerror="Not a directory"))
    'cannot write /data/x.json: Not a directory'
    """

    reason = "storage"

    def __init__(
        self, path: str | Path, operation: str, *, errno: int | None = None, strerror: str | None = None
    ) -> None:
        super().__init__(f"cannot {operation} {path}: {strerror or 'failed'}")
        self.path = Path(path)
        self.operation = operation
        self.errno = errno
        self.strerror = strerror
        self.filename = str(path)

    @classmethod
    def from_os_error(cls, exc: OSError, operation: str, path: str | Path | None = None) -> StorageError:
        """The StorageError for ``exc``; ``path`` defaults to the one the OSError names."""
        where = path if path is not None else (exc.filename if exc.filename is not None else "?")
        return cls(where, operation, errno=exc.errno, strerror=exc.strerror or str(exc))

    def __reduce__(self) -> tuple[Any, ...]:
        # errno, strerror and filename are OSError slots, not in __dict__
        state = {**self.__dict__, "errno": self.errno, "strerror": self.strerror, "filename": self.filename}
        return (_rebuild, (type(self), self.args), state)


class ProviderError(CawError):
    """The CLI ran but did not produce a finished turn. Carries what is known about why.

    Attributes: ``provider``, ``kind`` (the class of the failure, in the terms of ``caw.events.ErrorKind``;
    for a usage limit, the limit's own kind), ``exit_code`` (None while running or when killed before exit),
    ``stderr_tail`` (last part of the CLI's stderr), ``status`` (HTTP status the CLI reported, if any),
    ``turn`` (the partial turn, kept; None when nothing was produced).
    """

    #: a short class name used in attempt records and CLI messages
    reason = "error"
    #: what kind of failure; fixed per class except for TurnFailed and UsageLimitError, which set their own
    kind: str = "unknown"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        exit_code: int | None = None,
        stderr_tail: str = "",
        status: int | None = None,
        turn: Turn | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}" if provider else message)
        self.provider = provider
        self.detail = message
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.status = status
        self.turn = turn


class AuthenticationError(ProviderError):
    """The CLI has no usable login: logged out, or its key or token was refused (HTTP 401/403)."""

    reason = "auth"
    kind = "auth"


class UsageLimitError(ProviderError):
    """A rate limit or usage limit. ``waitable`` is False for money problems (out of credits, spend cap).

    ``kind`` is the limit's kind (``rate``, ``usage``, ``weekly``, ``credits``, ...).
    """

    reason = "rate_limited"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        resets_at: datetime | None = None,
        kind: str = "rate",
        waitable: bool = True,
        resume_handle: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(provider, message, **kw)
        self.resets_at = resets_at
        self.kind = kind
        self.waitable = waitable
        self.resume_handle = resume_handle


class ContextOverflowError(ProviderError):
    """The conversation no longer fits the model's context window."""

    reason = "context_overflow"
    kind = "context_overflow"


class ConversationNotFound(ProviderError):
    """The provider has no conversation under the resume key (``Agent(on_missing="fresh")`` starts a new one)."""

    reason = "conversation_not_found"
    kind = "not_found"


class ProviderCrashed(ProviderError):
    """The CLI exited without finishing the turn (a crash, a rejected flag, a broken config).

    ``exit_code`` and ``stderr_tail`` say what it printed on the way out.
    """

    reason = "crashed"
    kind = "cli"


class TurnFailed(ProviderError):
    """The model API reported an error that ended the turn. ``kind``: server, invalid_request, unknown, ..."""

    reason = "turn_failed"

    def __init__(self, provider: str, message: str, *, kind: str = "unknown", **kw: Any) -> None:
        super().__init__(provider, message, **kw)
        self.kind = kind


class ProviderUnavailable(TurnFailed):
    """The CLI printed nothing but its own retry notices for ``seconds`` (``transient_timeout``): caw stopped it.

    Offline codex retries forever ("Reconnecting... waiting for network"), so this is how a fallback order
    gets past it (issue 12): a first send fails over to the next provider (reason ``unavailable``); a later
    turn fails with its partial turn kept. ``retries`` counts the notices; ``kind`` is ``server``.
    """

    reason = "unavailable"
    kind = "server"

    def __init__(self, provider: str, message: str, *, seconds: float = 0.0, retries: int = 0, **kw: Any) -> None:
        super().__init__(provider, message, kind="server", **kw)
        self.seconds = seconds
        self.retries = retries


class CawTimeoutError(CawError, TimeoutError):
    """A watchdog fired. ``turn`` is the partial turn (kept on the trajectory too)."""

    reason = "timeout"

    def __init__(self, message: str, *, provider: str = "", seconds: float = 0.0, turn: Turn | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.seconds = seconds
        self.turn = turn


class FirstOutputTimeout(CawTimeoutError):
    """The model gave no answer within ``first_output_timeout`` seconds of the start (the CLI's own start-up
    lines and retry notices are no answer: ``caw.session.turn.TurnProgress``)."""


class IdleTimeout(CawTimeoutError):
    """The CLI printed nothing for ``idle_timeout`` seconds in the middle of a turn."""


class TurnTimeout(CawTimeoutError):
    """The whole turn took longer than ``timeout`` seconds."""


class TurnCancelled(CawError):
    """The turn was stopped by ``Session.cancel()`` or a signal. ``turn`` is the partial turn."""

    reason = "cancelled"

    def __init__(self, message: str = "the turn was cancelled", *, turn: Turn | None = None) -> None:
        super().__init__(message)
        self.turn = turn


class BudgetExceeded(TurnCancelled):
    """A budget was crossed, so caw stopped the turn (through the normal cancel path: no process is left).

    ``budget`` is which one (``"cost_usd"``, ``"tokens"``, ``"turns"``, ``"duration"``), ``limit`` the limit
    set, ``reached`` the figure reached when caw stopped, ``turn`` the partial turn (kept on the trajectory
    and saved, as cancelled). ``native`` is True when the CLI's own cap stopped it (claude
    ``--max-budget-usd``/``--max-turns``). Also a ``TurnCancelled``: nothing else is tried after it.
    """

    reason = "budget"

    def __init__(
        self, budget: str, limit: float, reached: float, *, turn: Turn | None = None, native: bool = False
    ) -> None:
        unit = {"cost_usd": " USD", "tokens": " tokens", "turns": " model turns", "duration": " s"}.get(budget, "")
        super().__init__(f"budget exceeded: {budget} reached {reached:g}{unit} (limit {limit:g}{unit})", turn=turn)
        self.budget = budget
        self.limit = limit
        self.reached = reached
        self.native = native


class StructuredOutputError(CawError):
    """The answer to ``output=`` did not validate, and neither did the one repair turn.

    ``raw`` is the last answer's text, ``errors`` the validation errors (one ``path: problem`` line each),
    ``turn`` the last turn (completed; its ``parsed`` is None) and ``schema`` the JSON schema asked for.
    """

    def __init__(
        self,
        raw: str,
        errors: Sequence[str],
        *,
        turn: Turn | None = None,
        schema: dict[str, Any] | None = None,
        attempts: int = 2,
    ) -> None:
        first = errors[0] if errors else "invalid"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"the answer does not match the schema after {attempts} tries: {first}{more}")
        self.raw = raw
        self.errors = list(errors)
        self.turn = turn
        self.schema = schema
        self.attempts = attempts


class InvalidResumeHandle(CawError, ValueError):
    """A resume handle could not be decoded. ``why`` says which kind of problem it was.

    ``why`` is one of: ``empty``, ``too_long``, ``not_a_handle`` (wrong prefix / garbage),
    ``unsupported_version``, ``corrupt`` (checksum or encoding mismatch: truncated or edited),
    ``malformed`` (decodes but the content is not a valid handle), ``unknown_provider``.
    """

    def __init__(self, message: str, *, why: str) -> None:
        super().__init__(message)
        self.why = why


class SessionRecordCorrupt(CawError, ValueError):
    """A portable session record (a ``caw session export`` file or a shared store's copy) failed its
    checksum or does not decode: nothing of it was restored (docs/fleets.md).

    ``source`` names where it came from (a path or ``redis://.../key``), ``why`` one of ``checksum``,
    ``not_a_record``, ``too_large``, ``malformed``, ``unsupported_version``.
    """

    def __init__(self, message: str, *, source: str, why: str) -> None:
        super().__init__(message)
        self.source = source
        self.why = why


class SessionStateError(CawError):
    """The session cannot do that now (no turn yet, read-only, already ended)."""


class SessionNotFound(SessionStateError):
    """``resume_session`` got a bare session id (not a handle) that the data dir does not hold.

    ``session_id`` and ``data_dir`` say which; catch it as ``SessionStateError``.
    """

    def __init__(self, session_id: str, data_dir: Path | str) -> None:
        super().__init__(f"no session {session_id!r} in {data_dir}")
        self.session_id = session_id
        self.data_dir = str(data_dir)


class AllProvidersFailed(CawError, ExceptionGroup[Exception]):  # noqa: F821  (ruff still targets py310)
    """Every provider in the fallback order failed. ``attempts`` lists each try; ``errors`` the exceptions.

    It is also an ``ExceptionGroup`` of those errors, so ``except*`` can pick out e.g. the usage limits.
    """

    def __new__(cls, message: str, errors: list[Exception], attempts: list[Any]) -> AllProvidersFailed:
        group = list(errors) or [CawError("no provider could be tried")]
        return super().__new__(cls, message, group)

    def __init__(self, message: str, errors: list[Exception], attempts: list[Any]) -> None:
        # ExceptionGroup owns .message; CawError.__init__ would try to set it
        self.errors = list(errors)
        self.attempts = attempts

    def derive(self, excs: Sequence[Exception], /) -> AllProvidersFailed:  # type: ignore[override]
        # what except* and split() build: the same message and attempts over a subset of the errors
        return AllProvidersFailed(str(self.args[0]), list(excs), self.attempts)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self.args[0]), self.errors, self.attempts), dict(self.__dict__))
