"""Data model round trips, usage arithmetic, and the on-disk store's crash safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from caw.events import EVENT_ADAPTER, TextEvent, event_json_schema
from caw.models import TextBlock, ThinkingBlock, ToolGroup, ToolUse, Trajectory, Turn, UsageStats
from caw.state.store import SessionStore, atomic_write_text, list_sessions


def test_usage_adds_and_totals() -> None:
    a = UsageStats(input_tokens=10, output_tokens=5, cache_read_tokens=2, cost_usd=0.1)
    b = UsageStats(input_tokens=1, output_tokens=1, cost_usd=None)
    total = a + b
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (11, 6, 19)
    assert total.cost_usd == pytest.approx(0.1)
    assert (UsageStats() + UsageStats()).cost_usd is None


def test_running_total_difference_never_negative() -> None:
    later = UsageStats(input_tokens=700, output_tokens=50)
    earlier = UsageStats(input_tokens=200, output_tokens=60)
    diff = later - earlier
    assert (diff.input_tokens, diff.output_tokens) == (500, 0)


def test_trajectory_round_trips_through_json() -> None:
    turn = Turn(
        input="hi",
        output=[
            ThinkingBlock(text="hmm"),
            TextBlock(text="hello"),
            ToolUse(id="t", name="Bash", arguments={"c": 1}, output="ok"),
        ],
        usage=UsageStats(input_tokens=3, output_tokens=4, cost_usd=0.01),
        status="completed",
    )
    traj = Trajectory(agent="claude", session_id="s1", turns=[turn], metadata={"k": [1, 2]})
    data = json.loads(json.dumps(traj.to_dict()))
    back = Trajectory.from_dict(data)
    assert back == traj
    assert data["result"] == "hello" and data["usage"]["total_tokens"] == 7


def test_trajectory_result_is_the_last_completed_turn() -> None:
    traj = Trajectory(
        turns=[
            Turn(input="a", output=[TextBlock(text="A")], status="completed"),
            Turn(input="b", output=[TextBlock(text="partial")], status="cancelled"),
        ]
    )
    assert traj.result == "A"


def test_tool_group_set_algebra() -> None:
    assert ToolGroup.NO_INTERACTION == ToolGroup.ALL - ToolGroup.INTERACTION
    assert ToolGroup.READER | ToolGroup.EXEC in ToolGroup.ALL
    assert ToolGroup.EXEC not in (ToolGroup.ALL - ToolGroup.EXEC)


def test_event_schema_exports_and_unknown_fields_do_not_break() -> None:
    schema = event_json_schema()
    assert "oneOf" in json.dumps(schema) or "discriminator" in json.dumps(schema)
    ev = EVENT_ADAPTER.validate_json('{"type":"text","text":"x","provider":"claude"}')
    assert ev == TextEvent(provider="claude", text="x")


def test_atomic_write_keeps_the_old_file_when_the_write_dies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "t.json"
    atomic_write_text(target, '{"v": 1}')

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, '{"v": 2}')
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temp file left behind


def test_store_appends_turns_and_survives_a_torn_last_line(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    traj = Trajectory(agent="claude", session_id="abc")
    for i in range(2):
        t = Turn(input=f"m{i}", status="completed")
        traj.turns.append(t)
        store.append_turn("abc", t)
    with open(store.session_dir("abc") / "turns.jsonl", "a") as f:
        f.write('{"input": "torn')  # power lost mid-append
    # no trajectory.json yet: rebuilt from the turns, torn line skipped
    rebuilt = store.load("abc")
    assert [t.input for t in rebuilt.turns] == ["m0", "m1"]


def test_list_sessions_newest_first(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    store = SessionStore(tmp_path)
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, sid in enumerate(["old", "new"]):
        store.save(
            Trajectory(
                agent="codex",
                session_id=sid,
                created_at=base + timedelta(hours=i),
                turns=[Turn(input=f"prompt {sid}")],
                resume_handle=f"h-{sid}",
            )
        )
    infos = list_sessions(tmp_path)
    assert [i.session_id for i in infos] == ["new", "old"]
    assert infos[0].first_prompt == "prompt new" and infos[0].resume_handle == "h-new"


def test_session_ids_cannot_escape_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SessionStore(tmp_path).session_dir("../etc")


def test_turn_result_is_the_answer_after_the_last_tool_not_the_narration_before() -> None:
    """What the model says before a tool call is narration; each CLI's own result is what it said last."""
    turn = Turn(
        input="hi",
        output=[
            TextBlock(text="Let me run the tests."),
            ToolUse(id="t1", name="Bash", arguments={"command": "pytest"}, output="2 passed"),
            TextBlock(text="Both tests pass."),
        ],
        status="completed",
    )
    assert turn.result == "Both tests pass."
    assert Turn(input="x", output=[TextBlock(text="a"), TextBlock(text="b")]).result == "ab"
    ends_in_a_tool = Turn(input="x", output=[TextBlock(text="checking"), ToolUse(id="t", name="Bash", arguments={})])
    assert ends_in_a_tool.result == "checking"  # nothing said after it: all the text there is
