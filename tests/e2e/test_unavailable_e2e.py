"""Issue 12 item 7 with the real binaries: a fallback order gets past a CLI that retries forever."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import caw
from tests.e2e.harness import HARNESSES, LiveFactory, Multi, load_harnesses, start_multi
from tests.fakes.replies import Hang, Text

load_harnesses()
ORDER = ["codex", "claude"]
pytestmark = pytest.mark.skipif(  # reported by name in the summary, never silently green
    not all(n in HARNESSES for n in ORDER), reason="needs the codex and claude harnesses"
)


@pytest.fixture
def multi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Multi]:
    m = start_multi(ORDER, tmp_path, monkeypatch, flags={"claude": {"oauth": True}})
    yield m
    for s in m.servers.values():
        s.stop()


def test_offline_codex_reconnecting_forever_fails_over_to_claude_within_the_bound(multi: Multi) -> None:
    # codex's model server is gone (connection refused): codex prints "Reconnecting... waiting for network"
    # at ~3, 11, 25, 47 s ... and never gives up on its own; its output never pauses for the idle watchdog
    multi.servers["codex"].stop()
    multi.servers["claude"].enqueue(Text("claude here"))
    models = {n: HARNESSES[n].agent_kwargs["model"] for n in ORDER if "model" in HARNESSES[n].agent_kwargs}
    agent = caw.Agent(provider=ORDER, cwd=str(multi.work), auto_wait=False, models=models, transient_timeout=15)
    started = time.monotonic()
    traj = agent.completion("who answers?")
    elapsed = time.monotonic() - started
    assert traj.agent == "claude" and traj.result == "claude here"
    assert [(a.provider, a.reason) for a in traj.attempts] == [("codex", "unavailable"), ("claude", "answered")]
    assert "Reconnecting" in traj.attempts[0].error
    assert elapsed < 60  # 15 s of retry notices from the first one, then claude's turn (no other deadline)


def test_a_model_server_that_accepts_and_never_answers_is_a_first_output_timeout(live: LiveFactory) -> None:
    # issue 17: the CLIs print their own start-up lines at once, so a first *byte* deadline never fired
    run = live()
    run.server.enqueue(Hang(60))
    started = time.monotonic()
    with pytest.raises(caw.FirstOutputTimeout, match="no answer within 8s"):
        run.agent(auto_wait=False, first_output_timeout=8, transient_timeout=None).completion("hello?")
    assert time.monotonic() - started < 40
    assert run.server.model_requests  # the request reached the server, which never answered


def test_caw_run_first_output_timeout_exits_124(live: LiveFactory) -> None:
    run = live()
    run.server.enqueue(Hang(60))
    model = run.harness.agent_kwargs.get("model")
    argv = [sys.executable, "-m", "caw", "run", "--provider", run.harness.name, "--first-output-timeout", "8s"]
    r = subprocess.run(
        [*argv, *(["--model", model] if model else []), "hi"],
        env=dict(os.environ),
        cwd=run.work,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert r.returncode == 124, r.stderr
    assert "gave no answer within 8s" in r.stderr and "--first-output-timeout" in r.stderr
