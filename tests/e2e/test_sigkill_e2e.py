"""SIGKILL of the process running caw leaves nothing running (issue 17.1), on every CLI.

The CLI dies with caw (PDEATHSIG), but the tools it started run in sessions of their own; only the watchdog
process (``caw.transport.watchdog``), which outlives caw, can kill them. Before it existed claude's and
opencode's tools survived for as long as their command ran.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from tests.e2e.harness import LiveFactory, kill_quietly, processes_matching, wait_until
from tests.e2e.test_event_parity import _env, caw_argv
from tests.fakes.replies import ToolCall


def _with_owner(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return b"CAW_OWNER=" in f.read()
    except OSError:
        return False


def test_sigkill_of_caw_leaves_no_tool_running(live: LiveFactory) -> None:
    run = live()
    sleeper = f"time.sleep({300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997})"
    run.server.enqueue(ToolCall(f"{sys.executable} -c 'import time; {sleeper}'"))
    proc = subprocess.Popen(
        caw_argv(run, "--tools", "exec", "Run the command"),
        env=_env(run),
        cwd=run.work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tools = wait_until(lambda: processes_matching(sleeper), 90, "the tool to start")
        owned = [_with_owner(p) for p in tools]  # the tool (and claude's shell wrapper) carry the owner token
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_at = time.monotonic()
        wait_until(lambda: not processes_matching(sleeper), 10, "the watchdog to kill the orphaned tool")
        gone_after = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_quietly(processes_matching(sleeper))
    assert gone_after < 10
    assert owned and all(owned)
