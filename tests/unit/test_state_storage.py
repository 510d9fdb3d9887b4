"""caw's own files when they cannot be written: one typed StorageError where it happens, never a lost turn.

Tests run as root, so permission bits stop nothing: a path under a regular file is what cannot be written.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import caw
from caw.errors import StorageError, UsageLimitError
from caw.models import Trajectory, Turn
from caw.providers.base import TurnRequest
from caw.providers.claude import _write_private
from caw.state.ledger import CooldownStore
from caw.state.store import (
    SessionStore,
    append_line,
    atomic_write_text,
    check_writable,
    load_trajectory_file,
    read_jsonl,
    save_trajectory_file,
)
from tests.unit.scripted import ScriptedRunner

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("")
    return path


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str) -> None:
        self.lines.append(("info", msg))

    def warn(self, msg: str) -> None:
        self.lines.append(("warn", msg))

    def error(self, msg: str) -> None:
        self.lines.append(("error", msg))

    def warnings(self) -> list[str]:
        return [m for level, m in self.lines if level == "warn"]


# ---- the store ----------------------------------------------------------------------------------------
def test_an_atomic_write_under_a_file_is_a_storage_error_naming_the_directory(blocker: Path) -> None:
    with pytest.raises(StorageError) as info:
        atomic_write_text(blocker / "sub" / "x.json", "{}")
    exc = info.value
    assert (exc.operation, exc.path, exc.errno) == ("create the directory", blocker / "sub", errno.ENOTDIR)
    assert isinstance(exc.__cause__, NotADirectoryError) and isinstance(exc, OSError)


def test_an_atomic_write_onto_a_directory_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "x.json").mkdir()
    with pytest.raises(StorageError) as info:
        atomic_write_text(tmp_path / "x.json", "{}")
    assert info.value.operation == "write" and info.value.path == tmp_path / "x.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_a_directory_where_a_file_must_go_is_named_as_in_the_way(tmp_path: Path, blocker: Path) -> None:
    with pytest.raises(StorageError) as info:
        append_line(blocker / "turns.jsonl", "{}")
    assert str(info.value) == f"cannot create the directory {blocker}: a file is in the way"


def test_an_append_that_cannot_open_its_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "turns.jsonl").mkdir()
    with pytest.raises(StorageError) as info:
        append_line(tmp_path / "turns.jsonl", "{}")
    assert info.value.operation == "append to" and info.value.errno == errno.EISDIR


def test_reading_a_missing_file_is_not_a_failure_but_an_unreadable_one_is(tmp_path: Path, blocker: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_trajectory_file(tmp_path / "nothing.json")
    assert read_jsonl(tmp_path / "nothing.jsonl") == []
    with pytest.raises(StorageError) as info:
        load_trajectory_file(blocker / "trajectory.json")
    assert info.value.operation == "read"
    with pytest.raises(StorageError):
        read_jsonl(tmp_path)


def test_check_writable_creates_the_directory_and_leaves_nothing_in_it(tmp_path: Path, blocker: Path) -> None:
    assert check_writable(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert list((tmp_path / "new" / "dir").iterdir()) == []
    with pytest.raises(StorageError) as info:
        check_writable(blocker / "sub")
    assert str(info.value) == f"cannot create the directory {blocker / 'sub'}: Not a directory"


def test_a_session_store_under_a_file_fails_its_check_and_its_writes(blocker: Path) -> None:
    store = SessionStore(blocker / "data")
    with pytest.raises(StorageError):
        store.check_writable()
    with pytest.raises(StorageError):
        store.save(Trajectory(session_id="s1"))
    with pytest.raises(StorageError):
        store.append_turn("s1", Turn(input="hi"))
    assert store.list() == [] and not store.exists("s1")


# ---- the cooldown ledger --------------------------------------------------------------------------------
def limit(resets_at: datetime) -> UsageLimitError:
    return UsageLimitError("claude", "session limit", resets_at=resets_at, kind="session")


def test_the_ledger_cannot_write_so_record_says_false_and_why(blocker: Path) -> None:
    ledger = CooldownStore(blocker / "data", now=lambda: NOW)
    with pytest.raises(StorageError):
        ledger.set("claude", NOW + timedelta(hours=1))
    assert ledger.record(limit(NOW + timedelta(hours=1))) is False
    assert ledger.write_error is not None and ledger.write_error.path == blocker / "data"
    assert ledger.active() == {}  # an unreadable ledger reads as no cooldowns


def test_a_limit_with_nothing_to_remember_is_not_a_write_failure(blocker: Path) -> None:
    ledger = CooldownStore(blocker / "data", now=lambda: NOW)
    assert ledger.record(UsageLimitError("claude", "limit")) is True  # no reset time: nothing to write
    assert ledger.record(limit(NOW - timedelta(minutes=1))) is True  # already over
    assert ledger.write_error is None


def test_the_ledger_recorder_warns_once_and_survives_a_broken_logger(blocker: Path, tmp_path: Path) -> None:
    warnings: list[str] = []
    record = CooldownStore(blocker / "data", now=lambda: NOW).recorder(warn=warnings.append)
    record(limit(NOW + timedelta(hours=1)))
    record(limit(NOW + timedelta(hours=2)))
    assert len(warnings) == 1 and warnings[0].endswith("; this usage limit is not remembered for other runs")

    def broken(msg: str) -> None:
        raise RuntimeError("logger down")

    CooldownStore(blocker / "data", now=lambda: NOW).recorder(warn=broken)(limit(NOW + timedelta(hours=1)))
    good = CooldownStore(tmp_path / "ok", now=lambda: NOW)
    good.recorder(warn=broken)(limit(NOW + timedelta(hours=1)))
    assert good.until("claude") == NOW + timedelta(hours=1)


# ---- the session ----------------------------------------------------------------------------------------
def test_a_session_whose_store_breaks_keeps_its_turns_warns_once_and_notes_it(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def break_then_answer(request: TurnRequest) -> str:
        shutil.rmtree(data / "sessions", ignore_errors=True)
        (data / "sessions").write_text("")
        return "answer"

    log = Recorder()
    agent = caw.Agent(
        provider="claude", data_dir=data, logger=log, runner=ScriptedRunner({"claude": [break_then_answer]})
    )
    session = agent.start_session(traj_path=tmp_path / "t.json")
    assert session.send("one").result == "answer"
    assert session.send("two").result == "answer"
    traj = session.end()
    assert [t.status for t in traj.turns] == ["completed", "completed"]
    assert len(log.warnings()) == 1 and log.warnings()[0].endswith("; the session goes on, but is not saved there")
    assert [n for n in traj.notes if n.startswith("not saved: ")] == [
        f"not saved: cannot create the directory {data / 'sessions' / traj.session_id}: Not a directory"
    ]
    saved = load_trajectory_file(tmp_path / "t.json")  # the other destination still gets every save
    assert len(saved.turns) == 2 and saved.notes == traj.notes and saved.completed_at is not None


def test_a_usage_limit_is_raised_as_itself_when_nothing_can_be_saved(tmp_path: Path, blocker: Path) -> None:
    data = tmp_path / "data"
    resets = datetime.now(timezone.utc) + timedelta(hours=3)

    def break_then_limit(request: TurnRequest) -> BaseException:
        shutil.rmtree(data)
        data.write_text("")
        return limit(resets)

    log = Recorder()
    runner = ScriptedRunner({"claude": [break_then_limit]})
    agent = caw.Agent(provider="claude", data_dir=data, logger=log, auto_wait=False, runner=runner)
    with pytest.raises(UsageLimitError) as info:
        agent.completion("hi")
    assert info.value.resets_at == resets
    assert info.value.trajectory.turns[0].input == "hi"  # type: ignore[attr-defined]
    assert log.warnings() and all("Traceback" not in w for w in log.warnings())


def test_save_trajectory_file_reports_the_path_it_could_not_write(blocker: Path) -> None:
    with pytest.raises(StorageError) as info:
        save_trajectory_file(Trajectory(session_id="s1"), blocker / "t.json")
    assert info.value.path == blocker and "a file is in the way" in str(info.value)


# ---- temp files for the CLIs --------------------------------------------------------------------------
def test_an_mcp_config_temp_file_that_cannot_be_written_is_a_storage_error(
    monkeypatch: pytest.MonkeyPatch, blocker: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "tmp"))
    with pytest.raises(StorageError) as info:
        _write_private('{"mcpServers": {}}', ".json")
    assert info.value.operation == "create a temp file in" and info.value.path == blocker / "tmp"
