"""Provider order resolution and first-send failover, with scripted providers (no processes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import caw
from caw.errors import (
    AuthenticationError,
    ConfigurationError,
    FirstOutputTimeout,
    ProviderCrashed,
    ProviderNotInstalled,
    TurnFailed,
    UnknownProviderError,
    UsageLimitError,
)
from caw.providers.order import normalize_order, resolve_order
from caw.session import Session
from caw.state.ledger import CooldownStore
from tests.unit.scripted import ScriptedRunner


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CAW_PROVIDER", raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("claude", "codex", "opencode"):
        exe = bindir / name
        exe.write_text("#!/bin/sh\necho 1.0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    caw.set_provider_order(None)
    yield
    caw.set_provider_order(None)


def session_for(agent: caw.Agent, runner: ScriptedRunner) -> Session:
    return agent.start_session(runner=runner)  # the public seam: Agent(runner=...) or a per-call override


def test_order_resolution_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_order(None) == ("claude", "codex", "opencode")
    monkeypatch.setenv("CAW_PROVIDER", "codex, claude")
    assert resolve_order(None) == ("codex", "claude")
    assert resolve_order("auto") == ("codex", "claude")
    caw.set_provider_order(["opencode", "codex"])
    assert resolve_order(None) == ("opencode", "codex")
    assert caw.get_provider_order() == ["opencode", "codex"]
    assert resolve_order(["claude_code"]) == ("claude",)


@pytest.mark.parametrize(
    ("order", "error"),
    [
        ("", ConfigurationError),
        ([], ConfigurationError),
        (["claude", "gemini"], UnknownProviderError),
        (["codex", "codex"], ConfigurationError),
        ("claude,claude_code", ConfigurationError),
    ],
)
def test_bad_orders_fail_at_construction(order: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        normalize_order(order)  # type: ignore[arg-type]
    if order != "":  # an empty string given to the Agent means "auto", like CAW_PROVIDER=""
        with pytest.raises(error):
            caw.Agent(provider=order)  # type: ignore[arg-type]


def test_first_installed_provider_is_selected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin" / "claude").unlink()
    agent = caw.Agent(provider=["claude", "codex"])
    assert agent.provider == "codex"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (ProviderNotInstalled("claude", "claude"), "not_installed"),
        (AuthenticationError("claude", "Invalid API key"), "auth"),
        (UsageLimitError("claude", "limit", resets_at=None), "rate_limited"),
        (ProviderCrashed("claude", "exit 1"), "crashed"),
        (FirstOutputTimeout("claude printed nothing", provider="claude", seconds=5), "timeout"),
        (TurnFailed("claude", "API Error: 500", kind="server"), "unavailable"),
    ],
)
def test_failover_to_the_next_provider(failure: Exception, reason: str) -> None:
    runner = ScriptedRunner({"claude": [failure], "codex": ["codex answers"]})
    session = session_for(caw.Agent(provider=["claude", "codex"], auto_wait=False), runner)
    turn = session.send("hello")
    assert turn.result == "codex answers"
    assert session.provider == "codex"
    attempts = session.trajectory.attempts
    assert [(a.provider, a.reason) for a in attempts] == [("claude", reason), ("codex", "answered")]
    assert session.trajectory.agent == "codex"
    assert session.resume_key == "codex-conv"  # never claude's conversation id


@pytest.mark.parametrize(
    "failure",
    [ConfigurationError("bad argument"), TurnFailed("claude", "invalid request", kind="invalid_request")],
)
def test_no_failover_on_errors_every_provider_would_hit(failure: Exception) -> None:
    runner = ScriptedRunner({"claude": [failure], "codex": ["x"]})
    session = session_for(caw.Agent(provider=["claude", "codex"], auto_wait=False), runner)
    with pytest.raises(type(failure)):
        session.send("hello")
    assert runner.providers_called() == ["claude"]


def test_committed_after_the_first_turn() -> None:
    runner = ScriptedRunner({"claude": ["first", AuthenticationError("claude", "expired")], "codex": ["never"]})
    session = session_for(caw.Agent(provider=["claude", "codex"], auto_wait=False), runner)
    session.send("one")
    with pytest.raises(AuthenticationError):
        session.send("two")
    assert runner.providers_called() == ["claude", "claude"]
    assert session.trajectory.turns[-1].status != "completed"


def test_all_failing_raise_one_error_with_every_attempt() -> None:
    runner = ScriptedRunner(
        {
            "claude": [UsageLimitError("claude", "You've hit your session limit")],
            "codex": [AuthenticationError("codex", "unexpected status 401")],
            "opencode": [ProviderCrashed("opencode", "exited with code 1")],
        }
    )
    session = session_for(caw.Agent(provider=["claude", "codex", "opencode"], auto_wait=False), runner)
    with pytest.raises(caw.AllProvidersFailed) as info:
        session.send("hello")
    err = info.value
    assert [a.provider for a in err.attempts] == ["claude", "codex", "opencode"]
    assert len(err.errors) == 3
    text = str(err)
    assert text.startswith("no provider could answer (3 tried)")
    assert "claude: rate-limited" in text and "codex: not logged in" in text and "opencode: crashed" in text
    if hasattr(err, "exceptions"):
        assert len(err.exceptions) == 3


def test_cooldown_skips_a_provider_without_a_request() -> None:
    CooldownStore.default().set("claude", datetime.now(timezone.utc) + timedelta(hours=2), kind="session")
    runner = ScriptedRunner({"codex": ["codex answers"]})
    session = session_for(caw.Agent(provider=["claude", "codex"], auto_wait=False), runner)
    assert session.send("hi").result == "codex answers"
    assert runner.providers_called() == ["codex"]
    assert session.trajectory.attempts[0].reason == "cooldown"


def test_a_limit_with_a_reset_time_is_remembered_for_other_sessions() -> None:
    reset = datetime.now(timezone.utc) + timedelta(hours=1)
    runner = ScriptedRunner({"claude": [UsageLimitError("claude", "limit", resets_at=reset)], "codex": ["ok"]})
    session_for(caw.Agent(provider=["claude", "codex"], auto_wait=False), runner).send("hi")
    until = CooldownStore.default().until("claude")
    assert until is not None and abs((until - reset).total_seconds()) < 1
    # resolved provider is claude; remembered, so no probe is sent
    assert caw.Agent(provider=["claude", "codex"]).check_limit(probe=False) == 60
    assert caw.Agent(provider=["claude", "codex"], runner=runner).check_limit() == 60


def test_expired_cooldown_is_ignored() -> None:
    store = CooldownStore.default()
    store.set("claude", datetime.now(timezone.utc) - timedelta(seconds=1))
    assert store.skip_reason("claude") is None


def test_model_applies_to_the_first_provider_only() -> None:
    runner = ScriptedRunner({"claude": [ProviderCrashed("claude", "x")], "codex": ["ok"]})
    session = session_for(caw.Agent(provider=["claude", "codex"], model="claude-sonnet-5", auto_wait=False), runner)
    session.send("hi")
    models = {name: cfg.model for name, _, cfg in runner.calls}
    assert models == {"claude": "claude-sonnet-5", "codex": None}


def test_per_provider_models_from_the_global_order() -> None:
    caw.set_provider_order(["claude", "codex"], models={"codex": "gpt-5.5"})
    runner = ScriptedRunner({"claude": [ProviderCrashed("claude", "x")], "codex": ["ok"]})
    session = session_for(caw.Agent(auto_wait=False), runner)
    session.send("hi")
    assert {n: c.model for n, _, c in runner.calls} == {"claude": None, "codex": "gpt-5.5"}


def test_model_tier_maps_per_provider() -> None:
    runner = ScriptedRunner({"claude": [ProviderCrashed("claude", "x")], "codex": ["ok"]})
    session = session_for(caw.Agent(provider=["claude", "codex"], model=caw.ModelTier.FAST, auto_wait=False), runner)
    session.send("hi")
    models = {n: c.model for n, _, c in runner.calls}
    assert models["claude"] == "haiku"


def test_attempts_reach_the_logger() -> None:
    lines: list[str] = []

    class Log:
        def info(self, m: str) -> None:
            lines.append(m)

        def warn(self, m: str) -> None:
            lines.append("WARN " + m)

        def error(self, m: str) -> None:
            lines.append("ERR " + m)

    runner = ScriptedRunner({"claude": [ProviderNotInstalled("claude", "claude")], "codex": ["ok"]})
    session = session_for(caw.Agent(provider=["claude", "codex"], logger=Log(), auto_wait=False), runner)
    session.send("hi")
    assert any(line.startswith("WARN fallback: claude skipped (not_installed)") for line in lines)
    assert any("text: ok" in line for line in lines)


def test_fifo_send_async_runs_in_call_order() -> None:
    import asyncio

    order: list[str] = []

    def slow(request):  # type: ignore[no-untyped-def]
        order.append(request.prompt)
        return "ok " + request.prompt

    runner = ScriptedRunner({"claude": [slow]})
    session = session_for(caw.Agent(provider="claude", auto_wait=False), runner)

    async def main() -> list[str]:
        turns = await asyncio.gather(*(session.send_async(f"m{i}") for i in range(6)))
        return [t.result for t in turns]

    results = asyncio.run(main())
    assert order == [f"m{i}" for i in range(6)]
    assert results == [f"ok m{i}" for i in range(6)]


def test_resume_handle_before_first_turn_is_a_clear_error() -> None:
    session = caw.Agent(provider="claude").start_session()
    with pytest.raises(caw.SessionStateError, match="first turn"):
        _ = session.resume_handle


def test_read_only_session_refuses_to_send(tmp_path: Path) -> None:
    runner = ScriptedRunner({"claude": ["saved"]})
    session = session_for(caw.Agent(provider="claude", auto_wait=False), runner)
    session.send("hi")
    path = session.save_trajectory(tmp_path / "t.json")
    loaded = Session.load_trajectory(path)
    assert loaded.trajectory.result == "saved"
    with pytest.raises(caw.SessionStateError, match="read-only"):
        loaded.send("more")


def test_a_stream_that_is_never_iterated_holds_up_nobody() -> None:
    runner = ScriptedRunner({"claude": ["ok"]})
    session = session_for(caw.Agent(provider="claude", auto_wait=False), runner)
    forgotten = session.stream("never started")
    assert session.send("next").result == "ok"
    assert [c[1].prompt for c in runner.calls] == ["next"]
    assert list(forgotten) and forgotten.turn.result == "ok"  # it still runs when iterated later


def test_when_every_provider_is_cooling_down_caw_waits_for_the_first_to_reset() -> None:
    """No provider left to switch to: wait (injected clock) for the earliest cooldown, then try that one."""
    import threading

    now = [datetime.now(timezone.utc)]
    slept: list[float] = []

    def sleeper(seconds: float, cancel: threading.Event) -> bool:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)
        return False

    store = CooldownStore.default()
    store.set("claude", now[0] + timedelta(minutes=30), kind="session")
    store.set("codex", now[0] + timedelta(minutes=10), kind="usage")
    runner = ScriptedRunner({"codex": ["codex after its reset"], "claude": ["never"]})
    agent = caw.Agent(
        provider=["claude", "codex"],
        clock=lambda: now[0],
        sleeper=sleeper,
        wait_buffer=60,
        wait_output=lambda line: None,
    )
    session = session_for(agent, runner)
    turn = session.send("hello")
    assert turn.result == "codex after its reset"
    assert runner.providers_called() == ["codex"]
    assert 10 * 60 + 60 <= sum(slept) <= 10 * 60 + 62  # codex's reset plus the buffer, never claude's
    attempts = [(a.provider, a.reason) for a in session.trajectory.attempts]
    assert attempts == [("claude", "cooldown"), ("codex", "cooldown"), ("codex", "answered")]


def test_every_provider_cooling_down_without_auto_wait_is_one_error() -> None:
    store = CooldownStore.default()
    store.set("claude", datetime.now(timezone.utc) + timedelta(minutes=30))
    store.set("codex", datetime.now(timezone.utc) + timedelta(minutes=10))
    session = session_for(caw.Agent(provider=["claude", "codex"], auto_wait=False), ScriptedRunner({}))
    with pytest.raises(caw.AllProvidersFailed, match="cooling down"):
        session.send("hello")


def test_the_runner_is_an_agent_option() -> None:
    """The public seam: ``Agent(runner=...)`` runs every turn of its sessions; nothing is spawned."""
    runner = ScriptedRunner({"claude": ["scripted"]})
    traj = caw.Agent(provider="claude", auto_wait=False, runner=runner).completion("hi")
    assert traj.result == "scripted" and runner.providers_called() == ["claude"]
    with pytest.raises(ConfigurationError, match="runner"):
        caw.Agent(provider="claude", runner="run_turn")
