"""First-send failover: which failures move on to the next provider, and the one error when all fail.

Failover happens only on the first send, only for reasons tied to one provider (not installed, auth,
usage limit, crash, timeout, or an API it could not reach before the first turn), never for a user error
every provider would hit.
``first_answer`` is that loop, over callables: the session hands in how to try a candidate and how to
wait out a limit, so the decisions are tested with scripted attempts and no process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import TypeVar

from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
    CawTimeoutError,
    ProviderCrashed,
    ProviderNotInstalled,
    ProviderUnavailable,
    TurnCancelled,
    TurnFailed,
    UsageLimitError,
)
from caw.events import Event
from caw.models import Attempt, Turn

#: a provider in the order, as the session knows it; the policy only asks for its ``name``
C = TypeVar("C")


def failover_reason(exc: BaseException) -> str | None:
    """Why the next provider should be tried after ``exc`` on a first send, or None to stop and raise."""
    if isinstance(exc, ProviderNotInstalled):
        return "not_installed"
    if isinstance(exc, AuthenticationError):
        return "auth"
    if isinstance(exc, UsageLimitError):
        return "rate_limited"
    if isinstance(exc, ProviderCrashed):
        return "crashed"
    if isinstance(exc, CawTimeoutError):
        return "timeout"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"  # it only retried for transient_timeout (offline codex retries forever)
    if isinstance(exc, TurnFailed) and exc.kind in ("server", "unknown", "cli"):
        return "unavailable"
    return None


_REASON_TEXT = {
    "not_installed": "not installed",
    "auth": "not logged in / authentication failed",
    "rate_limited": "rate-limited",
    "crashed": "crashed",
    "timeout": "timed out",
    "unavailable": "API unavailable",
    "cooldown": "cooling down after a usage limit",
}


def all_failed_error(errors: list[Exception], attempts: list[Attempt]) -> AllProvidersFailed:
    """One error that lists every attempt, readable at a glance in a CI log.

    A provider that is not installed is named without its install hint (the CLI prints the hints once, after
    the dash); when none is installed, the message says just that.

    >>> missing = [ProviderNotInstalled(n, n) for n in ("claude", "codex")]
    >>> str(all_failed_error(missing, [Attempt(provider=e.provider, reason="not_installed") for e in missing]))
    'no agent CLI is installed (tried claude, codex)'
    """
    failed = [a for a in attempts if a.reason != "answered"]
    reasons = {id(a): _why_not_installed(a, errors) for a in failed if a.reason == "not_installed"}
    if failed and len(reasons) == len(failed) and not any(reasons.values()):
        message = f"no agent CLI is installed (tried {', '.join(a.provider for a in failed)})"
        return AllProvidersFailed(message, errors, list(attempts))
    parts = []
    for a in failed:
        if id(a) in reasons:
            parts.append(f"{a.provider}: {reasons[id(a)] or 'not installed'}")
            continue
        line = f"{a.provider}: {_REASON_TEXT.get(a.reason, a.reason)}"
        if a.error:
            line += f" ({a.error})"
        parts.append(line)
    message = f"no provider could answer ({len(parts)} tried): " + "; ".join(parts)
    return AllProvidersFailed(message, errors, list(attempts))


def _why_not_installed(attempt: Attempt, errors: list[Exception]) -> str:
    """What is wrong beyond a command missing from PATH (a ``CAW_<NAME>_BIN`` that names no executable)."""
    for exc in errors:
        if isinstance(exc, ProviderNotInstalled) and exc.provider == attempt.provider:
            return exc.reason
    return ""


def _never(name: str) -> str | None:
    return None


def _no_reset(name: str) -> datetime | None:
    return None


def _ignore(_: object) -> None:
    return None


def first_answer(
    candidates: Sequence[C],
    attempt: Callable[[C], Generator[Event, None, Turn]],
    *,
    name: Callable[[C], str],
    wait: Callable[[C, UsageLimitError], Generator[Event, None, Turn]] | None = None,
    forget: Callable[[C], None] = _ignore,
    skip: Callable[[str], str | None] = _never,
    cooldown_until: Callable[[str], datetime | None] = _no_reset,
    on_limit: Callable[[UsageLimitError], None] = _ignore,
    record: Callable[[Attempt], None] = _ignore,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[Event, None, Turn]:
    """Try ``candidates`` in order until one answers; yield its events, return its turn.

    * ``attempt(c)`` runs one turn on ``c`` (yields events, returns the Turn or raises);
    * ``wait(c, limit)``, when waiting is allowed, waits out ``limit`` and continues on ``c`` (see
      ``caw.policy.autowait.wait_and_retry``); it is used when the only candidate is limited, or when
      every candidate is limited (now or by its cooldown): then for the one whose limit resets first;
    * ``forget(c)`` drops a conversation id another candidate's attempt left (called before each attempt);
    * ``skip(name)`` is the cooldown memory (a reason to skip without a request, or None), consulted only
      when there is somewhere else to go; ``cooldown_until(name)`` says when that cooldown ends;
    * ``on_limit`` hears of every usage limit, ``record`` of every ``Attempt``.

    Raises the error of a failure every provider would hit at once, else ``AllProvidersFailed`` listing
    every attempt.

    >>> def attempt(name):
    ...     if name == "claude":
    ...         raise ProviderNotInstalled("claude", "claude")
    ...     yield from ()
    ...     return Turn(input="hi", provider=name)
    >>> gen = first_answer(["claude", "codex"], attempt, name=str)
    >>> try:
    ...     next(gen)
    ... except StopIteration as done:
    ...     print(done.value.provider)
    codex
    """
    several = len(candidates) > 1
    errors: list[Exception] = []
    tried: list[Attempt] = []
    limited: list[tuple[C, UsageLimitError]] = []  # limited now, or known to be (cooldown)

    def note(a: Attempt) -> None:
        tried.append(a)
        record(a)

    for cand in candidates:
        who = name(cand)
        skip_reason = skip(who) if several else None
        if skip_reason is not None:
            until = cooldown_until(who)
            note(Attempt(provider=who, reason="cooldown", error=skip_reason, resets_at=until))
            limited.append((cand, UsageLimitError(who, skip_reason, resets_at=until, kind="usage")))
            continue
        started = clock()
        forget(cand)
        try:
            turn = yield from attempt(cand)
        except TurnCancelled:
            raise  # the user stopped the send: not a failed provider, and nothing is tried after it
        except Exception as exc:
            reason = failover_reason(exc)
            if isinstance(exc, UsageLimitError):
                on_limit(exc)
            if reason is None or not several:
                if isinstance(exc, UsageLimitError) and exc.waitable and wait is not None:
                    return (yield from wait(cand, exc))
                if several:
                    note(_failed(who, reason or "error", exc, started, clock))
                raise
            note(_failed(who, reason, exc, started, clock))
            errors.append(exc)
            if isinstance(exc, UsageLimitError):
                limited.append((cand, exc))
            continue
        note(Attempt(provider=who, reason="answered", duration_ms=_ms_since(started, clock)))
        return turn
    # nobody answered. When every provider that could run is limited (now, or by its cooldown) and
    # waiting is allowed, wait for the limit that resets first; otherwise one error with every attempt
    others = [e for e in errors if not isinstance(e, UsageLimitError) and failover_reason(e) != "not_installed"]
    if wait is not None and limited and not others and all(e.waitable for _, e in limited):
        best, best_exc = min(limited, key=lambda ce: ce[1].resets_at.timestamp() if ce[1].resets_at else float("inf"))
        forget(best)
        started = clock()
        turn = yield from wait(best, best_exc)
        note(Attempt(provider=name(best), reason="answered", duration_ms=_ms_since(started, clock)))
        return turn
    raise all_failed_error(errors, tried)


def _ms_since(started: float, clock: Callable[[], float]) -> int:
    return int((clock() - started) * 1000)


def _failed(who: str, reason: str, exc: Exception, started: float, clock: Callable[[], float]) -> Attempt:
    # the provider is named by the attempt, and an install hint is the CLI's to print once, at the end
    error = exc.reason or f"the `{exc.binary}` command was not found" if isinstance(exc, ProviderNotInstalled) else ""
    return Attempt(
        provider=who,
        reason=reason,
        error=error or str(exc).removeprefix(f"{who}: "),
        duration_ms=_ms_since(started, clock),
        resets_at=getattr(exc, "resets_at", None),
    )
