"""``caw traj show`` snapshots: the terminal view of a fixed trajectory, byte for byte (piped: no colour).

A deliberate change of the view: ``CAW_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest
tests/unit/test_traj_show_snapshots.py`` rewrites the files under tests/unit/snapshots/; review the diff.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caw.cli import app
from tests.viewer_samples import sample_trajectory, subagent_trajectory, write_session

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("CAW_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path}: run with CAW_UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text(encoding="utf-8")


def _show(tmp_path: Path, *args: str) -> str:
    d = write_session(tmp_path / "data", sample_trajectory(), subagent=subagent_trajectory())
    r = CliRunner().invoke(app, ["traj", "show", str(d), *args])
    assert r.exit_code == 0, r.stderr
    assert "\x1b[" not in r.stdout  # piped: plain text
    return r.stdout.replace(str(d), "<SESSION_DIR>")


def test_snapshot_folded(tmp_path: Path) -> None:
    _check("traj_show_folded", _show(tmp_path))


def test_snapshot_full(tmp_path: Path) -> None:
    _check("traj_show_full", _show(tmp_path, "--full"))


def test_snapshot_step(tmp_path: Path) -> None:
    _check("traj_show_step_4", _show(tmp_path, "--step", "4"))
