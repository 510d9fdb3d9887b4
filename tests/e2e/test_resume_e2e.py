"""Resume handles across processes and directories, with each real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import caw
from tests.e2e.harness import LiveFactory
from tests.fakes.replies import Text

REPO = Path(__file__).resolve().parents[2]

FIRST = """
import json, sys, caw
agent = caw.Agent(provider=sys.argv[1], cwd=sys.argv[2], auto_wait=False, **json.loads(sys.argv[3]))
s = agent.start_session()
s.send("remember the word PELICAN")
print(s.resume_handle)
s.end()
"""

SECOND = """
import json, sys, caw
s = caw.Agent(auto_wait=False).resume_session(sys.argv[1])
turn = s.send("which word did I ask you to remember?")
print(json.dumps({"result": turn.result, "provider": s.provider, "status": turn.status}))
s.end()
"""


def run_py(code: str, args: list[str], env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        timeout=180,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return out.stdout.decode().strip().splitlines()[-1]


@pytest.mark.parametrize("config_home", [False, True], ids=["default-home", "custom-config-home"])
def test_handle_resumes_in_another_process_from_another_directory(live: LiveFactory, config_home: bool) -> None:
    run = live()
    env = dict(run.env)
    name = run.harness.name
    if config_home:
        # a non-default config home for the first process only: the handle must carry it to the second
        from caw.providers import get_provider

        var = get_provider(name).config_home_var
        assert var is not None
        home = run.root / "custom-home"
        if var in env:  # keep what the offline env put there (e.g. codex's config.toml)
            import shutil

            shutil.copytree(env[var], home, dirs_exist_ok=True)
        else:
            home.mkdir()
        env[var] = str(home)
    kwargs = json.dumps(run.harness.agent_kwargs)
    handle = run_py(FIRST, [name, str(run.work), kwargs], env, run.work)
    assert handle.startswith("caw1_")
    other = run.root / "elsewhere"
    other.mkdir()
    second_env = dict(run.env)
    if config_home:
        from caw.providers import get_provider

        second_env.pop(get_provider(name).config_home_var or "", None)
    run.server.enqueue(Text("You asked me to remember PELICAN."))
    result = json.loads(run_py(SECOND, [handle], second_env, other))
    assert result == {"result": "You asked me to remember PELICAN.", "provider": name, "status": "completed"}
    last = run.server.model_requests[-1].body
    assert last is not None
    history = run.server.user_texts(last)
    assert any("remember the word PELICAN" in t for t in history), history


def test_full_trajectory_is_restored_with_the_data_dir(live: LiveFactory) -> None:
    run = live()
    data = run.root / "sessions"
    agent = run.agent(data_dir=str(data), auto_wait=False)
    s = agent.start_session()
    s.send("first")
    sid = s.trajectory.session_id
    s.end()
    again = run.agent(data_dir=str(data), auto_wait=False).resume_session(sid)  # a bare session id
    again.send("second")
    traj = again.end()
    assert [t.input for t in traj.turns] == ["first", "second"]
    assert caw.list_sessions(data)[0].session_id == sid


def test_missing_conversation_raises_or_starts_fresh(live: LiveFactory) -> None:
    from caw.state.handle import ResumeHandle, encode

    run = live()
    fake_key = {
        "claude": "00000000-0000-4000-8000-000000000000",
        "codex": "019a0000-0000-7000-8000-000000000000",
        "opencode": "ses_000000000000000000000000",
    }[run.harness.name]
    handle = encode(
        ResumeHandle(
            provider=run.harness.name,
            session_id="gone",
            resume_key=fake_key,
            cwd=str(run.work),
            model=run.harness.agent_kwargs.get("model"),
        )
    )
    with pytest.raises(caw.ConversationNotFound):
        run.agent().resume_session(handle).send("hello?")
    fresh = run.agent(on_missing="fresh").resume_session(handle)
    turn = fresh.send("hello again")
    assert turn.status == "completed"
    assert fresh.trajectory.notes and "fresh" in fresh.trajectory.notes[0]
    fresh.end()


@pytest.mark.parametrize("bad", ["", "   ", "garbage", "caw1_AAAA", "caw9_abcdef", "x" * 1_000_000])
def test_hostile_handles_are_invalid_resume_handle(bad: str) -> None:
    with pytest.raises(caw.InvalidResumeHandle):
        caw.Agent(provider="claude").resume_session(bad)


def test_pinned_agent_refuses_another_providers_handle() -> None:
    from caw.state.handle import ResumeHandle, encode

    handle = encode(ResumeHandle(provider="codex", session_id="s", resume_key="k", cwd="/tmp"))
    with pytest.raises(caw.ConfigurationError, match="pinned"):
        caw.Agent(provider="claude").resume_session(handle)
