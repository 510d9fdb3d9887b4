"""Sessions over a scripted runner: a stream closed early keeps its partial turn; limits mark the trajectory."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import caw
from caw.errors import UsageLimitError
from caw.events import Event, SessionStarted, TextEvent
from caw.models import TextBlock, Turn
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session import Session
from caw.session.turn import TurnControl
from caw.state.store import SessionStore
from tests.unit.scripted import ScriptedRunner


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "ledger"))
    monkeypatch.delenv("CAW_PROVIDER", raising=False)


class TwoParts:
    """Streams "partial" and then "rest" (building the turn as it goes, like ``run_turn``); counts the closes."""

    def __init__(self) -> None:
        self.closed = 0
        self.prompts: list[str] = []

    def __call__(
        self,
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        control: TurnControl | None = None,
        **_: Any,
    ) -> Generator[Event, None, Turn]:
        self.prompts.append(request.prompt)
        turn = Turn(input=request.prompt, provider=provider.name)
        if control is not None:
            control.turn = turn
        try:
            yield SessionStarted(provider=provider.name, session_id="conv-1")
            for part in ("partial", "rest"):
                turn.output.append(TextBlock(text=part))
                yield TextEvent(provider=provider.name, text=part)
        except GeneratorExit:
            self.closed += 1
            turn.status = "cancelled"
            raise
        turn.status = "completed"
        return turn


def session(tmp_path: Path, runner: Any) -> Session:
    agent = caw.Agent(provider="claude", auto_wait=False, data_dir=tmp_path / "data", runner=runner)
    return agent.start_session()


def saved(tmp_path: Path, s: Session) -> caw.Trajectory:
    return SessionStore(tmp_path / "data").load(s.trajectory.session_id)


def _check_partial_turn_kept(tmp_path: Path, s: Session, runner: TwoParts) -> None:
    assert runner.closed == 1  # the runner was closed, so its process is stopped
    turn = s.trajectory.turns[-1]
    assert turn.status == "cancelled" and turn.result == "partial"
    assert turn.error is not None and turn.error.reason == "cancelled"
    on_disk = saved(tmp_path, s).turns[-1]
    assert on_disk.status == "cancelled" and on_disk.result == "partial"
    assert s.provider == "claude" and s.resume_key == "conv-1"
    later = s.send("and now?")  # the FIFO was released and the conversation goes on
    assert later.status == "completed" and runner.prompts[-1] == "and now?"
    assert [t.status for t in saved(tmp_path, s).turns] == ["cancelled", "completed"]


def test_break_out_of_a_stream_keeps_the_partial_turn(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)
    for ev in s.stream("go"):
        if isinstance(ev, TextEvent):
            break
    _check_partial_turn_kept(tmp_path, s, runner)


def test_leaving_with_stream_early_keeps_the_partial_turn(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)
    with s.stream("go") as stream:
        for ev in stream:
            if isinstance(ev, TextEvent):
                break
    _check_partial_turn_kept(tmp_path, s, runner)


def test_stream_close_keeps_the_partial_turn(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)
    stream = s.stream("go")
    events = iter(stream)
    assert isinstance(next(events), SessionStarted)
    assert isinstance(next(events), TextEvent)
    stream.close()
    _check_partial_turn_kept(tmp_path, s, runner)


def test_closing_a_stream_that_never_started_records_nothing(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)
    s.stream("never").close()
    assert s.trajectory.turns == [] and runner.prompts == []
    assert s.send("hi").status == "completed"


def test_a_finished_stream_is_recorded_once(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)
    with s.stream("go") as stream:
        assert len(list(stream)) == 3
    assert [t.status for t in s.trajectory.turns] == ["completed"] and stream.turn.result == "partialrest"


def test_a_usage_limit_marks_the_trajectory_even_without_auto_wait(tmp_path: Path) -> None:
    runner = ScriptedRunner({"claude": [UsageLimitError("claude", "You've hit your session limit")]})
    s = session(tmp_path, runner)
    with pytest.raises(UsageLimitError):
        s.send("hi")
    assert s.trajectory.usage_limited is True
    s.end()
    assert saved(tmp_path, s).usage_limited is True  # and on disk, for `caw traj show` and CI


def test_a_limit_that_fell_back_to_another_provider_still_marks_the_trajectory() -> None:
    runner = ScriptedRunner({"claude": [UsageLimitError("claude", "limit")], "codex": ["codex answers"]})
    s = caw.Agent(provider=["claude", "codex"], auto_wait=False, runner=runner).start_session()
    assert s.send("hi").result == "codex answers"
    assert s.trajectory.usage_limited is True


def test_no_limit_no_mark(tmp_path: Path) -> None:
    s = session(tmp_path, ScriptedRunner({"claude": ["fine"]}))
    s.send("hi")
    assert s.trajectory.usage_limited is False


class ReportsItsModel(TwoParts):
    """A turn whose model only the CLI knew (claude's init reports it when caw passed no --model)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Generator[Event, None, Turn]:
        turn = yield from super().__call__(*args, **kwargs)
        turn.model = "claude-opus-4-8[1m]"
        return turn


def test_trajectory_model_is_the_one_the_turn_reported_when_none_was_configured(tmp_path: Path) -> None:
    """issue 12: the trajectory's top-level model was null whenever the user named none."""
    s = session(tmp_path, ReportsItsModel())
    s.send("hi")
    assert s.trajectory.model == "claude-opus-4-8[1m]"
    assert saved(tmp_path, s).model == "claude-opus-4-8[1m]"
