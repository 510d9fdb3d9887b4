"""Issue 12 item 7: every turn has a deadline, and a CLI that only retries is given up on (no processes)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import caw
from caw.errors import ConfigurationError, FirstOutputTimeout, ProviderUnavailable
from caw.events import (
    ErrorEvent,
    Event,
    RawEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    WarningEvent,
    event_summary,
)
from caw.models import Turn
from caw.policy.fallback import failover_reason
from caw.session.turn import (
    DEFAULT_FIRST_OUTPUT_TIMEOUT,
    DEFAULT_TIMEOUT,
    DEFAULT_TRANSIENT_TIMEOUT,
    TurnOptions,
    TurnProgress,
)
from tests.unit.scripted import ScriptedRunner
from tests.unit.test_cli import Script

RECONNECT = "Reconnecting... waiting for network (Connection failed: error sending request)"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    for var in ("CAW_PROVIDER", "CAW_TIMEOUT", "CAW_FIRST_OUTPUT_TIMEOUT", "CAW_TRANSIENT_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("claude", "codex", "opencode"):
        exe = bindir / name
        exe.write_text("#!/bin/sh\necho 1.0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    yield


class OptionsSpy(ScriptedRunner):
    """Records the TurnOptions each turn was run with."""

    def __init__(self) -> None:
        super().__init__({})
        self.options: list[TurnOptions] = []

    def __call__(self, *args: Any, **kw: Any) -> Generator[Event, None, Turn]:
        self.options.append(kw["options"])
        return super().__call__(*args, **kw)


def options_of(**agent_kw: Any) -> TurnOptions:
    spy = OptionsSpy()
    caw.Agent(provider="claude", runner=spy, auto_wait=False, **agent_kw).completion("hi")
    return spy.options[0]


def reconnect(n: int | None = None) -> RetryEvent:
    return RetryEvent(provider="codex", message=RECONNECT if n is None else f"Reconnecting... {n}/5")


# ---- default deadlines ---------------------------------------------------------------------------------


def test_a_turn_without_timeout_options_still_has_deadlines() -> None:
    options = options_of()
    assert options.timeout == DEFAULT_TIMEOUT == 1800
    assert options.first_output_timeout == DEFAULT_FIRST_OUTPUT_TIMEOUT == 300
    assert options.transient_timeout == DEFAULT_TRANSIENT_TIMEOUT == 90
    assert options.idle_timeout is None


def test_none_disables_a_default_deadline() -> None:
    options = options_of(timeout=None, first_output_timeout=None, transient_timeout=None)
    assert (options.timeout, options.first_output_timeout, options.transient_timeout) == (None, None, None)


def test_deadlines_come_from_the_environment_as_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_TIMEOUT", "10m")
    monkeypatch.setenv("CAW_FIRST_OUTPUT_TIMEOUT", "off")
    monkeypatch.setenv("CAW_TRANSIENT_TIMEOUT", "45")
    options = options_of()
    assert (options.timeout, options.first_output_timeout, options.transient_timeout) == (600, None, 45)
    assert options_of(timeout=5).timeout == 5  # an explicit option beats the environment


def test_a_bad_deadline_in_the_environment_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="CAW_TIMEOUT"):
        options_of()


def test_transient_timeout_must_be_seconds() -> None:
    with pytest.raises(ConfigurationError, match="transient_timeout"):
        caw.Agent(transient_timeout=-1)


# ---- the event-level watchdogs -------------------------------------------------------------------------


def progress(first: float | None = None, transient: float | None = 90.0) -> TurnProgress:
    return TurnProgress(TurnOptions(first_output_timeout=first, transient_timeout=transient), started=0.0)


def test_reconnecting_forever_expires_after_the_transient_bound() -> None:
    # offline codex: its session start, then "Reconnecting... waiting for network" at ~3, 11, 25, 47 s ...
    p = progress()
    p.see(SessionStarted(provider="codex", session_id="t"), 0.5)
    assert p.deadline() is None
    p.see(reconnect(), 3.0)
    assert p.deadline() is None  # one notice: maybe a CLI that recovered and thinks in silence
    p.see(WarningEvent(provider="codex", message="Falling back from WebSockets to HTTPS transport"), 5.0)
    p.see(reconnect(), 11.0)
    assert p.deadline() == (93.0, "transient", 90.0)  # counted from the first notice of the run
    p.see(reconnect(), 25.0)
    p.see(RawEvent(provider="codex", data={"type": "turn.started"}), 26.0)
    assert p.deadline() == (93.0, "transient", 90.0)  # neither notices nor lines it does not know reset it
    assert p.run_notices == 3 and p.last_notice == RECONNECT


def test_an_answer_ends_the_run_of_retry_notices() -> None:
    p = progress()
    p.see(reconnect(1), 1.0)
    p.see(reconnect(2), 2.0)
    p.see(TextEvent(provider="codex", text="back"), 3.0)
    assert p.deadline() is None
    p.see(reconnect(1), 50.0)
    p.see(reconnect(2), 60.0)
    assert p.deadline() == (140.0, "transient", 90.0)  # a new run starts at its own first notice


@pytest.mark.parametrize(
    "ev",
    [
        ErrorEvent(provider="opencode", kind="unknown", message="second error", fatal=False),
        RetryEvent(provider="claude", attempt=3, max_retries=10, status=529, message="overloaded"),
    ],
    ids=["non-fatal-error", "claude-api-retry"],
)
def test_non_fatal_errors_and_api_retries_are_notices(ev: Event) -> None:
    p = progress(transient=10.0)
    p.see(ev, 1.0)
    p.see(ev, 2.0)
    assert p.deadline() == (11.0, "transient", 10.0)


def test_the_transient_watchdog_can_be_disabled() -> None:
    p = progress(transient=None)
    for t in range(10):
        p.see(reconnect(), float(t))
    assert p.deadline() is None


def test_a_startup_line_is_no_answer_for_the_first_output_watchdog() -> None:
    # issue 17: claude prints its init line at once, also to a model server that never answers
    p = progress(first=30.0, transient=None)
    p.see(SessionStarted(provider="claude", session_id="s"), 0.2)
    p.see(RawEvent(provider="claude", data={"type": "system", "subtype": "status"}), 0.3)
    assert p.deadline() == (30.0, "first_output", 30.0)
    p.see(ThinkingEvent(provider="claude", text="hmm"), 12.0)
    assert p.deadline() is None


def test_the_earlier_of_both_event_deadlines_comes_first() -> None:
    p = progress(first=300.0, transient=90.0)
    p.see(reconnect(), 3.0)
    p.see(reconnect(), 11.0)
    assert p.deadline() == (93.0, "transient", 90.0)
    p.see(ToolCallEvent(provider="codex", id="1", name="exec_command"), 20.0)
    assert p.deadline() is None


# ---- failover ------------------------------------------------------------------------------------------


def unavailable() -> ProviderUnavailable:
    return ProviderUnavailable("codex", f"only retried for 90s (3 retry notices, no answer) (last: {RECONNECT})")


def test_a_cli_that_only_retries_is_unavailable_and_the_order_moves_on() -> None:
    assert failover_reason(unavailable()) == "unavailable"
    runner = ScriptedRunner({"codex": [unavailable()], "claude": ["claude answers"]})
    session = caw.Agent(provider=["codex", "claude"], auto_wait=False).start_session(runner=runner)
    assert session.send("hi").result == "claude answers"
    assert [(a.provider, a.reason) for a in session.trajectory.attempts] == [
        ("codex", "unavailable"),
        ("claude", "answered"),
    ]


def test_a_cli_that_only_retries_after_the_first_turn_fails_the_turn_and_keeps_it() -> None:
    runner = ScriptedRunner({"codex": ["first", unavailable()], "claude": ["never"]})
    session = caw.Agent(provider=["codex", "claude"], auto_wait=False).start_session(runner=runner)
    session.send("one")
    with pytest.raises(ProviderUnavailable) as info:
        session.send("two")
    assert runner.providers_called() == ["codex", "codex"]
    assert info.value.kind == "server" and isinstance(info.value, caw.TurnFailed)
    assert session.trajectory.turns[-1].input == "two" and session.trajectory.turns[-1].status != "completed"


def test_a_retry_without_a_count_does_not_read_attempt_none() -> None:
    assert event_summary(reconnect()) == f"[codex] retrying: {RECONNECT}"
    counted = RetryEvent(provider="codex", attempt=2, max_retries=5, message="Reconnecting... 2/5")
    assert event_summary(counted) == "[codex] retrying (attempt 2/5): Reconnecting... 2/5"
    assert event_summary(RetryEvent(provider="claude", attempt=3, message="overloaded")) == (
        "[claude] retrying (attempt 3): overloaded"
    )


# ---- the command line ----------------------------------------------------------------------------------


def test_caw_run_first_output_timeout_reaches_the_turn_and_exits_124(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_PROVIDER", "claude")
    script = Script(error=FirstOutputTimeout("claude gave no answer within 45s of starting", provider="claude"))
    r = script.invoke("run", "--first-output-timeout", "45s", "hi")
    assert script.calls[0][3].first_output_timeout == 45
    assert script.calls[0][3].timeout == DEFAULT_TIMEOUT  # the other deadlines keep their defaults
    assert r.exit_code == 124
    assert "gave no answer within 45s" in r.stderr and "raise --first-output-timeout" in r.stderr
