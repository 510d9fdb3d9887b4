"""Issue 12.4 and 11.5 through ``caw run``: a data dir or ``--save`` target caw cannot write.

Before the turn it is a usage error (exit 2, one line, nothing sent); once the turn has run, the answer is
printed and the exit code is the turn's own (0, or 75 for a usage limit), with a warning on stderr.

The real ``caw.Agent`` runs with a scripted turn runner (``Agent(runner=...)``): no process, no sleeping.
Tests run as root, so permission bits stop nothing: a path under a regular file is what cannot be written.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import caw
from caw import cli
from caw.cli import ExitCode, app, failure_for
from caw.errors import StorageError, UsageLimitError
from caw.providers.base import TurnRequest
from tests.unit.scripted import Behaviour, ScriptedRunner


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "CAW_PROVIDER", "CAW_MODEL", "CAW_EFFORT", "CAW_AUTOWAIT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))


def scripted(monkeypatch: pytest.MonkeyPatch, *behaviours: Behaviour) -> ScriptedRunner:
    """Make ``caw run`` build real Agents whose turns come from ``behaviours``."""
    runner = ScriptedRunner({"claude": list(behaviours)})

    def agent(**kwargs: Any) -> caw.Agent:
        return caw.Agent(runner=runner, **kwargs)

    monkeypatch.setattr(cli.runner, "Agent", agent)
    return runner


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["run", "--provider", "claude", *args])


def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "file"
    path.write_text("not a directory\n")
    return path


def replace_with_file(directory: Path) -> None:
    """What a full disk, a lost mount or a stray `rm -rf` does to the data dir mid-run, as root can feel it."""
    shutil.rmtree(directory)
    directory.write_text("now a file\n")


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("caw: error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


# ---- before the turn: exit 2, nothing sent ----------------------------------------------------------------
def test_an_unwritable_data_dir_flag_exits_2_before_any_turn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = scripted(monkeypatch, "never sent")
    bad = a_file(tmp_path) / "sub"
    r = invoke("--data-dir", str(bad), "hi")
    assert r.exit_code == ExitCode.USAGE == 2
    assert one_error_line(r.stderr) == (
        f"caw: error: --data-dir {bad} is not writable (Not a directory) — pass a directory caw can write to"
    )
    assert runner.calls == [] and r.stdout == ""


def test_an_unwritable_caw_data_dir_exits_2_before_any_turn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = scripted(monkeypatch, "never sent")
    bad = a_file(tmp_path) / "sub"
    monkeypatch.setenv("CAW_DATA_DIR", str(bad))
    r = invoke("hi")
    assert r.exit_code == 2
    assert one_error_line(r.stderr).startswith(f"caw: error: CAW_DATA_DIR={bad} is not writable (")
    assert runner.calls == []


def test_a_save_target_under_a_file_exits_2_before_any_turn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = scripted(monkeypatch, "never sent")
    blocker = a_file(tmp_path)
    r = invoke("--save", str(blocker / "t.json"), "hi")
    assert r.exit_code == 2
    assert one_error_line(r.stderr) == (
        f"caw: error: --save {blocker / 't.json'} is not writable ({blocker}: a file is in the way)"
        " — pass a directory caw can write to"
    )
    assert runner.calls == []


def test_a_save_target_that_is_a_directory_exits_2_before_any_turn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = scripted(monkeypatch, "never sent")
    r = invoke("--save", str(tmp_path), "hi")
    assert r.exit_code == 2
    assert one_error_line(r.stderr).startswith(f"caw: error: --save {tmp_path} is a directory — ")
    assert runner.calls == []


def test_a_storage_error_that_escapes_is_a_usage_error_in_one_line() -> None:
    exc = StorageError("/tmp/caw-x.json", "create a temp file in", errno=28, strerror="No space left on device")
    failure = failure_for(exc)
    assert failure.code == ExitCode.USAGE
    assert failure.line.startswith("cannot create a temp file in /tmp/caw-x.json: No space left on device — ")
    assert "\n" not in failure.line


# ---- after the turn: the answer is kept ----------------------------------------------------------------
def test_a_data_dir_that_breaks_mid_turn_still_prints_the_answer_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "d"

    def answer_after_breaking_the_store(request: TurnRequest) -> str:
        replace_with_file(data / "sessions")
        return "the answer"

    scripted(monkeypatch, answer_after_breaking_the_store)
    r = invoke("--data-dir", str(data), "hi")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "the answer\n"
    warnings = [line for line in r.stderr.splitlines() if "is not saved there" in line]
    assert len(warnings) == 1, r.stderr  # turns.jsonl, trajectory.json and the end: one warning
    assert warnings[0].startswith(f"caw: cannot create the directory {data / 'sessions'}")
    assert "Traceback" not in r.stderr and "caw: error:" not in r.stderr


def test_a_save_target_that_breaks_mid_turn_still_prints_the_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    def answer_after_breaking_the_save_dir(request: TurnRequest) -> str:
        replace_with_file(out)
        return "the answer"

    scripted(monkeypatch, answer_after_breaking_the_save_dir)
    r = invoke("--json", "--save", str(out / "t.json"), "hi")
    assert r.exit_code == 0, r.stderr
    assert '"result": "the answer"' in r.stdout
    warning = next(line for line in r.stderr.splitlines() if "the session goes on" in line)
    assert warning.startswith(f"caw: cannot create the directory {out}: a file is in the way;")


def test_a_usage_limit_exits_75_when_neither_session_nor_cooldown_can_be_saved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "data"  # CAW_DATA_DIR: the session store and the cooldown ledger
    resets = datetime.now(timezone.utc) + timedelta(hours=3)

    def limit_after_breaking_the_data_dir(request: TurnRequest) -> BaseException:
        replace_with_file(data)
        return UsageLimitError("claude", "You've hit your session limit", resets_at=resets, kind="session")

    scripted(monkeypatch, limit_after_breaking_the_data_dir)
    r = invoke("--no-wait", "hi")
    assert r.exit_code == ExitCode.RATE_LIMITED == 75, r.stderr
    assert one_error_line(r.stderr).startswith("caw: error: claude hit its ")
    assert "this usage limit is not remembered for other runs" in r.stderr  # the ledger
    assert "the session goes on, but is not saved there" in r.stderr  # the session store
    assert "NotADirectoryError" not in r.stderr
