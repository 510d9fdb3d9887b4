"""Fleets (issue 19) on the real CLIs and a real redis-server: two "machines" (two HOMEs, config homes and
working directories that share only the Redis URL), an export file moved without Redis, a fault."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import LiveFactory, live_factory
from tests.fakes.env import full_env
from tests.fakes.replies import Text, anthropic_rate_limited
from tests.redis_server import RedisServer, running_redis

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


MACHINE_A = """
import json, sys, caw
agent = caw.Agent(provider=sys.argv[1], cwd=sys.argv[2], auto_wait=False, **json.loads(sys.argv[3]))
s = agent.start_session()
s.send("remember the word PELICAN" + (sys.argv[4] if len(sys.argv) > 4 else ""))
print(s.resume_handle)
s.end()
"""

MACHINE_B = """
import json, sys, caw
s = caw.Agent(cwd=sys.argv[2], auto_wait=False).resume_session(sys.argv[1])
turn = s.send("which word did I ask you to remember?")
traj = s.end()
print(json.dumps({"result": turn.result, "provider": s.provider, "inputs": [t.input for t in traj.turns]}))
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


def machine(live: LiveFactory, url: str, root: Path, **flags: bool) -> tuple[dict[str, str], Path]:
    """A fresh machine on the same fake model: its own HOME/config home/cwd/data dir, the shared URL only."""
    server = live.servers[-1]
    env = full_env(live.harness.env(server.url, root, **flags))
    work = root / "work"
    work.mkdir(parents=True)
    env["CAW_DATA_DIR"] = str(root / "caw-data")
    if url:
        env["CAW_STATE_URL"] = url
    return env, work


def test_handle_resumes_on_another_machine_through_redis(live: LiveFactory, redis_server: RedisServer) -> None:
    run = live()
    name = run.harness.name
    a_env, a_work = machine(live, redis_server.url, run.root / "machine-a")
    a_env.update({"MY_DEPLOY_TOKEN": CANARY, "CAW_SECRETS": "MY_DEPLOY_TOKEN"})
    said = f"; the deploy token is {CANARY}"
    handle = run_py(MACHINE_A, [name, str(a_work), json.dumps(run.harness.agent_kwargs), said], a_env, a_work)
    shutil.rmtree(run.root / "machine-a")  # machine A is gone: its HOME, config home, cwd and data dir
    client = redis_server.client()
    stored = [client.get(k) for k in client.keys("caw:session:*")] + [client.get(k) for k in client.keys("caw:ok:*")]
    assert stored and not any(CANARY.encode() in v for v in stored)  # the blobs are compressed: look inside
    assert not any(CANARY.encode() in unpack_all(v) for v in stored if v.startswith(b"CAWREC1"))
    b_env, b_work = machine(live, redis_server.url, run.root / "machine-b")
    if name == "claude":  # a checkout path past claude's 200-character project slug: named by a hash
        b_work = b_work / ("long-checkout-directory/" * 9)
        b_work.mkdir(parents=True)
    run.server.enqueue(Text("You asked me to remember PELICAN."))
    if name == "claude":  # resume_session from Python
        result = json.loads(run_py(MACHINE_B, [handle, str(b_work)], b_env, b_work))
    else:  # `caw resume` from a shell
        doc = json.loads(caw_cli(["resume", "--json", handle, "which word did I ask you to remember?"], b_env, b_work))
        result = {"result": doc["result"], "provider": doc["agent"], "inputs": [t["input"] for t in doc["turns"]]}
    assert result["result"] == "You asked me to remember PELICAN."
    assert result["provider"] == name
    # B holds A's trajectory too, as it was stored: with the secret masked
    assert result["inputs"] == [
        f"remember the word PELICAN; the deploy token is {MASK}",
        "which word did I ask you to remember?",
    ]
    history = run.server.user_texts(run.server.model_requests[-1].body)
    assert any("remember the word PELICAN" in t for t in history), history
    assert restored_on(b_env, handle, b_work)
    if name == "opencode":  # the imported session belongs to machine B's directory now
        import sqlite3

        db = Path(b_env["XDG_DATA_HOME"]) / "opencode" / "opencode.db"
        with sqlite3.connect(db) as conn:
            assert conn.execute("select directory from session").fetchall() == [(str(b_work),)]


def unpack_all(blob: bytes) -> bytes:
    from caw.state.record import unpack

    record = unpack(blob, source="redis")
    return json.dumps(record.trajectory).encode() + b"".join(f.data for f in record.files)


def restored_on(env: dict[str, str], handle: str, cwd: Path) -> bool:
    """The CLI's own record of ``handle`` is on this machine now, where the CLI looks when run in ``cwd``."""
    from caw.providers import get_provider
    from caw.providers.records import present
    from caw.state.handle import decode

    h = decode(handle)
    var = get_provider(h.provider).config_home_var
    return present(h.provider, h.resume_key, str(cwd), env.get(var or ""), env)


WORKER = """
import json, sys, caw
try:
    caw.Agent(provider="claude", cwd=sys.argv[1], auto_wait=False).completion("work item")
    print(json.dumps({"ok": True}))
except caw.UsageLimitError as exc:
    print(json.dumps({"limited": exc.resets_at.isoformat() if exc.resets_at else None, "message": exc.detail}))
"""


def test_twenty_workers_behind_one_limit_make_one_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    import time

    for factory in live_factory("claude", tmp_path, monkeypatch):
        run = factory(oauth=True)
        reset = int(time.time()) + 3600
        run.server.enqueue(anthropic_rate_limited(reset))
        envs = []
        for i in range(20):  # twenty machines: own HOME, data dir and cwd; one Redis
            env, work = machine(factory, redis_server.url, tmp_path / f"worker{i}", oauth=True)
            envs.append((env, work))
        # all twenty start at once: one sends (the probe), the others wait for its outcome, see the limit, skip
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(work)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=work,
                env={**env, "PYTHONPATH": str(REPO)},
            )
            for env, work in envs
        ]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()[-2000:]
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        assert len({r.get("limited") for r in results}) == 1 and results[0].get("limited"), results
        skipped = [r for r in results if "shared limit ledger" in r["message"]]
        assert len(skipped) == 19, results
        assert len(run.server.model_requests) == 1  # one limited request between twenty workers


def test_turns_complete_while_redis_dies_and_records_resume_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis

    import caw
    from caw.state.record import unpack
    from caw.state.shared import open_link

    for factory in live_factory("claude", tmp_path, monkeypatch):
        run = factory()
        monkeypatch.setenv("CAW_STATE_RETRY", "0")  # try Redis again on every call (no clock to wait for)
        agent = run.agent(auto_wait=False, state_url=redis_server.url)
        client = redis.Redis(port=redis_server.port)
        session = agent.start_session()
        session.send("turn one")
        key = f"caw:session:{session.trajectory.session_id}"
        assert len(unpack(client.get(key), source=key).trajectory["turns"]) == 1
        redis_server.kill()  # lost mid-run
        assert session.send("turn two").status == "completed"
        assert session.send("turn three").status == "completed"
        warned = capsys.readouterr().err
        assert warned.count("is unreachable") == 1, warned  # warned once, not per turn
        redis_server.start()  # back on the same port
        assert session.send("turn four").status == "completed"
        client = redis.Redis(port=redis_server.port)
        record = unpack(client.get(key), source=key)
        assert [t["input"] for t in record.trajectory["turns"]] == ["turn one", "turn two", "turn three", "turn four"]
        assert open_link(redis_server.url).up
        session.end()
        local = caw.list_sessions(run.root / "caw-data")  # the local files kept every turn throughout
        assert [(s.session_id, s.turns) for s in local] == [(session.trajectory.session_id, 4)]


CANARY = "canary-7f3a9c1e5b2d4680"  # a secret the user named (CAW_SECRETS), said in the conversation
AUTH_CANARY = "canary-auth-0c5e8a2f9d"  # what a credentials file holds
MASK = "[REDACTED]"


def auth_files(provider: str, env: dict[str, str]) -> list[Path]:
    home = Path(env["HOME"])
    if provider == "claude":
        return [Path(env.get("CLAUDE_CONFIG_DIR") or home / ".claude") / ".credentials.json", home / ".claude.json"]
    if provider == "codex":
        return [Path(env.get("CODEX_HOME") or home / ".codex") / "auth.json"]
    return [Path(env.get("XDG_DATA_HOME") or home / ".local/share") / "opencode" / "auth.json"]


def caw_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "caw", *args],
        capture_output=True,
        timeout=180,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return out.stdout.decode()


# opencode's export/import path is the one the Redis test above runs; here claude and codex keep the e2e time down
@pytest.mark.parametrize("name", ["claude", "codex"])
def test_export_file_resumes_on_a_fresh_home_without_redis_and_carries_no_secret(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for factory in live_factory(name, tmp_path, monkeypatch):
        export_and_resume(factory)


def export_and_resume(live: LiveFactory) -> None:
    from caw.state.record import unpack

    run = live()
    name = run.harness.name
    a_env, a_work = machine(live, "", run.root / "machine-a")
    a_env.update({"MY_DEPLOY_TOKEN": CANARY, "CAW_SECRETS": "MY_DEPLOY_TOKEN"})
    said = f"; the deploy token is {CANARY}"
    handle = run_py(MACHINE_A, [name, str(a_work), json.dumps(run.harness.agent_kwargs), said], a_env, a_work)
    for path in auth_files(name, a_env):  # credentials beside the conversation record: they must stay here
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"token": AUTH_CANARY, "keep": path.read_text() if path.exists() else ""}))
    exported = run.root / "artifact" / "session.cawrec"
    exported.parent.mkdir()
    assert caw_cli(["session", "export", handle, "-o", str(exported)], a_env, a_work).strip() == handle
    shutil.rmtree(run.root / "machine-a")

    blob = exported.read_bytes()
    record = unpack(blob, source=str(exported))
    everything = blob + json.dumps(record.trajectory).encode() + b"".join(f.data for f in record.files)
    assert CANARY.encode() not in everything and AUTH_CANARY.encode() not in everything
    assert b"remember the word PELICAN" in b"".join(f.data for f in record.files)  # the CLI's own record is in it
    assert {f.role for f in record.files} <= {"claude-transcript", "codex-rollout", "opencode-export"}

    b_env, b_work = machine(live, "", run.root / "machine-b")
    assert caw_cli(["session", "import", str(exported)], b_env, b_work).strip() == handle
    run.server.enqueue(Text("You asked me to remember PELICAN."))
    out = caw_cli(["resume", handle, "which word did I ask you to remember?"], b_env, b_work)
    assert "You asked me to remember PELICAN." in out
    history = run.server.user_texts(run.server.model_requests[-1].body)
    assert any("remember the word PELICAN" in t for t in history), history
    assert not any(CANARY in t for t in history)  # the restored conversation has it masked
    assert restored_on(b_env, handle, b_work)
