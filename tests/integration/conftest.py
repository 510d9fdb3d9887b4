from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FAKE_CLI = Path(__file__).with_name("fake_cli.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[dict[str, Any]]], Path]:
    """Install a fake `claude` (CAW_CLAUDE_BIN) that runs the given script; returns the script path."""
    exe = tmp_path / "fake-claude"
    exe.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = {str(FAKE_CLI)!r}\n"
        f"runpy.run_path({str(FAKE_CLI)!r}, run_name='__main__')\n"
    )
    exe.chmod(0o755)
    monkeypatch.setenv("CAW_CLAUDE_BIN", str(exe))
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "caw-data"))
    # the fake speaks claude's one-turn `-p` protocol only; warm sessions (the default) are tested on the
    # real CLIs (tests/e2e/test_warm_*.py) and with a scripted client (tests/unit/test_warm_runner.py)
    monkeypatch.setenv("CAW_WARM", "0")

    def install(script: list[dict[str, Any]]) -> Path:
        path = tmp_path / f"script{len(list(tmp_path.glob('script*.json')))}.json"
        path.write_text(json.dumps(script))
        monkeypatch.setenv("FAKE_CLI_SCRIPT", str(path))
        return path

    return install


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def cmd_running(needle: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if needle in cmd and pid_alive(int(entry)):
            found.append(int(entry))
    return found
