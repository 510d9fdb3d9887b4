"""A stream closed early, over a real pty: the CLI is stopped and its partial turn is kept (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import caw
from caw.state.store import SessionStore
from tests.integration.fake_cli import init, result, text


def test_breaking_out_keeps_the_partial_turn_and_the_session_goes_on(fake_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = fake_cli([{"json": init()}, {"json": text("first")}, {"sleep": 60}])
    agent = caw.Agent(provider="claude", auto_wait=False, stop_grace=1.0, data_dir=tmp_path / "data")
    session = agent.start_session()
    for ev in session.stream("go"):
        if isinstance(ev, caw.events.TextEvent):
            break
    turn = session.trajectory.turns[-1]
    assert turn.status == "cancelled" and turn.result == "first" and turn.input == "go"
    stored = SessionStore(tmp_path / "data").load(session.trajectory.session_id)
    assert [t.status for t in stored.turns] == ["cancelled"]
    # the session took its environment at start: the next run reads the same script file, rewritten
    script.write_text(json.dumps([{"json": init()}, {"json": text("second")}, {"json": result("second")}]))
    assert session.send("again").result == "second"
    assert [t.status for t in session.end().turns] == ["cancelled", "completed"]
