"""Interrupting ``caw run`` during a fallback, with the real codex on the loopback fake (issue 12.12)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import wait_until
from tests.fakes.env import codex_env, full_env
from tests.fakes.openai_responses import ResponsesFake
from tests.fakes.replies import Hang


def test_ctrl_c_during_fallback_is_an_interrupt_not_a_skipped_provider(tmp_path: Path) -> None:
    with ResponsesFake() as server:
        env = full_env(codex_env(server.url, tmp_path))
        env.update({"CAW_DATA_DIR": str(tmp_path / "caw-data"), "CAW_CLAUDE_BIN": str(tmp_path / "no-claude")})
        server.enqueue(Hang(60))
        proc = subprocess.Popen(
            [sys.executable, "-m", "caw", "run", "hello", "--provider", "claude,codex"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: server.model_requests, 60, "codex's request to reach the fake")
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, stderr
    assert "claude skipped (not_installed)" in stderr  # claude really was skipped
    assert "codex skipped" not in stderr and "no provider could answer" not in stderr
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("caw: error: ")]
    assert line.startswith("caw: error: interrupted") and "caw resume caw1_" in line
