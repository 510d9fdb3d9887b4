"""The auto-wait policy (caw.policy.autowait) and its countdown, on a fake clock: nothing here really sleeps."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from caw.agent import Agent
from caw.cli.args import rich_countdown
from caw.cli.countdown import Countdown
from caw.errors import ConfigurationError, TurnCancelled, UsageLimitError
from caw.events import LimitWaitEvent, event_summary
from caw.policy.autowait import (
    DEFAULT_BUFFER,
    DEFAULT_MAX_WAIT,
    UNKNOWN_RESET_SCHEDULE,
    LimitWaitPolicy,
    LineDisplay,
    WaitPlan,
    describe,
    format_duration,
    known_limits,
    parse_duration,
    short_time,
)
from caw.state.ledger import CooldownStore

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
HANDLE = "caw1-test-handle"


class FakeTime:
    """A clock and a sleeper that move together. ``ratio`` < 1 makes the sleeper wake early."""

    def __init__(self, start: datetime = T0, *, ratio: float = 1.0) -> None:
        self.now = start
        self.ratio = ratio
        self.sleeps: list[float] = []
        self.on_sleep: list[Callable[[FakeTime], None]] = []

    def clock(self) -> datetime:
        return self.now

    def sleeper(self, seconds: float, event: threading.Event) -> bool:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds * self.ratio)
        for hook in list(self.on_sleep):
            hook(self)
        return event.is_set()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def limit(resets_in: float | None = 3600, *, kind: str = "session", waitable: bool = True) -> UsageLimitError:
    resets_at = T0 + timedelta(seconds=resets_in) if resets_in is not None else None
    return UsageLimitError("claude", "You've hit your session limit", resets_at=resets_at, kind=kind, waitable=waitable)


def policy(ft: FakeTime, lines: list[str] | None = None, **kw: Any) -> LimitWaitPolicy:
    sink = lines if lines is not None else []
    return LimitWaitPolicy(clock=ft.clock, sleeper=ft.sleeper, out=sink.append, tz=timezone.utc, **kw)


def run(p: LimitWaitPolicy, err: UsageLimitError, cancel: threading.Event | None = None) -> list[LimitWaitEvent]:
    return list(p.wait(err, cancel=cancel or threading.Event(), handle=HANDLE))


@pytest.fixture(autouse=True)
def _private_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for var in ("CAW_MAX_WAIT", "CAW_WAIT_BUFFER", "CAW_AUTOWAIT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path))


# ---- when to wake ------------------------------------------------------------------------------------
def test_wakes_at_reset_plus_buffer_and_not_a_second_later() -> None:
    ft = FakeTime()
    run(policy(ft), limit(3600))
    wake = T0 + timedelta(seconds=3600 + DEFAULT_BUFFER)
    assert wake <= ft.now < wake + timedelta(seconds=1)
    assert max(ft.sleeps) <= 1.0  # slices: the countdown moves and cancel is immediate


def test_never_wakes_early_even_when_the_sleeper_returns_early() -> None:
    ft = FakeTime(ratio=0.4)  # a sleeper that comes back after 40% of the time asked for
    run(policy(ft, buffer=30), limit(600))
    assert ft.now >= T0 + timedelta(seconds=630)
    assert ft.now < T0 + timedelta(seconds=631)


def test_buffer_from_kwarg_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_WAIT_BUFFER", "5m")
    assert LimitWaitPolicy.from_options().buffer == 300
    assert LimitWaitPolicy.from_options(buffer=7).buffer == 7
    monkeypatch.delenv("CAW_WAIT_BUFFER")
    assert LimitWaitPolicy.from_options().buffer == DEFAULT_BUFFER


def test_a_reset_already_past_is_not_a_busy_loop() -> None:
    """The server still says no after the reset it announced: back off like an unknown reset."""
    ft = FakeTime()
    ft.advance(3600)
    run(policy(ft), limit(60))  # reset was 59 minutes ago
    assert sum(ft.sleeps) == pytest.approx(UNKNOWN_RESET_SCHEDULE[0])


# ---- when not to wait --------------------------------------------------------------------------------
def test_longer_than_max_wait_raises_with_reset_time_and_resume_handle() -> None:
    ft = FakeTime()
    err = limit(8 * 3600, kind="weekly")
    with pytest.raises(UsageLimitError) as info:
        run(policy(ft), err)
    raised = info.value
    assert raised.resets_at == err.resets_at
    assert raised.resume_handle == HANDLE
    assert raised.kind == "weekly" and raised.provider == "claude"
    assert "2026-11-22 20:00 UTC" in str(raised)
    assert f"caw resume {HANDLE}" in str(raised)
    assert "max wait" in str(raised)
    assert ft.sleeps == []


def test_max_wait_just_covers_reset_plus_buffer() -> None:
    ft = FakeTime()
    run(policy(ft, max_wait=600 + DEFAULT_BUFFER), limit(600))
    assert ft.now >= T0 + timedelta(seconds=600 + DEFAULT_BUFFER)
    with pytest.raises(UsageLimitError):
        run(policy(FakeTime(), max_wait=600 + DEFAULT_BUFFER - 1), limit(600))


def test_max_wait_zero_never_waits() -> None:
    ft = FakeTime()
    with pytest.raises(UsageLimitError, match="auto-wait is off"):
        run(policy(ft, max_wait=0), limit(10))
    assert ft.sleeps == []


def test_money_problems_are_not_waited_for() -> None:
    ft = FakeTime()
    with pytest.raises(UsageLimitError) as info:
        run(policy(ft), limit(None, kind="credits", waitable=False))
    assert info.value.waitable is False
    assert "does not reset with time" in str(info.value)
    assert ft.sleeps == []


@pytest.mark.parametrize(("value", "seconds"), [("6h", 21600), ("90m", 5400), ("3600", 3600), ("1h30m", 5400)])
def test_max_wait_from_env(monkeypatch: pytest.MonkeyPatch, value: str, seconds: float) -> None:
    monkeypatch.setenv("CAW_MAX_WAIT", value)
    assert LimitWaitPolicy.from_options().max_wait == seconds
    assert LimitWaitPolicy.from_options(max_wait=12).max_wait == 12  # the kwarg wins


def test_default_max_wait_is_six_hours() -> None:
    assert LimitWaitPolicy.from_options().max_wait == DEFAULT_MAX_WAIT == 6 * 3600


def test_malformed_env_fails_at_session_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_MAX_WAIT", "six hours")
    with pytest.raises(ConfigurationError, match="CAW_MAX_WAIT"):
        LimitWaitPolicy.from_options()


def test_agent_options_reach_the_policy() -> None:
    ft = FakeTime()
    agent = Agent(provider="claude", max_wait=900, wait_buffer=5, clock=ft.clock, sleeper=ft.sleeper)
    waiter = agent._setup(None).limit_waiter
    assert isinstance(waiter, LimitWaitPolicy)
    assert (waiter.max_wait, waiter.buffer) == (900, 5)
    assert waiter.clock == ft.clock and waiter.sleeper == ft.sleeper
    assert Agent(provider="claude", auto_wait=False)._setup(None).limit_waiter is None


# ---- cancel ------------------------------------------------------------------------------------------
def test_cancel_before_the_wait_raises_at_once() -> None:
    ft = FakeTime()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TurnCancelled, match=f"caw resume {HANDLE}"):
        run(policy(ft), limit(3600), cancel)
    assert ft.sleeps == []


def test_cancel_during_the_wait_stops_within_one_slice() -> None:
    ft = FakeTime()
    cancel = threading.Event()
    ft.on_sleep.append(lambda t: cancel.set() if t.now >= T0 + timedelta(minutes=10) else None)
    with pytest.raises(TurnCancelled) as info:
        run(policy(ft), limit(3600), cancel)
    assert str(info.value) == (
        f"cancelled while waiting for the usage limit to reset; resume with: caw resume {HANDLE}"
    )
    assert ft.now <= T0 + timedelta(minutes=10, seconds=1)


def test_cancel_with_a_real_event_wait_returns_promptly() -> None:
    """The default sleeper is Event.wait: setting the event from another thread ends the wait."""
    start = datetime.now(timezone.utc)
    cancel = threading.Event()
    p = LimitWaitPolicy(out=lambda line: None)
    err = UsageLimitError("claude", "limit", resets_at=start + timedelta(hours=1))
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    with pytest.raises(TurnCancelled):
        list(p.wait(err, cancel=cancel, handle=None))
    assert (datetime.now(timezone.utc) - start).total_seconds() < 2


def test_ctrl_c_propagates_and_says_how_to_resume() -> None:
    ft = FakeTime()
    lines: list[str] = []

    def interrupt(t: FakeTime) -> None:
        raise KeyboardInterrupt

    ft.on_sleep.append(interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(policy(ft, lines), limit(3600))
    assert lines[-1] == f"caw: stopped waiting for claude; resume after the reset with: caw resume {HANDLE}"


# ---- unknown reset: bounded, escalating, each try is the turn itself --------------------------------
def test_unknown_reset_escalates_across_calls_then_gives_up() -> None:
    ft = FakeTime()
    p = policy(ft, max_tries=4)
    waits = []
    for _ in range(4):
        before = ft.now
        run(p, limit(None))
        waits.append((ft.now - before).total_seconds())
        ft.advance(5)  # the resumed turn fails again quickly
    assert waits == [60, 120, 300, 600]
    with pytest.raises(UsageLimitError, match="still limited after 4"):
        run(p, limit(None))


def test_unknown_reset_total_is_capped_by_max_wait() -> None:
    ft = FakeTime()
    p = policy(ft, max_wait=200)
    run(p, limit(None))
    run(p, limit(None))  # 60 + 120 = 180
    before = ft.now
    run(p, limit(None))  # only 20 s of the 300 s step are left
    assert (ft.now - before).total_seconds() == pytest.approx(20)
    with pytest.raises(UsageLimitError):
        run(p, limit(None))


def test_a_limit_long_after_the_last_wake_starts_a_new_episode() -> None:
    ft = FakeTime()
    p = policy(ft)
    run(p, limit(None))
    run(p, limit(None))
    ft.advance(3600)  # the retry got through; an hour later, a new limit
    before = ft.now
    run(p, limit(None))
    assert (ft.now - before).total_seconds() == 60


def test_reset_forgets_the_episode() -> None:
    ft = FakeTime()
    p = policy(ft, max_tries=1)
    run(p, limit(None))
    p.reset()
    run(p, limit(None))  # would raise without the reset
    assert ft.now - T0 == timedelta(seconds=120)


# ---- what the user and the logger see ---------------------------------------------------------------
def test_log_lines_without_a_terminal() -> None:
    ft = FakeTime()
    lines: list[str] = []
    run(policy(ft, lines), limit(2 * 3600 + 60 * 3 - DEFAULT_BUFFER))  # wake in 2h 03m
    assert lines[0] == (
        "caw: claude usage limit (session) — waiting until 2026-11-22 14:03 UTC (in 2h 03m); Ctrl-C to stop"
    )
    assert lines[1] == "caw: still waiting for claude (1h 58m left)"
    progress = [line for line in lines if line.startswith("caw: still waiting")]
    assert len(progress) == 24  # one every 5 minutes of 2h 03m
    assert lines[-1] == "caw: done waiting for claude; continuing the conversation"


def test_unknown_reset_line_names_the_try() -> None:
    ft = FakeTime()
    lines: list[str] = []
    run(policy(ft, lines), limit(None, kind="rate"))
    assert lines[0] == (
        "caw: claude usage limit (rate), reset time unknown — retrying at 2026-11-22 12:01 UTC "
        "(in 1m 00s; try 1 of 10); Ctrl-C to stop"
    )


def test_events_at_the_start_and_every_interval() -> None:
    ft = FakeTime()
    err = limit(3600)
    events = run(policy(ft), err)
    first = events[0]
    assert first.provider == "claude" and first.kind == "session"
    assert first.resets_at == err.resets_at
    assert first.wake_at == T0 + timedelta(seconds=3600 + DEFAULT_BUFFER)
    assert "waiting until" in first.message
    assert len(events) == 1 + 12  # 62 minutes, one progress event per 5 minutes
    assert all(isinstance(ev, LimitWaitEvent) for ev in events)
    summary = event_summary(first)  # what the session logger receives
    assert summary.startswith("[claude]") and "session" in summary


def test_writes_lines_to_stderr_when_it_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    ft = FakeTime()
    p = LimitWaitPolicy(clock=ft.clock, sleeper=ft.sleeper, tz=timezone.utc)
    run(p, limit(60))
    err = capsys.readouterr().err
    assert "caw: claude usage limit (session) — waiting until 2026-11-22 12:03 UTC" in err
    assert "continuing the conversation" in err


def test_a_terminal_gets_the_countdown(monkeypatch: pytest.MonkeyPatch) -> None:
    import caw.policy.autowait as ratelimit

    monkeypatch.setattr(ratelimit, "_stderr_is_tty", lambda: True)
    assert isinstance(LimitWaitPolicy()._display(), ratelimit.TtyCountdown)  # the policy's own, no rich
    assert isinstance(LimitWaitPolicy(countdown=rich_countdown)._display(), Countdown)  # what `caw` hands in
    assert isinstance(LimitWaitPolicy(out=print)._display(), LineDisplay)  # an explicit writer means lines
    monkeypatch.setattr(ratelimit, "_stderr_is_tty", lambda: False)
    assert isinstance(LimitWaitPolicy()._display(), LineDisplay)


def test_countdown_shows_provider_kind_reset_time_and_time_left() -> None:
    from rich.console import Console

    ft = FakeTime()
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=160, color_system=None)
    plan = WaitPlan("claude", "session", T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=2), T0, HANDLE)
    display = Countdown(clock=ft.clock, tz=timezone.utc, console=console)
    display.start(plan)
    ft.advance(60)
    display.tick(ft.now)
    display.stop("done")
    out = buf.getvalue()
    assert "2h 02m left · claude session limit · resets 14:00 UTC · Ctrl-C to stop" in out
    assert "2h 01m left · claude session limit" in out
    assert out.rstrip().endswith("caw: done waiting for claude; continuing the conversation")


def test_countdown_text_for_an_unknown_reset() -> None:
    plan = WaitPlan("codex", "rate", None, T0 + timedelta(minutes=2), T0, None, try_number=2, max_tries=10)
    assert describe(plan, T0, timezone.utc) == (
        "2m 00s left · codex rate limit · reset time unknown, try 2 of 10 · Ctrl-C to stop"
    )


def test_countdown_names_the_day_of_a_reset_days_away() -> None:
    assert short_time(T0 + timedelta(days=2, hours=7, minutes=52), T0, timezone.utc) == "Nov 24 19:52 UTC"
    assert short_time(T0 + timedelta(hours=3), T0, timezone.utc) == "15:00 UTC"


# ---- durations ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6h", 21600),
        ("90m", 5400),
        ("45s", 45),
        ("1h30m", 5400),
        ("1h 30m 15s", 5415),
        ("2d", 172800),
        ("0", 0),
        ("3600", 3600),
        ("1.5h", 5400),
        (" 10M ", 600),
        (120, 120),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "6x", "-5", "1h1h", "six hours", "1h-30m", "nan", "inf", "5 m x"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m 00s"), (245, "4m 05s"), (7380, "2h 03m"), (7379.2, "2h 03m"), (90000, "1d 01h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ---- cooldown memory ---------------------------------------------------------------------------------
def test_known_limits_reads_the_cooldown_store(tmp_path: object) -> None:
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    CooldownStore.default().set("codex", until, kind="usage")
    CooldownStore.default().set("claude", datetime.now(timezone.utc) - timedelta(minutes=1))  # expired
    assert known_limits() == {"codex": until}


def test_a_reset_that_passed_before_the_first_wait_costs_one_buffer_not_the_unknown_schedule() -> None:
    """opencode retries a 429 itself and starts slowly: its reset is often past when caw hears of it."""
    ft = FakeTime()
    p = policy(ft, buffer=5)
    run(p, limit(-10))  # resets_at + buffer is already behind us, and nothing was tried since
    assert sum(ft.sleeps) == pytest.approx(5)
    # the same reset after that wait did not hold: now the bounded escalation applies
    ft.sleeps.clear()
    run(p, limit(-10))
    assert sum(ft.sleeps) == pytest.approx(UNKNOWN_RESET_SCHEDULE[0])
