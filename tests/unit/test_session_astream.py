"""``Session.astream``: the events of ``stream`` for ``async for``, over a scripted runner (no process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest

import caw
from caw.errors import SessionStateError, TurnCancelled, UsageLimitError
from caw.events import Event, SessionStarted, TextEvent
from caw.models import TextBlock, Turn
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session import AsyncTurnStream
from caw.session.turn import TurnControl
from tests.unit.scripted import ScriptedRunner
from tests.unit.test_session_stream import TwoParts, saved, session


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "ledger"))
    monkeypatch.delenv("CAW_PROVIDER", raising=False)


class _OpensOnTerminate:
    """Stands in for the CLI's process on ``TurnControl``: ``Session.cancel`` terminates it, which opens a gate."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def terminate(self, grace_s: float = 2.0) -> None:
        self.gate.set()


class Gated:
    """Records the prompts in the order their turns start. A prompt in ``hold`` streams one text and then
    waits for its gate (a cancel opens it too, and then it raises ``TurnCancelled`` like ``run_turn``)."""

    def __init__(self, *hold: str) -> None:
        self.prompts: list[str] = []
        self.started = {p: threading.Event() for p in hold}
        self.gates = {p: threading.Event() for p in hold}
        self.finished: list[str] = []
        self.cancelled: list[str] = []

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
        assert control is not None
        prompt = request.prompt
        self.prompts.append(prompt)
        turn = Turn(input=prompt, provider=provider.name)
        control.turn = turn
        try:
            yield SessionStarted(provider=provider.name, session_id="conv-1")
            turn.output.append(TextBlock(text=f"{prompt}:partial"))
            yield TextEvent(provider=provider.name, text=f"{prompt}:partial")
            if prompt in self.gates:
                # blocks like run_turn reading the CLI: the gate opens, or a cancel "terminates the process"
                control.attach(_OpensOnTerminate(self.gates[prompt]))  # type: ignore[arg-type]
                self.started[prompt].set()
                self.gates[prompt].wait()
                if control.cancelled.is_set():
                    self.cancelled.append(prompt)
                    turn.status = "cancelled"
                    raise TurnCancelled(turn=turn)
            turn.output.append(TextBlock(text="rest"))
            yield TextEvent(provider=provider.name, text="rest")
            turn.status = "completed"
            return turn
        finally:
            self.finished.append(prompt)


def no_astream_worker_left() -> bool:
    for t in threading.enumerate():
        if t.name == "caw-astream":
            t.join(timeout=10)
    return not any(t.name == "caw-astream" and t.is_alive() for t in threading.enumerate())


def test_astream_yields_the_events_of_stream_and_the_finished_turn(tmp_path: Path) -> None:
    s = session(tmp_path, TwoParts())
    sync_stream = s.stream("one")
    sync_events = [type(e).__name__ for e in sync_stream]

    async def main() -> tuple[list[str], AsyncTurnStream]:
        stream = s.astream("two")
        return [type(e).__name__ async for e in stream], stream

    async_events, stream = asyncio.run(main())
    assert async_events == sync_events == ["SessionStarted", "TextEvent", "TextEvent"]
    assert stream.turn.result == sync_stream.turn.result == "partialrest"
    assert [t.input for t in s.trajectory.turns] == ["one", "two"]
    assert [t.input for t in saved(tmp_path, s).turns] == ["one", "two"]
    assert no_astream_worker_left()


def test_turn_before_the_stream_finished_is_a_clear_error(tmp_path: Path) -> None:
    s = session(tmp_path, TwoParts())
    with pytest.raises(SessionStateError, match="iterate the stream first"):
        _ = s.astream("go").turn


def test_break_out_of_astream_then_aclose_keeps_the_partial_turn(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)

    async def main() -> AsyncTurnStream:
        stream = s.astream("go")
        async for ev in stream:
            if isinstance(ev, TextEvent):
                break
        await stream.aclose()  # waits until the cancel is done
        return stream

    stream = asyncio.run(main())
    assert runner.closed == 1  # the runner was closed: its process would be stopped
    assert stream.turn.status == "cancelled" and stream.turn.result == "partial"
    assert s.trajectory.turns[-1] is stream.turn
    on_disk = saved(tmp_path, s).turns[-1]
    assert on_disk.status == "cancelled" and on_disk.result == "partial"
    assert s.send("and now?").status == "completed"  # the FIFO was released
    assert no_astream_worker_left()


def test_break_without_aclose_cancels_the_turn_and_the_next_send_async_runs(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)

    async def main() -> Turn:
        async for ev in s.astream("go"):
            if isinstance(ev, TextEvent):
                break
        # nothing holds the iterator any more: asyncio closes it, which cancels the turn and frees the line
        return await s.send_async("and now?")

    later = asyncio.run(main())
    assert later.status == "completed" and runner.prompts == ["go", "and now?"]
    assert [(t.input, t.status, t.result) for t in s.trajectory.turns] == [
        ("go", "cancelled", "partial"),
        ("and now?", "completed", "partialrest"),
    ]
    assert no_astream_worker_left()


def test_cancelling_the_consuming_task_cancels_the_turn_and_leaves_nothing_running(tmp_path: Path) -> None:
    runner = Gated("go")
    s = session(tmp_path, runner)

    async def main() -> None:
        got_text = asyncio.Event()

        async def consume() -> None:
            async for ev in s.astream("go"):
                if isinstance(ev, TextEvent):
                    got_text.set()  # and keep waiting for the next event, which only a cancel ends

        task = asyncio.ensure_future(consume())
        await got_text.wait()
        await asyncio.to_thread(runner.started["go"].wait)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the task ends only once the turn is over: nothing of it is left running
        assert runner.cancelled == ["go"] and runner.finished == ["go"]

    asyncio.run(main())
    turn = s.trajectory.turns[-1]
    assert turn.status == "cancelled" and turn.result == "go:partial"
    assert saved(tmp_path, s).turns[-1].status == "cancelled"
    assert no_astream_worker_left()
    assert s.send("next").status == "completed"


def test_astream_keeps_its_place_in_line_with_send_async(tmp_path: Path) -> None:
    runner = Gated("first")
    s = session(tmp_path, runner)

    async def main() -> list[str]:
        first = s.send_async("first")
        await asyncio.to_thread(runner.started["first"].wait)  # "first" is running and holds the line
        events = aiter(s.astream("second"))
        next_event = asyncio.ensure_future(anext(events))  # iteration starts: "second" takes its place
        await asyncio.sleep(0)
        third = s.send_async("third")
        assert not next_event.done()  # waiting in line, and the loop is free meanwhile
        runner.gates["first"].set()
        texts = [ev.text for ev in [await next_event] + [ev async for ev in events] if isinstance(ev, TextEvent)]
        await first
        await third
        return texts

    texts = asyncio.run(main())
    assert texts == ["second:partial", "rest"]
    assert runner.prompts == ["first", "second", "third"]
    assert [t.input for t in s.trajectory.turns] == ["first", "second", "third"]


def test_a_stream_abandoned_while_waiting_in_line_sends_nothing(tmp_path: Path) -> None:
    runner = Gated("first")
    s = session(tmp_path, runner)

    async def main() -> None:
        first = s.send_async("first")
        await asyncio.to_thread(runner.started["first"].wait)
        waiting = asyncio.ensure_future(anext(aiter(s.astream("never"))))
        await asyncio.sleep(0)
        waiting.cancel()
        runner.gates["first"].set()  # the cancelled stream's worker still waits its turn, then gives it up
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await first
        assert (await s.send_async("after")).status == "completed"

    asyncio.run(main())
    assert runner.prompts == ["first", "after"]
    assert [t.input for t in s.trajectory.turns] == ["first", "after"]
    assert no_astream_worker_left()


def test_an_error_of_the_turn_is_raised_in_the_loop(tmp_path: Path) -> None:
    s = session(tmp_path, ScriptedRunner({"claude": [UsageLimitError("claude", "You've hit your session limit")]}))

    async def main() -> list[Event]:
        seen: list[Event] = []
        with pytest.raises(UsageLimitError):
            async for ev in s.astream("hi"):
                seen.append(ev)
        return seen

    seen = asyncio.run(main())
    assert [type(e) for e in seen] == [SessionStarted]
    assert s.trajectory.usage_limited is True
    assert no_astream_worker_left()


def test_closing_an_astream_that_never_started_records_nothing(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)

    async def main() -> list[Event]:
        stream = s.astream("never")
        await stream.aclose()
        return [ev async for ev in stream]

    assert asyncio.run(main()) == []
    assert s.trajectory.turns == [] and runner.prompts == []
    assert s.send("hi").status == "completed"


def test_async_with_astream_closes_it_early(tmp_path: Path) -> None:
    runner = TwoParts()
    s = session(tmp_path, runner)

    async def main() -> AsyncTurnStream:
        async with s.astream("go") as stream:
            assert isinstance(await anext(stream), SessionStarted)
        return stream

    stream = asyncio.run(main())
    assert runner.closed == 1 and stream.turn.status == "cancelled"
    assert [t.status for t in s.trajectory.turns] == ["cancelled"]


def test_astream_is_an_exported_async_iterator(tmp_path: Path) -> None:
    assert caw.AsyncTurnStream is AsyncTurnStream and "AsyncTurnStream" in caw.__all__
    stream = session(tmp_path, TwoParts()).astream("never iterated")
    assert isinstance(stream, AsyncIterator) and isinstance(stream, AsyncTurnStream)
