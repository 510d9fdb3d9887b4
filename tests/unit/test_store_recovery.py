"""Issue 17.3: damaged session files are recovered where they can be, and named in a typed error where not.

A torn ``turns.jsonl`` tail is ended before the next append (so that turn is kept), a damaged
``trajectory.json`` is rebuilt from ``turns.jsonl``, a damaged file with nothing to rebuild from is a
``StorageError`` naming it, ``caw sessions`` lists damaged sessions as damaged, and ``caw resume <id>`` on one
answers a one-line usage error (never "internal error").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caw.cli import app
from caw.errors import StorageError
from caw.models import Trajectory, Turn
from caw.session.session import Session
from caw.state.store import SessionStore, list_sessions


def stored(tmp_path: Path, sid: str = "s1", turns: int = 2) -> SessionStore:
    store = SessionStore(tmp_path)
    traj = Trajectory(agent="claude", session_id=sid, resume_handle=None)
    for i in range(turns):
        turn = Turn(input=f"m{i}", status="completed", provider="claude")
        traj.turns.append(turn)
        store.append_turn(sid, turn)
    store.save(traj)
    return store


DAMAGE = {
    "invalid_utf8": (b'{"session_id": "s1", "agent": "cl\xff\xfeaude"}', "not valid UTF-8"),
    "not_json": (b'{"session_id": "s1", "turns": [', "not JSON"),
    "wrong_schema": (json.dumps({"session_id": "s1", "turns": [{"input": 3, "status": "nope"}]}).encode(), "turns"),
    "not_an_object": (b"[1, 2]", "not a caw trajectory"),
}


def test_a_turn_appended_after_a_torn_last_line_is_kept(tmp_path: Path) -> None:
    store = stored(tmp_path)
    with open(store.session_dir("s1") / "turns.jsonl", "a") as f:
        f.write('{"input": "torn')  # power lost mid-append
    store.append_turn("s1", Turn(input="after the tear", status="completed"))
    assert [t.input for t in store.rebuild("s1").turns] == ["m0", "m1", "after the tear"]  # type: ignore[union-attr]


def test_an_append_to_a_sound_file_adds_no_blank_line(tmp_path: Path) -> None:
    store = stored(tmp_path)
    assert (store.session_dir("s1") / "turns.jsonl").read_text().count("\n\n") == 0


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_trajectory_is_rebuilt_from_the_turns(tmp_path: Path, kind: str) -> None:
    store = stored(tmp_path)
    (store.session_dir("s1") / "trajectory.json").write_bytes(DAMAGE[kind][0])
    traj = store.load("s1")
    assert [t.input for t in traj.turns] == ["m0", "m1"] and traj.agent == "claude"


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_trajectory_with_nothing_to_rebuild_from_is_a_storage_error_naming_it(
    tmp_path: Path, kind: str
) -> None:
    store = stored(tmp_path, turns=0)
    path = store.session_dir("s1") / "trajectory.json"
    path.write_bytes(DAMAGE[kind][0])
    with pytest.raises(StorageError) as info:
        store.load("s1")
    assert info.value.path == path and str(path) in str(info.value) and DAMAGE[kind][1] in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(StorageError):  # the same for a trajectory file loaded by path
        Session.load_trajectory(path)


def test_damaged_turn_records_cost_only_themselves(tmp_path: Path) -> None:
    store = stored(tmp_path)
    with open(store.session_dir("s1") / "turns.jsonl", "ab") as f:
        f.write(b'{"input": "bad \xff utf8", "status": "completed"}\n{"input": 5, "status": "??"}\n')
    store.append_turn("s1", Turn(input="last", status="completed"))
    (store.session_dir("s1") / "trajectory.json").write_bytes(b"\x00garbage")
    assert [t.input for t in store.load("s1").turns] == ["m0", "m1", "bad \ufffd utf8", "last"]


def test_sessions_lists_damaged_sessions_as_damaged(tmp_path: Path) -> None:
    stored(tmp_path, "good")
    store = stored(tmp_path, "broken")
    (store.session_dir("broken") / "trajectory.json").write_bytes(DAMAGE["invalid_utf8"][0])
    stored(tmp_path, "lost", turns=0)
    (store.session_dir("lost") / "trajectory.json").write_bytes(b"{")
    infos = {i.session_id: i for i in list_sessions(tmp_path)}
    assert set(infos) == {"good", "broken", "lost"}
    assert infos["good"].damaged is None
    assert "not valid UTF-8" in (infos["broken"].damaged or "") and infos["broken"].turns == 2
    assert "not JSON" in (infos["lost"].damaged or "") and infos["lost"].turns == 0

    out = CliRunner().invoke(app, ["sessions", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0 and out.output.count("\n  damaged: cannot read") == 2
    listed = json.loads(CliRunner().invoke(app, ["sessions", "--json", "--data-dir", str(tmp_path)]).output)
    assert sorted(s["session_id"] for s in listed if s["damaged"]) == ["broken", "lost"]


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_resume_of_a_damaged_session_is_a_one_line_error(tmp_path: Path, kind: str) -> None:
    store = stored(tmp_path, turns=0)
    path = store.session_dir("s1") / "trajectory.json"
    path.write_bytes(DAMAGE[kind][0])
    r = CliRunner().invoke(app, ["resume", "--data-dir", str(tmp_path), "s1", "again"])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("caw: error")]
    assert len(errors) == 1 and str(path) in errors[0] and "internal error" not in r.output
