"""A data directory caw cannot write, with a fake claude on a real pty (issues 11.5 and 12.4).

Before the turn: exit 2 in one line and the CLI never starts. After it: the answer (or the usage limit,
exit 75) is what the user gets, with a warning that it was not saved. Tests run as root, so permission bits
stop nothing: the data dir is put under a regular file, or the fake CLI replaces it by one mid-turn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import caw
from tests.integration.fake_cli import SESSION, init, result, text

FIXTURES = Path(__file__).parents[1] / "fixtures"


def run_caw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "caw", "run", "--provider", "claude", *args],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def limited_turn(resets_at: float) -> list[dict[str, Any]]:
    """claude's recorded session-limit turn, resetting at ``resets_at`` (epoch seconds)."""
    lines = (FIXTURES / "claude" / "rate_limited.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    for ev in events:
        ev["session_id"] = SESSION
        if ev.get("type") == "rate_limit_event":
            ev["rate_limit_info"]["resetsAt"] = int(resets_at)
    return [{"json": ev} for ev in events]


def blocked(tmp_path: Path) -> Path:
    """A data dir no one can create: its parent is a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "caw-data"


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "NotADirectoryError" not in stderr, stderr


def test_an_unwritable_data_dir_exits_2_before_the_cli_starts(fake_cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ran = tmp_path / "fake-ran"
    fake_cli([{"pidfile": str(ran)}, {"json": init()}, {"json": text("hi")}, {"json": result("hi")}])
    monkeypatch.setenv("CAW_DATA_DIR", str(blocked(tmp_path)))
    proc = run_caw("hello")
    assert proc.returncode == 2, proc.stderr
    assert_no_traceback(proc.stderr)
    assert proc.stderr.count("caw: error: ") == 1 and "is not writable (Not a directory)" in proc.stderr
    assert proc.stdout == "" and not ran.exists()


def test_a_store_broken_mid_turn_still_prints_the_answer_and_warns(fake_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = Path(os.environ["CAW_DATA_DIR"])
    fake_cli(
        [
            {"replace_with_file": str(data / "sessions")},  # after caw checked it, before the turn is saved
            {"json": init()},
            {"json": text("the answer")},
            {"json": result("the answer")},
        ]
    )
    proc = run_caw("--save", str(tmp_path / "out" / "t.json"), "hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "the answer\n"
    assert_no_traceback(proc.stderr)
    assert proc.stderr.count("the session goes on, but is not saved there") == 1
    saved = json.loads((tmp_path / "out" / "t.json").read_text())  # --save still works
    assert saved["turns"][0]["status"] == "completed"
    assert any("not saved: cannot create the directory" in n for n in saved["notes"])


def test_a_usage_limit_exits_75_when_the_data_dir_breaks_mid_turn(fake_cli) -> None:  # type: ignore[no-untyped-def]
    data = Path(os.environ["CAW_DATA_DIR"])  # the session store and the cooldown ledger
    fake_cli([{"replace_with_file": str(data)}, *limited_turn(time.time() + 3 * 3600)])
    proc = run_caw("--no-wait", "hello")
    assert proc.returncode == 75, proc.stderr
    assert_no_traceback(proc.stderr)
    assert "caw: error: claude hit its session limit" in proc.stderr
    assert "this usage limit is not remembered for other runs" in proc.stderr


def test_from_python_a_bad_data_dir_raises_storage_error_before_the_turn(fake_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ran = tmp_path / "fake-ran"
    fake_cli([{"pidfile": str(ran)}, {"json": init()}, {"json": result("hi")}])
    bad = blocked(tmp_path)
    with pytest.raises(caw.StorageError) as info:
        caw.Agent(provider="claude", data_dir=bad).completion("hello")
    assert info.value.path == bad / "sessions" and info.value.operation == "create the directory"
    with pytest.raises(caw.StorageError):
        caw.Agent(provider="claude").start_session(traj_path=bad / "t.json")
    assert not ran.exists()


def test_from_python_a_usage_limit_survives_an_unwritable_ledger(fake_cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake_cli(limited_turn(time.time() + 3 * 3600))
    monkeypatch.setenv("CAW_DATA_DIR", str(blocked(tmp_path)))  # where the cooldown ledger lives
    with pytest.raises(caw.UsageLimitError) as info:
        caw.Agent(provider="claude", auto_wait=False).completion("hello")
    assert info.value.kind == "session" and info.value.resets_at is not None
