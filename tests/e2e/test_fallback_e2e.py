"""Fallback with the real binaries: the first provider that can answer, answers; the others are recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import caw
from tests.e2e.harness import HARNESSES, Multi, load_harnesses, start_multi
from tests.fakes.replies import Reply, Text

load_harnesses()
ALL = ["claude", "codex", "opencode"]
pytestmark = pytest.mark.skipif(  # reported by name in the summary, never silently green
    not all(n in HARNESSES for n in ALL), reason="needs all three provider harnesses"
)


@pytest.fixture
def multi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Multi]:
    m = start_multi(ALL, tmp_path, monkeypatch, flags={"claude": {"oauth": True}})
    yield m
    for s in m.servers.values():
        s.stop()


def agent(m: Multi, order: list[str]) -> caw.Agent:
    models = {n: HARNESSES[n].agent_kwargs["model"] for n in order if "model" in HARNESSES[n].agent_kwargs}
    return caw.Agent(provider=order, cwd=str(m.work), auto_wait=False, timeout=120, models=models)


def _refused(auth: Callable[[], Reply]) -> list[Reply]:
    """A bad login refuses every request: claude 2.1.3xx retries a 401 once (re-reading its credentials),
    so one queued refusal would let the retry through."""
    return [auth() for _ in range(3)]


def test_claude_rate_limited_then_codex_answers(multi: Multi) -> None:
    reset = int(time.time()) + 3600
    assert HARNESSES["claude"].rate_limited is not None
    multi.servers["claude"].enqueue(HARNESSES["claude"].rate_limited(reset))
    multi.servers["codex"].enqueue(Text("codex here"))
    traj = agent(multi, ["claude", "codex"]).completion("who answers?")
    assert traj.agent == "codex" and traj.result == "codex here"
    assert [(a.provider, a.reason) for a in traj.attempts] == [("claude", "rate_limited"), ("codex", "answered")]
    assert traj.attempts[0].resets_at is not None


def test_claude_auth_failure_then_opencode_answers(multi: Multi) -> None:
    assert HARNESSES["claude"].auth_error is not None
    multi.servers["claude"].enqueue(*_refused(HARNESSES["claude"].auth_error))
    multi.servers["opencode"].enqueue(Text("opencode here"))
    traj = agent(multi, ["claude", "opencode"]).completion("who answers?")
    assert traj.agent == "opencode" and traj.result == "opencode here"
    assert traj.attempts[0].reason == "auth"


def test_first_provider_not_installed_then_second_answers(multi: Multi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_CLAUDE_BIN", "/nonexistent/claude")
    multi.servers["codex"].enqueue(Text("codex here"))
    traj = agent(multi, ["claude", "codex"]).completion("who answers?")
    assert traj.agent == "codex"
    assert traj.attempts[0].reason == "not_installed"
    assert multi.servers["claude"].model_requests == []


def test_all_three_failing_is_one_error_with_three_attempts(multi: Multi) -> None:
    for name in ALL:
        auth = HARNESSES[name].auth_error
        assert auth is not None
        multi.servers[name].enqueue(*_refused(auth))
    with pytest.raises(caw.AllProvidersFailed) as info:
        agent(multi, ALL).completion("anyone?")
    err = info.value
    assert [a.provider for a in err.attempts] == ALL
    assert all(a.reason == "auth" for a in err.attempts)
    assert "3 tried" in str(err)


def test_cooldown_skips_claude_in_a_second_process(multi: Multi, tmp_path: Path) -> None:
    reset = int(time.time()) + 3600
    assert HARNESSES["claude"].rate_limited is not None
    multi.servers["claude"].enqueue(HARNESSES["claude"].rate_limited(reset))
    agent(multi, ["claude", "codex"]).completion("first process")
    claude_requests = len(multi.servers["claude"].model_requests)
    # a second process on the same machine (same caw data dir) must not spend a request on claude
    script = tmp_path / "second.py"
    script.write_text(
        "import json, caw\n"
        f"t = caw.Agent(provider=['claude', 'codex'], cwd={str(multi.work)!r}, auto_wait=False).completion('second')\n"
        "print(json.dumps({'agent': t.agent, 'attempts': [a.reason for a in t.attempts]}))\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        timeout=120,
        check=True,
        env={
            **multi.env,
            "CAW_DATA_DIR": str(tmp_path / "caw-data"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        },
    )
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert result == {"agent": "codex", "attempts": ["cooldown", "answered"]}
    assert len(multi.servers["claude"].model_requests) == claude_requests
