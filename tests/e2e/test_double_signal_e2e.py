"""SIGINT then SIGTERM 50 ms later (a CI runner's cancel, a user's double Ctrl-C) keeps the work (issue 17.2).

The second signal hurries the shutdown (the CLI's tree is killed without its grace) but never skips saving:
exit 130, the partial turn on disk, the resume handle printed, no tool left. Before the fix the partial turn
and the handle were lost on every CLI, and codex sometimes killed caw outright (exit 143, no error line).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.e2e.harness import LiveFactory, kill_quietly, processes_matching, wait_until
from tests.e2e.test_event_parity import _env, caw_argv, read_run
from tests.fakes.replies import ToolCall


def test_sigint_then_sigterm_keeps_the_partial_turn_and_the_handle(live: LiveFactory) -> None:
    run = live()
    sleeper = f"time.sleep({300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 997})"
    run.server.enqueue(ToolCall(f"{sys.executable} -c 'import time; {sleeper}'"))
    env = _env(run)
    proc = subprocess.Popen(
        caw_argv(run, "--tools", "exec", "Run the command"),
        env=env,
        cwd=run.work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: processes_matching(sleeper), 90, "the tool to start")
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)  # the gap between the two signals is the scenario itself, not a wait for something
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_quietly(processes_matching(sleeper))
    assert proc.returncode == 130, stderr
    got = read_run(stdout)
    assert got.session is not None and got.session.resume_handle, stdout
    assert f"caw resume {got.session.resume_handle}" in stderr
    [traj_file] = Path(env["CAW_DATA_DIR"]).glob("sessions/*/trajectory.json")
    traj = json.loads(traj_file.read_text())
    [turn] = traj["turns"]
    assert turn["status"] == "cancelled" and turn["input"] == "Run the command"
    # what the CLI reported before the stop is in the saved partial turn (claude reports the call when it
    # starts the tool; codex exec and opencode run report it only once the tool has finished)
    saved = {block.get("id") for block in turn["output"] if block.get("type") == "tool_use"}
    assert set(got.calls) <= saved, (got.calls, turn)
    assert got.calls or run.harness.name != "claude"
    assert not processes_matching(sleeper)
