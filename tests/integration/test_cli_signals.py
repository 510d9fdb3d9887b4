"""``caw run`` in a real process on a fake CLI, interrupted: the resume handle survives a second signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.fake_cli import init, text


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


@pytest.mark.parametrize("ignores_sigint", [False, True], ids=["cli_stops_at_once", "cli_ignores_sigint"])
def test_a_second_signal_hurries_the_shutdown_but_the_handle_is_still_printed(
    fake_cli: Callable[[list[dict[str, Any]]], Path], tmp_path: Path, ignores_sigint: bool
) -> None:
    started = tmp_path / "started"
    steps: list[dict[str, Any]] = [{"json": init()}, {"json": text("working on it")}]
    if ignores_sigint:
        steps.append({"ignore_sigint": True})  # caw's grace period then runs its full length
    fake_cli([*steps, {"pidfile": str(started)}, {"sleep": 60}])
    proc = subprocess.Popen(
        [sys.executable, "-m", "caw", "run", "hello", "--provider", "claude"],
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(started)
        time.sleep(0.2)  # caw has read the text by now
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("caw: error: ")]
    assert len(errors) == 1 and errors[0].startswith("caw: error: interrupted"), stderr
    assert "caw resume caw1_" in errors[0], stderr
    assert "Traceback" not in stderr
    assert took < 1.5, f"the second signal did not hurry the shutdown ({took:.1f}s)"
