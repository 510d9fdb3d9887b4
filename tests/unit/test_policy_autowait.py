"""``caw.policy.autowait.wait_and_retry`` over a scripted retry: no session, no process, no sleeping."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from caw.errors import AuthenticationError, TurnCancelled, UsageLimitError
from caw.events import Event, LimitWaitEvent, TextEvent
from caw.models import Turn
from caw.policy.autowait import LimitWaitPolicy, wait_and_retry

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def limit(minutes: float | None = 30) -> UsageLimitError:
    resets = T0 + timedelta(minutes=minutes) if minutes is not None else None
    return UsageLimitError("claude", "usage limit", resets_at=resets, kind="session")


@dataclass
class Waiter:
    """A LimitWaiter that records its calls; ``give_up_after`` waits, it raises the limit."""

    give_up_after: int = 99
    waits: list[tuple[UsageLimitError, str | None]] = field(default_factory=list)
    resets: int = 0

    def wait(self, error: UsageLimitError, *, cancel: threading.Event, handle: str | None) -> Iterator[Event]:
        if len(self.waits) >= self.give_up_after:
            raise UsageLimitError(error.provider, "not waiting: too many tries", resets_at=error.resets_at)
        self.waits.append((error, handle))
        yield LimitWaitEvent(provider=error.provider, wake_at=T0, kind="session")

    def reset(self) -> None:
        self.resets += 1


@dataclass
class Retry:
    outcomes: list[str | Exception]
    calls: int = 0

    def __call__(self) -> Generator[Event, None, Turn]:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        yield TextEvent(provider="claude", text=outcome)
        return Turn(input="hi", provider="claude", status="completed")


def drive(gen: Generator[Event, None, Turn]) -> tuple[list[Event], Turn]:
    events: list[Event] = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_waits_then_retries_and_returns_the_retrys_turn() -> None:
    waiter, retry = Waiter(), Retry(["answered"])
    seen: list[Event] = []
    marks: list[str] = []
    events, turn = drive(
        wait_and_retry(
            limit(),
            retry,
            waiter,
            cancel=threading.Event(),
            handle=lambda: "caw1_H",
            before_wait=lambda: marks.append("pending"),
            on_wait_event=seen.append,
        )
    )
    assert [type(e).__name__ for e in events] == ["LimitWaitEvent", "TextEvent"]
    assert seen == events[:1]  # only the waiter's events are announced; the retry's are its own
    assert turn.status == "completed" and retry.calls == 1
    assert waiter.waits[0][1] == "caw1_H" and waiter.resets == 1 and marks == ["pending"]


def test_a_retry_that_is_limited_again_waits_again_for_the_new_limit() -> None:
    second = limit(90)
    waiter, retry = Waiter(), Retry([second, "answered"])
    limits: list[UsageLimitError] = []
    marks: list[str] = []
    drive(
        wait_and_retry(
            limit(),
            retry,
            waiter,
            cancel=threading.Event(),
            before_wait=lambda: marks.append("pending"),
            on_limit=limits.append,
        )
    )
    assert [w[0] for w in waiter.waits][1] is second and limits == [second]
    assert retry.calls == 2 and marks == ["pending", "pending"] and waiter.resets == 1


def test_when_the_waiter_gives_up_its_error_carries_the_resume_handle() -> None:
    waiter, retry = Waiter(give_up_after=1), Retry([limit()])
    with pytest.raises(UsageLimitError, match="too many tries") as info:
        drive(wait_and_retry(limit(), retry, waiter, cancel=threading.Event(), handle=lambda: "caw1_H"))
    assert info.value.resume_handle == "caw1_H"
    assert waiter.resets == 0  # the limit is not over


def test_another_error_of_the_retry_is_raised_as_it_is() -> None:
    waiter, retry = Waiter(), Retry([AuthenticationError("claude", "401")])
    with pytest.raises(AuthenticationError):
        drive(wait_and_retry(limit(), retry, waiter, cancel=threading.Event()))
    assert len(waiter.waits) == 1 and waiter.resets == 0


def test_with_the_real_policy_on_an_injected_clock() -> None:
    """Reset in 30 minutes plus a 60 s buffer, then the retry: the clock moved by exactly that."""
    now = [T0]
    slept: list[float] = []

    def sleeper(seconds: float, cancel: threading.Event) -> bool:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)
        return False

    policy = LimitWaitPolicy(buffer=60, clock=lambda: now[0], sleeper=sleeper, out=lambda line: None)
    events, turn = drive(wait_and_retry(limit(30), Retry(["answered"]), policy, cancel=threading.Event()))
    assert now[0] - T0 == timedelta(minutes=31)
    assert max(slept) <= 1.0
    assert isinstance(events[0], LimitWaitEvent) and turn.status == "completed"


def test_cancel_during_the_wait_is_a_turn_cancelled_and_no_retry() -> None:
    cancel = threading.Event()
    now = [T0]

    def sleeper(seconds: float, ev: threading.Event) -> bool:
        now[0] += timedelta(seconds=seconds)
        ev.set()  # the user pressed Ctrl-C while waiting
        return True

    retry = Retry(["never"])
    policy = LimitWaitPolicy(clock=lambda: now[0], sleeper=sleeper, out=lambda line: None)
    with pytest.raises(TurnCancelled):
        drive(wait_and_retry(limit(), retry, policy, cancel=cancel, handle=lambda: "caw1_H"))
    assert retry.calls == 0
