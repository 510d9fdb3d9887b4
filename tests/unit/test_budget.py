"""Budgets over a scripted runner (issue 16): crossing one mid-turn cancels through ``TurnControl.cancel`` and
raises ``BudgetExceeded`` with the partial turn kept; session budgets count every run; claude's native caps."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import caw
from caw.errors import BudgetExceeded, ConfigurationError, TurnCancelled, TurnFailed
from caw.events import ErrorEvent, Event, SessionStarted, TextEvent, ToolCallEvent, ToolResultEvent, UsageEvent
from caw.models import TextBlock, Turn, UsageStats
from caw.providers import get_provider
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session import Session, SessionSetup
from caw.session.budget import Budget, TurnMeter
from caw.session.candidate import Candidate
from caw.session.turn import TurnControl
from caw.state.store import SessionStore
from tests.unit.scripted import ScriptedRunner


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "ledger"))
    monkeypatch.delenv("CAW_PROVIDER", raising=False)


class Streamer:
    """Streams ``chunks`` texts of ``size`` characters (and per-chunk usage when ``usage`` is set), like run_turn:
    it publishes the turn on ``control`` and ends a cancelled turn with ``TurnCancelled``."""

    def __init__(self, chunks: int = 10, size: int = 400, usage: UsageStats | None = None, tools: int = 0) -> None:
        self.chunks, self.size, self.usage, self.tools = chunks, size, usage, tools
        self.requests: list[TurnRequest] = []
        self.cancels = 0
        self.sent = 0

    def __call__(
        self,
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        control: TurnControl | None = None,
        clock: Any = None,
        **_: Any,
    ) -> Generator[Event, None, Turn]:
        assert control is not None
        self.requests.append(request)
        turn = Turn(input=request.prompt, provider=provider.name)
        control.turn = turn
        yield SessionStarted(provider=provider.name, session_id="conv")
        for i in range(self.tools):
            yield ToolCallEvent(provider=provider.name, id=f"t{i}", name="Bash", arguments={"command": "ls"})
            yield ToolResultEvent(provider=provider.name, id=f"t{i}", output="ok")
        for _ in range(self.chunks):
            if control.cancelled.is_set():
                self.cancels += 1
                turn.status = "cancelled"
                yield ErrorEvent(provider=provider.name, kind="cancelled", message="stopped", fatal=False)
                raise TurnCancelled(turn=turn)
            text = "x" * self.size
            turn.output.append(TextBlock(text=text))
            self.sent += 1
            yield TextEvent(provider=provider.name, text=text)
            if self.usage is not None:
                turn.usage = turn.usage + self.usage
                yield UsageEvent(provider=provider.name, usage=self.usage)
        turn.status = "completed"
        yield UsageEvent(
            provider=provider.name, usage=turn.usage if self.usage else UsageStats(output_tokens=1), final=True
        )
        return turn


def test_crossing_a_token_budget_mid_turn_cancels_it_and_keeps_the_partial_turn(tmp_path: Path) -> None:
    runner = Streamer(chunks=10, size=400)  # 100 estimated tokens a chunk
    agent = caw.Agent(provider="claude", runner=runner, data_dir=tmp_path, max_tokens=250)
    with pytest.raises(BudgetExceeded) as info:
        agent.completion("write a lot")
    err = info.value
    assert (err.budget, err.limit, err.reached) == ("tokens", 250, 300)
    assert runner.sent == 3 and runner.cancels == 1  # stopped at the crossing, through the cancel path
    assert isinstance(err, TurnCancelled) and not err.native
    saved = SessionStore(tmp_path).load(err.trajectory.session_id)  # type: ignore[attr-defined]
    [turn] = saved.turns
    assert turn.status == "cancelled" and turn.error is not None and turn.error.type == "BudgetExceeded"
    assert len(turn.output) == 3


def test_reported_usage_counts_and_replaces_the_estimate() -> None:
    meter = TurnMeter(started=0.0)
    meter.see(TextEvent(provider="opencode", text="x" * 40))
    assert meter.spent(1.0).tokens == 10
    meter.see(UsageEvent(provider="opencode", usage=UsageStats(input_tokens=500, output_tokens=12)))
    assert meter.spent(1.0).tokens == 512  # the CLI's figure replaces what caw estimated before it
    meter.see(ToolResultEvent(provider="opencode", id="1", output="y" * 8))
    meter.see(TextEvent(provider="opencode", text="z"))
    spent = meter.spent(2.5)
    assert (spent.tokens, spent.turns, spent.duration) == (512 + 2 + 1, 2, 2.5)


def test_a_cost_budget_crosses_on_reported_cost() -> None:
    runner = Streamer(chunks=10, size=4, usage=UsageStats(output_tokens=1, cost_usd=0.02))
    with pytest.raises(BudgetExceeded) as info:
        caw.Agent(provider="opencode", runner=runner).completion("go", max_cost_usd=0.05)
    assert info.value.budget == "cost_usd" and info.value.reached == pytest.approx(0.06)
    assert runner.sent == 3


def test_a_session_budget_counts_every_turn_and_refuses_the_next_send_once_spent() -> None:
    runner = Streamer(chunks=2, size=4, usage=UsageStats(input_tokens=100))
    session = caw.Agent(provider="opencode", runner=runner, max_tokens=450).start_session()
    session.send("one")  # 200 tokens
    session.send("two")  # 400 tokens: under the limit, completed
    with pytest.raises(BudgetExceeded) as info:
        session.send("three")  # crosses at its first usage report (500 > 450)
    assert info.value.reached == 500
    with pytest.raises(BudgetExceeded) as again:
        session.send("four")  # spent: refused before anything runs
    assert again.value.turn is None and len(runner.requests) == 3


def test_a_per_call_budget_counts_that_call_only() -> None:
    runner = Streamer(chunks=3, size=400)
    session = caw.Agent(provider="claude", runner=runner).start_session()
    session.send("free")  # no budget: 300 estimated tokens, fine
    with pytest.raises(BudgetExceeded):
        session.send("capped", max_tokens=150)
    session.send("free again")


def test_a_cost_budget_on_a_cli_that_reports_no_cost_is_refused_at_configuration() -> None:
    runner = ScriptedRunner({"codex": ["ok"]})
    agent = caw.Agent(provider=["claude", "codex"], runner=runner, max_cost_usd=1.0)
    with pytest.raises(ConfigurationError, match="codex reports tokens only"):
        agent.completion("hi")
    assert runner.calls == []
    assert caw.Agent(provider="codex", runner=runner, max_tokens=10_000).completion("hi").result == "ok"


def test_budget_values_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="max_tokens"):
        caw.Agent(provider="claude", runner=ScriptedRunner({}), max_tokens=-1).start_session()
    with pytest.raises(ConfigurationError, match="whole number"):
        Budget.from_options({"max_turns": 1.5})
    assert Budget.from_options({}) is None


def test_claude_gets_its_native_caps_with_the_remainder() -> None:
    runner = ScriptedRunner({"claude": ["ok"]})
    caw.Agent(provider="claude", runner=runner, max_cost_usd=0.5, max_turns=3).completion("hi")
    request = runner.calls[0][1]
    assert (request.max_budget_usd, request.max_turns) == (0.5, 3)


def test_a_token_budget_asks_claude_for_text_as_it_streams() -> None:
    """claude without --include-partial-messages reports text per finished message: a token budget crossed
    mid-message would be seen only at its end (found with an independent fake: 6.5 s instead of 4.2 s)."""
    runner = ScriptedRunner({"claude": ["ok"]})
    caw.Agent(provider="claude", runner=runner, max_tokens=600).completion("hi")
    caw.Agent(provider="claude", runner=runner, max_turns=2).completion("hi")
    metered, turns_only = runner.calls[0][1], runner.calls[1][1]
    assert metered.stream_text and not turns_only.stream_text
    claude = get_provider("claude")
    argv = claude.build("claude", RunConfig(), metered).argv
    assert argv.count("--include-partial-messages") == 1
    assert "--include-partial-messages" not in claude.build("claude", RunConfig(), turns_only).argv
    # codex and opencode stream anyway: the hint keeps their warm turns warm; claude's would run cold
    assert "stream_text" in get_provider("codex").warm_request_fields
    assert "stream_text" not in claude.warm_request_fields


def test_claudes_own_cap_is_the_same_error(tmp_path: Path) -> None:
    def capped(
        provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **_: Any
    ) -> Generator[Event, None, Turn]:
        yield SessionStarted(provider=provider.name, session_id="c")
        turn = Turn(input=request.prompt, provider=provider.name, status="failed")
        raise TurnFailed("claude", "Reached maximum budget ($0.01)", kind="budget", turn=turn)

    with pytest.raises(BudgetExceeded) as info:
        caw.Agent(provider="claude", runner=capped, data_dir=tmp_path).completion("hi", max_cost_usd=0.01)
    err = info.value
    assert err.native and err.budget == "cost_usd" and err.limit == 0.01
    saved = SessionStore(tmp_path).load(err.trajectory.session_id)  # type: ignore[attr-defined]
    assert saved.turns[0].status == "cancelled"


def test_model_turns_count_one_more_after_each_round_of_tools() -> None:
    runner = Streamer(chunks=2, size=4, tools=3)
    with pytest.raises(BudgetExceeded) as info:
        caw.Agent(provider="opencode", runner=runner).completion("go", max_turns=2)
    assert info.value.budget == "turns" and info.value.reached == 3


def test_a_duration_budget_crosses_on_the_session_clock() -> None:
    ticks = iter(float(i) for i in range(1000))
    runner = Streamer(chunks=20, size=1)
    setup = SessionSetup(runner=runner, clock=lambda: next(ticks), budget=Budget(max_duration=5.0))
    session = Session([Candidate(get_provider("claude"), RunConfig())], setup)
    with pytest.raises(BudgetExceeded) as info:
        session.send("slow")
    assert info.value.budget == "duration" and info.value.reached > 5.0
    assert runner.cancels == 1 and runner.sent < 20


def test_cost_is_none_when_no_cli_reported_one() -> None:
    assert (UsageStats(input_tokens=5) + UsageStats(output_tokens=2)).cost_usd is None
    assert (UsageStats(cost_usd=0.5) + UsageStats()).cost_usd == 0.5
    outputs = json.dumps(UsageStats().model_dump(mode="json"))
    assert '"cost_usd": null' in outputs


def test_subagents_count_against_the_session_budget() -> None:
    from caw.models import ToolUse, Trajectory

    used = ToolUse(id="t", name="reviewer", subagent_usage=UsageStats(input_tokens=900, output_tokens=200))
    earlier = Turn(
        input="review", provider="claude", status="completed", output=[used], usage=UsageStats(input_tokens=10)
    )
    traj = Trajectory(session_id="s1", turns=[earlier])
    runner = Streamer(chunks=1, size=4)
    setup = SessionSetup(runner=runner, budget=Budget(max_tokens=1000))
    session = Session([Candidate(get_provider("claude"), RunConfig())], setup, traj)
    with pytest.raises(BudgetExceeded) as info:
        session.send("more")
    assert info.value.reached == 1110 and runner.requests == []  # 10 own + 1100 the subagent used


def test_a_cost_budget_on_codex_is_enforced_on_tokens_when_given_a_price() -> None:
    runner = Streamer(chunks=10, size=400)  # ~100 tokens a chunk, no cost reported
    agent = caw.Agent(provider="codex", runner=runner, max_cost_usd=0.001, usd_per_mtok=4.0)
    with pytest.raises(BudgetExceeded) as info:
        agent.completion("go")  # 0.001 USD at 4 USD per million tokens = 250 tokens
    assert info.value.budget == "cost_usd" and info.value.reached == pytest.approx(0.0012)
    assert runner.sent == 3
