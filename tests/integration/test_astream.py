"""``Session.astream`` over a real pty: the event loop keeps running while the CLI streams, and a task
cancelled mid-turn stops the CLI and keeps its partial turn."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import caw
from caw.events import TextEvent
from tests.integration.conftest import pid_alive
from tests.integration.fake_cli import init, result, text


def test_the_loop_keeps_ticking_while_astream_waits_for_the_cli(fake_cli) -> None:  # type: ignore[no-untyped-def]
    fake_cli([{"json": init()}, {"json": text("first")}, {"sleep": 1.0}, {"json": text("second")}, {"json": result()}])
    session = caw.Agent(provider="claude", auto_wait=False).start_session()

    async def main() -> tuple[dict[str, int], str]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.ensure_future(ticker())
        seen: dict[str, int] = {}
        stream = session.astream("go")
        async for ev in stream:
            if isinstance(ev, TextEvent):
                seen[ev.text] = ticks
        stop.set()
        await ticking
        return seen, stream.turn.result

    seen, answer = asyncio.run(main())
    assert answer.endswith("second")
    # the CLI was silent for a second between the two texts: a blocked loop would not have ticked at all
    assert seen["second"] - seen["first"] >= 10, seen
    assert [t.status for t in session.end().turns] == ["completed"]


def test_cancelling_the_task_stops_the_cli_and_keeps_the_partial_turn(fake_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "cli.pid"
    fake_cli([{"json": init()}, {"pidfile": str(pidfile)}, {"json": text("partial")}, {"sleep": 60}])
    session = caw.Agent(provider="claude", auto_wait=False, stop_grace=1.0).start_session()

    async def main() -> None:
        got_text = asyncio.Event()

        async def consume() -> None:
            async for ev in session.astream("go"):
                if isinstance(ev, TextEvent):
                    got_text.set()

        task = asyncio.ensure_future(consume())
        await got_text.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not pid_alive(int(pidfile.read_text()))  # gone by the time the cancelled task ended
    turn = session.trajectory.turns[-1]
    assert turn.status == "cancelled" and turn.result == "partial" and turn.input == "go"
