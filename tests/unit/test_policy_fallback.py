"""``caw.policy.fallback.first_answer`` over scripted attempts: no session, no provider, no process."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
    ProviderCrashed,
    ProviderNotInstalled,
    TurnFailed,
    UsageLimitError,
)
from caw.events import Event, TextEvent
from caw.models import Attempt, Turn
from caw.policy.fallback import first_answer

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@dataclass
class Script:
    """``outcomes[name]``: the reply text, or the error to raise, of each attempt on that candidate."""

    outcomes: dict[str, list[str | Exception]]
    cooldowns: dict[str, datetime] = field(default_factory=dict)
    waiting: bool = True
    now: float = 0.0
    calls: list[str] = field(default_factory=list)
    waits: list[tuple[str, UsageLimitError]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    limits: list[UsageLimitError] = field(default_factory=list)
    records: list[Attempt] = field(default_factory=list)

    def attempt(self, name: str) -> Generator[Event, None, Turn]:
        self.calls.append(name)
        self.now += 2.5  # each attempt takes 2.5 s on the injected clock
        outcome = self.outcomes[name].pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        yield TextEvent(provider=name, text=outcome)
        return Turn(input="hi", provider=name, status="completed")

    def wait(self, name: str, exc: UsageLimitError) -> Generator[Event, None, Turn]:
        self.waits.append((name, exc))
        self.now += 60
        yield TextEvent(provider=name, text="after the wait")
        return Turn(input="hi", provider=name, status="completed")

    def run(self, order: list[str]) -> tuple[list[Event], Turn]:
        gen = first_answer(
            order,
            self.attempt,
            name=lambda c: c,
            wait=self.wait if self.waiting else None,
            forget=self.forgotten.append,
            skip=lambda n: f"cooling down until {self.cooldowns[n]:%H:%M}" if n in self.cooldowns else None,
            cooldown_until=self.cooldowns.get,
            on_limit=self.limits.append,
            record=self.records.append,
            clock=lambda: self.now,
        )
        events: list[Event] = []
        while True:
            try:
                events.append(next(gen))
            except StopIteration as stop:
                return events, stop.value

    def reasons(self) -> list[tuple[str, str]]:
        return [(a.provider, a.reason) for a in self.records]


def limit(name: str, minutes: float | None = 30, *, waitable: bool = True) -> UsageLimitError:
    resets = T0 + timedelta(minutes=minutes) if minutes is not None else None
    return UsageLimitError(name, "usage limit", resets_at=resets, waitable=waitable)


def test_the_first_answer_wins_and_its_events_pass_through() -> None:
    s = Script({"claude": ["hello"], "codex": ["never"]})
    events, turn = s.run(["claude", "codex"])
    assert turn.provider == "claude" and [getattr(e, "text", None) for e in events] == ["hello"]
    assert s.calls == ["claude"] and s.reasons() == [("claude", "answered")]
    assert s.records[0].duration_ms == 2500  # measured on the injected clock


def test_a_provider_failure_moves_on_and_records_why() -> None:
    s = Script({"claude": [AuthenticationError("claude", "401")], "codex": ["codex answers"]})
    _, turn = s.run(["claude", "codex"])
    assert turn.provider == "codex"
    assert s.reasons() == [("claude", "auth"), ("codex", "answered")]
    assert s.records[0].error and "401" in s.records[0].error
    assert s.forgotten == ["claude", "codex"]  # a conversation id of another candidate is dropped first


def test_an_error_every_provider_would_hit_stops_at_once() -> None:
    bad = TurnFailed("claude", "invalid request", kind="invalid_request")
    s = Script({"claude": [bad], "codex": ["x"]})
    with pytest.raises(TurnFailed):
        s.run(["claude", "codex"])
    assert s.calls == ["claude"] and s.reasons() == [("claude", "error")]


def test_a_single_candidate_raises_its_own_error_and_records_nothing() -> None:
    s = Script({"claude": [ProviderCrashed("claude", "exit 1")]})
    with pytest.raises(ProviderCrashed):
        s.run(["claude"])
    assert s.records == []


def test_all_failing_is_one_error_with_every_attempt() -> None:
    s = Script(
        {
            "claude": [limit("claude")],
            "codex": [ProviderNotInstalled("codex", "codex")],
            "opencode": [ProviderCrashed("opencode", "exit 1")],
        }
    )
    with pytest.raises(AllProvidersFailed) as info:
        s.run(["claude", "codex", "opencode"])
    assert [a.reason for a in info.value.attempts] == ["rate_limited", "not_installed", "crashed"]
    assert len(info.value.errors) == 3
    assert s.waits == []  # a crash is not something waiting fixes
    assert len(s.limits) == 1  # every limit reaches the cooldown memory


def test_a_limited_single_candidate_is_waited_out_when_waiting_is_allowed() -> None:
    err = limit("claude")
    s = Script({"claude": [err]})
    _, turn = s.run(["claude"])
    assert s.waits == [("claude", err)] and turn.provider == "claude"
    assert s.limits == [err]
    assert s.records == []  # one provider: no failover attempts to report


def test_a_limit_that_does_not_reset_with_time_is_never_waited_for() -> None:
    s = Script({"claude": [limit("claude", None, waitable=False)]})
    with pytest.raises(UsageLimitError):
        s.run(["claude"])
    assert s.waits == []


def test_without_waiting_a_limited_single_candidate_raises() -> None:
    s = Script({"claude": [limit("claude")]}, waiting=False)
    with pytest.raises(UsageLimitError):
        s.run(["claude"])


def test_cooldown_skips_without_an_attempt_only_when_there_is_somewhere_else_to_go() -> None:
    s = Script({"claude": ["claude"], "codex": ["codex"]}, cooldowns={"claude": T0 + timedelta(hours=1)})
    _, turn = s.run(["claude", "codex"])
    assert turn.provider == "codex" and s.calls == ["codex"]
    assert s.reasons() == [("claude", "cooldown"), ("codex", "answered")]
    assert s.records[0].resets_at == T0 + timedelta(hours=1)
    alone = Script({"claude": ["claude"]}, cooldowns={"claude": T0 + timedelta(hours=1)})
    _, turn = alone.run(["claude"])  # the only provider: try it anyway, the memory may be stale
    assert turn.provider == "claude"


def test_everyone_limited_waits_for_the_earliest_reset() -> None:
    s = Script(
        {"claude": [limit("claude", 90)], "codex": [limit("codex", 20)]},
        cooldowns={"opencode": T0 + timedelta(minutes=45)},
    )
    _, turn = s.run(["claude", "codex", "opencode"])
    assert [name for name, _ in s.waits] == ["codex"] and turn.provider == "codex"
    assert s.reasons() == [("claude", "rate_limited"), ("codex", "rate_limited"), ("opencode", "cooldown"),
                           ("codex", "answered")]  # fmt: skip
    assert s.records[-1].duration_ms == 60_000  # the wait and the retry
    assert s.forgotten[-1] == "codex"  # the wait starts a conversation of its own


def test_a_cooldown_whose_reset_comes_first_is_the_one_waited_for() -> None:
    s = Script({"claude": [limit("claude", 90)]}, cooldowns={"codex": T0 + timedelta(minutes=5)})
    s.run(["claude", "codex"])
    assert [name for name, _ in s.waits] == ["codex"]
    assert s.waits[0][1].resets_at == T0 + timedelta(minutes=5)


def test_a_limit_with_an_unknown_reset_is_waited_for_last() -> None:
    s = Script({"claude": [limit("claude", None)], "codex": [limit("codex", 600)]})
    s.run(["claude", "codex"])
    assert [name for name, _ in s.waits] == ["codex"]


def test_everyone_limited_but_one_broken_is_one_error_not_a_wait() -> None:
    s = Script({"claude": [limit("claude")], "codex": [AuthenticationError("codex", "401")]})
    with pytest.raises(AllProvidersFailed):
        s.run(["claude", "codex"])
    assert s.waits == []


def test_a_missing_provider_does_not_prevent_the_wait() -> None:
    s = Script({"claude": [ProviderNotInstalled("claude", "claude")], "codex": [limit("codex")]})
    _, turn = s.run(["claude", "codex"])
    assert [name for name, _ in s.waits] == ["codex"] and turn.provider == "codex"


def test_everyone_limited_without_waiting_is_one_error() -> None:
    s = Script({}, cooldowns={"claude": T0, "codex": T0}, waiting=False)
    with pytest.raises(AllProvidersFailed, match="cooling down"):
        s.run(["claude", "codex"])
    assert s.calls == []
