"""The error tree: every class pickles with all its data, and every ProviderError says its kind.

The classes are enumerated from ``caw.errors`` itself, so a new error class without a case here fails.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, get_args

import pytest

import caw
import caw.errors as errors
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
    IdleTimeout,
    InvalidResumeHandle,
    ProviderCrashed,
    ProviderError,
    ProviderNotInstalled,
    ProviderUnavailable,
    SessionNotFound,
    SessionRecordCorrupt,
    SessionStateError,
    StorageError,
    StructuredOutputError,
    TurnCancelled,
    TurnFailed,
    TurnTimeout,
    UnknownProviderError,
    UsageLimitError,
)
from caw.events import ErrorKind
from caw.models import Attempt, LimitInfo, TextBlock, Turn

RESET = datetime(2026, 11, 22, 17, 0, tzinfo=timezone.utc)


def partial_turn() -> Turn:
    """A turn cut off mid-way: some text, no result."""
    return Turn(
        input="fix the bug",
        provider="claude",
        model="sonnet",
        status="failed",
        output=[TextBlock(text="Looking at the fi")],
        limit=LimitInfo(kind="session", resets_at=RESET, waitable=True, message="limit reached"),
        diagnostics=["warning: retrying"],
    )


COMMON: dict[str, Any] = {"exit_code": 1, "stderr_tail": "boom\n", "status": 529}

#: one way to build each error class, with every attribute set to something other than its default
CASES: dict[type[BaseException], Callable[[], BaseException]] = {
    CawError: lambda: CawError("something went wrong"),
    ConfigurationError: lambda: ConfigurationError("timeout must be a number"),
    UnknownProviderError: lambda: UnknownProviderError("clod", ("claude", "codex", "opencode")),
    ProviderNotInstalled: lambda: ProviderNotInstalled("codex", "codex", "npm install -g @openai/codex"),
    StorageError: lambda: StorageError("/data/sessions/a/trajectory.json", "write", errno=28, strerror="No space"),
    ProviderError: lambda: ProviderError("claude", "odd failure", turn=partial_turn(), **COMMON),
    AuthenticationError: lambda: AuthenticationError("claude", "invalid api key", turn=partial_turn(), **COMMON),
    UsageLimitError: lambda: UsageLimitError(
        "claude",
        "5-hour limit reached",
        resets_at=RESET,
        kind="session",
        waitable=False,
        resume_handle="caw1_HANDLE",
        turn=partial_turn(),
        **COMMON,
    ),
    ContextOverflowError: lambda: ContextOverflowError("codex", "prompt too long", turn=partial_turn(), **COMMON),
    ConversationNotFound: lambda: ConversationNotFound("codex", "no rollout found", turn=partial_turn(), **COMMON),
    ProviderCrashed: lambda: ProviderCrashed("opencode", "exited with 139", turn=partial_turn(), **COMMON),
    TurnFailed: lambda: TurnFailed("claude", "overloaded", kind="server", turn=partial_turn(), **COMMON),
    ProviderUnavailable: lambda: ProviderUnavailable(
        "codex", "only retried for 90s", seconds=90.0, retries=5, turn=partial_turn(), **COMMON
    ),
    CawTimeoutError: lambda: CawTimeoutError("timed out", provider="claude", seconds=12.5, turn=partial_turn()),
    FirstOutputTimeout: lambda: FirstOutputTimeout("no output", provider="codex", seconds=30, turn=partial_turn()),
    IdleTimeout: lambda: IdleTimeout("idle for 60s", provider="claude", seconds=60.0, turn=partial_turn()),
    TurnTimeout: lambda: TurnTimeout("took over 600s", provider="opencode", seconds=600.0, turn=partial_turn()),
    TurnCancelled: lambda: TurnCancelled("stopped by signal SIGTERM", turn=partial_turn()),
    BudgetExceeded: lambda: BudgetExceeded("tokens", 2000, 3120, turn=partial_turn(), native=True),
    StructuredOutputError: lambda: StructuredOutputError(
        '{"name": 1}',
        ["name: Input should be a valid string"],
        turn=partial_turn(),
        schema={"type": "object"},
        attempts=1,
    ),
    InvalidResumeHandle: lambda: InvalidResumeHandle("checksum mismatch", why="corrupt"),
    SessionStateError: lambda: SessionStateError("no resume handle yet"),
    SessionNotFound: lambda: SessionNotFound("3f2a9c1b", "/data/caw"),
    SessionRecordCorrupt: lambda: SessionRecordCorrupt("fails its checksum", source="/tmp/s.cawrec", why="checksum"),
    AllProvidersFailed: lambda: AllProvidersFailed(
        "every provider failed",
        [
            UsageLimitError("claude", "limit", resets_at=RESET, kind="session", turn=partial_turn()),
            ProviderNotInstalled("codex", "codex"),
        ],
        [Attempt(provider="claude", reason="rate_limited", error="limit", resets_at=RESET)],
    ),
}


def error_classes() -> set[type[BaseException]]:
    return {
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    }


def snapshot(value: Any) -> Any:
    """Everything an error carries, as plain comparable data (exceptions do not compare by value)."""
    if isinstance(value, BaseException):
        slots = {k: getattr(value, k) for k in ("errno", "strerror", "filename") if isinstance(value, OSError)}
        return (
            type(value),
            str(value),
            snapshot(value.args),
            snapshot({**vars(value), **slots}),
            snapshot(list(getattr(value, "exceptions", ()))),
        )
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [snapshot(v) for v in value]
    return value


def test_every_error_class_has_a_case() -> None:
    assert error_classes() == set(CASES), "add the new error class to CASES"


@pytest.mark.parametrize("cls", sorted(CASES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_error_round_trips_through_pickle_with_all_its_data(cls: type[BaseException]) -> None:
    original = CASES[cls]()
    assert type(original) is cls
    for protocol in (0, pickle.HIGHEST_PROTOCOL):
        copied = pickle.loads(pickle.dumps(original, protocol=protocol))
        assert type(copied) is cls
        assert str(copied) == str(original)
        assert snapshot(copied) == snapshot(original)
    assert snapshot(copy.copy(original)) == snapshot(original)
    assert snapshot(copy.deepcopy(original)) == snapshot(original)


@pytest.mark.parametrize(
    "cls", sorted((c for c in CASES if hasattr(CASES[c](), "turn")), key=lambda c: c.__name__), ids=lambda c: c.__name__
)
def test_the_partial_turn_survives_pickling(cls: type[BaseException]) -> None:
    original = CASES[cls]()
    copied = pickle.loads(pickle.dumps(original))
    turn = original.turn  # type: ignore[attr-defined]
    assert copied.turn == turn and copied.turn is not turn
    assert turn == partial_turn().model_copy(update={"started_at": turn.started_at})
    assert copied.turn.result == "Looking at the fi"


def test_attributes_set_after_raising_travel_too() -> None:
    exc = UsageLimitError("codex", "limit", resets_at=RESET)
    exc.resume_handle = "caw1_LATER"  # what Session does once it knows the handle
    exc.trajectory = "kept"  # type: ignore[attr-defined]  # what Agent.completion attaches
    exc.add_note("while waiting")
    copied = pickle.loads(pickle.dumps(exc))
    assert copied.resume_handle == "caw1_LATER"
    assert copied.trajectory == "kept"
    assert copied.__notes__ == ["while waiting"]


@pytest.mark.parametrize(
    "cls",
    sorted((c for c in CASES if issubclass(c, ProviderError)), key=lambda c: c.__name__),
    ids=lambda c: c.__name__,
)
def test_every_provider_error_carries_provider_kind_and_turn(cls: type[ProviderError]) -> None:
    exc = CASES[cls]()
    assert isinstance(exc, ProviderError)
    assert exc.provider and exc.turn is not None
    assert isinstance(exc.kind, str) and exc.kind
    if cls is not UsageLimitError:  # a usage limit's kind names the limit (session, weekly, credits, ...)
        assert exc.kind in get_args(ErrorKind)


def test_fixed_kinds_match_the_event_schema() -> None:
    assert AuthenticationError("claude", "x").kind == "auth"
    assert ContextOverflowError("claude", "x").kind == "context_overflow"
    assert ConversationNotFound("claude", "x").kind == "not_found"
    assert ProviderCrashed("claude", "x").kind == "cli"
    assert ProviderError("claude", "x").kind == "unknown"
    assert TurnFailed("claude", "x").kind == "unknown"
    assert TurnFailed("claude", "x", kind="server").kind == "server"
    assert UsageLimitError("claude", "x").kind == "rate"


def test_all_providers_failed_is_still_an_exception_group_after_pickling() -> None:
    copied = pickle.loads(pickle.dumps(CASES[AllProvidersFailed]()))
    assert isinstance(copied, ExceptionGroup) and isinstance(copied, CawError)  # noqa: F821  (ruff targets py310)
    assert [type(e) for e in copied.exceptions] == [UsageLimitError, ProviderNotInstalled]
    assert copied.attempts[0].reason == "rate_limited"
    limits, rest = copied.split(UsageLimitError)  # what `except* UsageLimitError` does
    assert isinstance(limits, AllProvidersFailed) and isinstance(rest, AllProvidersFailed)
    assert str(limits) == "every provider failed" and limits.attempts == copied.attempts  # derive keeps them
    assert [e.provider for e in limits.errors] == ["claude"] and [type(e) for e in rest.errors] == [
        ProviderNotInstalled
    ]


def test_all_providers_failed_with_no_errors_pickles() -> None:
    exc = AllProvidersFailed("nothing could be tried", [], [])
    copied = pickle.loads(pickle.dumps(exc))
    assert copied.errors == [] and str(copied) == "nothing could be tried"
    assert len(copied.exceptions) == 1  # an ExceptionGroup cannot be empty: a placeholder stands in


def test_storage_error_carries_the_os_error_and_is_one() -> None:
    cause = NotADirectoryError(20, "Not a directory", "/data/file/sessions")
    exc = StorageError.from_os_error(cause, "create the directory")
    assert str(exc) == "cannot create the directory /data/file/sessions: Not a directory"
    assert (exc.errno, exc.strerror, exc.operation, str(exc.path)) == (
        20,
        "Not a directory",
        "create the directory",
        "/data/file/sessions",
    )
    assert isinstance(exc, OSError) and isinstance(exc, CawError)
    assert isinstance(exc, caw.StorageError) and "StorageError" in caw.__all__
