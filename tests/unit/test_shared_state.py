"""Shared state (issue 19): portable records, the Redis ledger and store on a real redis-server, faults."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import caw
from caw.errors import ConfigurationError, SessionRecordCorrupt, UsageLimitError
from caw.models import Trajectory, Turn
from caw.providers import get_provider
from caw.providers.records import claude_slug, prepare_resume, restore
from caw.state import record as record_mod
from caw.state.handle import ResumeHandle, encode
from caw.state.record import Record, RecordFile, pack, unpack
from caw.state.redis_backend import RedisConfig, RedisState, parse_url
from caw.state.shared import (
    FileSessionStore,
    Ledger,
    Link,
    SessionBackend,
    SharedLedger,
    SharedSessionStore,
    gate_runner,
    open_ledger,
    open_store,
    wake_jitter,
)
from caw.state.store import SessionStore
from tests.redis_server import RedisServer, running_redis
from tests.unit.scripted import ScriptedRunner

HOUR = timedelta(hours=1)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from running_redis()


def link_to(server: RedisServer, warnings: list[str] | None = None, **kw: object) -> Link:
    return Link(RedisState(parse_url(server.url)), warn=(warnings.append if warnings is not None else None), **kw)  # type: ignore[arg-type]


def now() -> datetime:
    return datetime.now(timezone.utc)


# ---- the record --------------------------------------------------------------------------------------
def sample_record() -> Record:
    return Record("caw1_x", "claude", "s1", [RecordFile("transcript.jsonl", b'{"a":1}\n' * 100, "claude-transcript")])


def test_a_record_round_trips_compressed() -> None:
    blob = pack(sample_record())
    assert len(blob) < 300  # 900 bytes of transcript, compressed
    assert unpack(blob, source="x") == sample_record()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b[:-5], "checksum"),  # truncated
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),  # one bit
        (lambda b: b"PK\x03\x04" + b[4:], "not_a_record"),  # another file
    ],
)
def test_a_damaged_record_is_a_typed_error(damage, why: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SessionRecordCorrupt) as info:
        unpack(damage(pack(sample_record())), source="/tmp/s.cawrec")
    assert info.value.why == why and info.value.source == "/tmp/s.cawrec"


def test_a_record_that_inflates_past_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    big = Record("caw1_x", "claude", "s1", [RecordFile("t", b"\0" * 200_000)])
    blob = pack(big)
    monkeypatch.setattr(record_mod, "MAX_RECORD_BYTES", 50_000)
    with pytest.raises(SessionRecordCorrupt) as info:
        unpack(blob, source="x")
    assert info.value.why == "too_large"


# ---- configuration -------------------------------------------------------------------------------------
def test_the_url_carries_a_prefix_and_ttl_and_the_environment_prefix_wins() -> None:
    cfg = parse_url("redis://:pw@10.0.0.5:6380/2?prefix=team-a:&ttl=60")
    assert (cfg.prefix, cfg.ttl, cfg.url) == ("team-a:", 60, "redis://:pw@10.0.0.5:6380/2")
    assert "pw" not in cfg.display and "team-a:" in cfg.display
    assert parse_url("redis://h/0", prefix="ci:").prefix == "ci:"
    with pytest.raises(ConfigurationError):
        parse_url("http://h/0")


def test_without_a_url_the_state_is_the_files_as_before(tmp_path: Path) -> None:
    ledger = open_ledger(None, directory=tmp_path)
    assert type(ledger) is caw.state.ledger.CooldownStore
    assert open_store(None, None) is None
    store = open_store(tmp_path, None)
    assert type(store) is FileSessionStore
    assert isinstance(ledger, Ledger) and isinstance(store, SessionBackend)


def test_import_caw_never_imports_redis() -> None:
    code = "import caw, caw.agent, caw.state.shared, sys; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_wake_jitter_spreads_over_the_window() -> None:
    assert wake_jitter(10.0, rng=lambda: 0.0) == 0.0
    assert wake_jitter(10.0, rng=lambda: 0.999) == pytest.approx(9.99)
    with pytest.raises(ConfigurationError):
        wake_jitter(-1.0)


def test_an_agent_with_a_shared_state_spreads_its_wake_up(redis_server: RedisServer) -> None:
    setup = caw.Agent(provider="claude", state_url=redis_server.url, wake_jitter=0)._setup(None)
    assert setup.limit_waiter is not None and setup.limit_waiter.buffer == 120.0
    buffers = {
        caw.Agent(provider="claude", state_url=redis_server.url, wake_jitter=60)._setup(None).limit_waiter.buffer  # type: ignore[union-attr]
        for _ in range(8)
    }
    assert all(120.0 <= b <= 180.0 for b in buffers) and len(buffers) > 1


# ---- the ledger on Redis ---------------------------------------------------------------------------------
def test_a_limit_one_machine_records_is_seen_by_another_and_expires_at_the_reset(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    a = SharedLedger(link_to(redis_server), directory=tmp_path / "a")
    b = SharedLedger(link_to(redis_server), directory=tmp_path / "b")
    reset = now() + HOUR
    assert a.record(UsageLimitError("claude", "limit", resets_at=reset, kind="session"))
    seen = b.active()["claude"]
    assert abs((seen.until - reset).total_seconds()) < 0.01 and seen.kind == "session"
    assert b.skip_reason("claude") is not None and b.skip_reason("codex") is None
    pttl = redis_server.client().pttl("caw:ledger:claude")
    assert 3595_000 < pttl <= 3600_000  # PEXPIREAT at the reset: Redis drops it by itself
    a.set("claude", reset - HOUR / 2)  # an earlier reset never shortens the entry
    assert b.active()["claude"].until == seen.until


def test_concurrent_records_lose_no_update(tmp_path: Path, redis_server: RedisServer) -> None:
    base = now() + HOUR
    resets = [base + timedelta(seconds=i) for i in range(60)]

    def worker(chunk: list[datetime], n: int) -> None:
        ledger = SharedLedger(link_to(redis_server), directory=tmp_path / f"w{n}")
        for when in chunk:
            ledger.set("codex", when)

    threads = [threading.Thread(target=worker, args=(resets[i::6], i)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = SharedLedger(link_to(redis_server), directory=tmp_path / "reader")
    assert int(fresh.active()["codex"].until.timestamp()) == int(resets[-1].timestamp())


def test_another_account_is_not_stopped_by_this_ones_limit(tmp_path: Path, redis_server: RedisServer) -> None:
    team_a = SharedLedger(link_to(redis_server), directory=tmp_path / "a", scope=lambda p: "key-a")
    team_b = SharedLedger(link_to(redis_server), directory=tmp_path / "b", scope=lambda p: "key-b")
    team_a.set("claude", now() + HOUR)
    assert team_b.active() == {}
    assert "claude" in SharedLedger(link_to(redis_server), directory=tmp_path / "a2", scope=lambda p: "key-a").active()
    assert set(team_b.shared_entries() or {}) == {"claude@key-a"}


def test_the_account_scope_is_a_hash_never_the_key() -> None:
    from caw.providers.records import account_scope

    claude = get_provider("claude")
    scope = account_scope(claude, {"ANTHROPIC_API_KEY": "sk-ant-secret-value"})
    assert len(scope) == 12 and "secret" not in scope
    assert scope != account_scope(claude, {"ANTHROPIC_API_KEY": "sk-ant-other"})
    assert account_scope(claude, {}) == ""


def test_the_only_provider_a_shared_limit_names_is_skipped_without_a_request(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    reset = now() + HOUR
    SharedLedger(link_to(redis_server), directory=tmp_path / "other-machine").set("claude", reset, kind="session")
    runner = ScriptedRunner({"claude": ["never sent"]})
    agent = caw.Agent(provider="claude", runner=runner, auto_wait=False, state_url=redis_server.url)
    with pytest.raises(caw.UsageLimitError) as info:
        agent.completion("hi")
    assert runner.calls == []
    assert info.value.resets_at is not None and abs((info.value.resets_at - reset).total_seconds()) < 0.01


def test_a_fallback_order_goes_on_to_the_next_provider(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    SharedLedger(link_to(redis_server), directory=tmp_path / "other").set("claude", now() + HOUR)
    runner = ScriptedRunner({"codex": ["from codex"]})
    traj = caw.Agent(provider=["claude", "codex"], runner=runner, state_url=redis_server.url).completion("hi")
    assert traj.result == "from codex" and [c[0] for c in runner.calls] == ["codex"]
    assert traj.attempts[0].provider == "claude" and traj.attempts[0].reason in ("cooldown", "rate_limited")


def test_gate_runner_keeps_the_inner_runner() -> None:
    inner = ScriptedRunner({})
    assert gate_runner(inner, caw.state.ledger.CooldownStore(Path("/nonexistent"))).inner is inner


# ---- faults ------------------------------------------------------------------------------------------
def test_an_unreachable_redis_is_warned_about_once_and_the_files_carry_on(tmp_path: Path) -> None:
    dead = RedisServer()  # a port nobody listens on
    warnings: list[str] = []
    clock = [0.0]
    link = Link(RedisState(parse_url(dead.url), timeout=0.2), warn=warnings.append, clock=lambda: clock[0], retry_s=5)
    ledger = SharedLedger(link, directory=tmp_path)
    reset = now() + HOUR
    for _ in range(3):
        assert ledger.record(UsageLimitError("claude", "limit", resets_at=reset))
    assert "claude" in ledger.active()  # from the local file
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "using the local files" in warnings[0]
    assert not link.up
    dead.start()  # Redis comes back on that port
    try:
        clock[0] = 1.0
        ledger.set("claude", reset)  # within the retry interval: not tried, no wait
        assert dead.client().get("caw:ledger:claude") is None
        clock[0] = 6.0
        ledger.set("claude", reset)
        assert dead.client().hget("caw:ledger:claude", "until") is not None
        assert link.up and len(warnings) == 1
    finally:
        dead.stop()


def traj_with_handle(tmp_path: Path, session_id: str = "sess1") -> Trajectory:
    handle = encode(ResumeHandle(provider="claude", session_id=session_id, resume_key="k-1", cwd=str(tmp_path)))
    traj = Trajectory(session_id=session_id, agent="claude", resume_handle=handle)
    traj.turns.append(Turn(input="hello", provider="claude", status="completed"))
    return traj


def test_a_record_not_written_while_redis_was_down_is_written_when_it_is_back(tmp_path: Path) -> None:
    server = RedisServer()
    clock = [0.0]
    link = Link(RedisState(parse_url(server.url), timeout=0.2), warn=lambda m: None, clock=lambda: clock[0], retry_s=1)
    store = SharedSessionStore(tmp_path / "local", link, capture=lambda h: [RecordFile("transcript.jsonl", b"{}")])
    traj = traj_with_handle(tmp_path)
    store.save(traj)  # Redis down: the local files have it, the record waits
    assert (tmp_path / "local" / "sessions" / "sess1" / "trajectory.json").is_file()
    assert set(link.pending) == {"sess1"}
    server.start()
    try:
        clock[0] = 2.0
        SharedLedger(link, directory=tmp_path).active()  # any call that reaches Redis writes what waited
        assert link.pending == {}
        record = unpack(server.client().get("caw:session:sess1"), source="redis")
        assert record.trajectory is not None and record.trajectory["turns"][0]["input"] == "hello"
    finally:
        server.stop()


# ---- the session store -------------------------------------------------------------------------------
def test_another_machine_loads_the_trajectory_and_record_from_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    captured: list[str] = []

    def capture(handle: ResumeHandle) -> list[RecordFile]:
        captured.append(handle.resume_key)
        return [RecordFile("transcript.jsonl", b'{"secret":"sk-ant-api03-abcdefghijklmnop"}\n', "claude-transcript")]

    a = SharedSessionStore(tmp_path / "a", link_to(redis_server), capture=capture)
    traj = traj_with_handle(tmp_path)
    a.save(traj, redact=lambda t: t.replace("sk-ant-api03-abcdefghijklmnop", "[REDACTED]"))
    a.save(traj)  # nothing changed: not captured again
    assert captured == ["k-1"]
    b = SharedSessionStore(tmp_path / "b", link_to(redis_server))
    assert b.exists("sess1") and not SessionStore(tmp_path / "b").exists("sess1")
    assert [t.input for t in b.load("sess1").turns] == ["hello"]
    record = b.get_record("sess1")
    assert record is not None and b"[REDACTED]" in record.files[0].data and b"sk-ant-api03" not in record.files[0].data


def test_a_capture_that_fails_never_fails_the_save(tmp_path: Path, redis_server: RedisServer) -> None:
    warnings: list[str] = []

    def broken(handle: ResumeHandle) -> list[RecordFile]:
        raise PermissionError("transcript unreadable")

    store = SharedSessionStore(tmp_path, link_to(redis_server, warnings), capture=broken)
    store.save(traj_with_handle(tmp_path))
    store.save(traj_with_handle(tmp_path, "sess2"))
    assert SessionStore(tmp_path).exists("sess1") and len(warnings) == 1


def claude_handle(cwd: str, session_id: str = "s9") -> ResumeHandle:
    return ResumeHandle(provider="claude", session_id=session_id, resume_key="5d36-aa", cwd=cwd)


def test_resume_restores_the_transcript_under_the_new_cwd_and_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "default-data"))
    store = FileSessionStore(tmp_path / "data")
    store.put_record(
        Record("caw1_h", "claude", "s9", [RecordFile("transcript.jsonl", b'{"t":1}\n', "claude-transcript")])
    )
    here = tmp_path / "b-work"
    here.mkdir()
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "b-config")}
    handle = claude_handle("/machine-a/work/that/is/gone")
    cwd = prepare_resume(handle, get_provider("claude"), env, str(here), store)
    assert cwd == str(here)
    restored = tmp_path / "b-config" / "projects" / claude_slug(str(here)) / "5d36-aa.jsonl"
    assert restored.read_bytes() == b'{"t":1}\n'


def test_a_corrupt_record_restores_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "default-data"))
    store = FileSessionStore(tmp_path / "data")
    store.put_record(Record("caw1_h", "claude", "s9", [RecordFile("transcript.jsonl", b"{}\n", "claude-transcript")]))
    path = store.record_path("s9")
    path.write_bytes(path.read_bytes()[:-3])
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "b-config")}
    with pytest.raises(SessionRecordCorrupt) as info:
        prepare_resume(claude_handle(str(tmp_path)), get_provider("claude"), env, str(tmp_path), store)
    assert info.value.why == "checksum" and str(path) in info.value.source
    assert not (tmp_path / "b-config").exists()


def test_a_codex_record_cannot_write_outside_the_codex_home(tmp_path: Path) -> None:
    evil = Record(
        "caw1_h",
        "codex",
        "s",
        [
            RecordFile("sessions/2026/12/04/rollout-x-k.jsonl", b"ok", "codex-rollout"),
            RecordFile("../../outside.jsonl", b"no", "codex-rollout"),
            RecordFile("auth.json", b"no", "codex-rollout"),
        ],
    )
    restore(evil, get_provider("codex"), "k", str(tmp_path), str(tmp_path / "codex"), {})
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["codex/sessions/2026/12/04/rollout-x-k.jsonl"]


def test_redis_config_display_has_no_password() -> None:
    assert RedisConfig("redis://user:hunter2@h:1/3").display == "redis://h:1/3 (prefix 'caw:')"


def test_ledger_entries_are_json_free_hashes(tmp_path: Path, redis_server: RedisServer) -> None:
    SharedLedger(link_to(redis_server), directory=tmp_path).set("opencode", now() + HOUR, kind="weekly", message="m")
    fields = redis_server.client().hgetall("caw:ledger:opencode")
    assert fields[b"kind"] == b"weekly" and fields[b"message"] == b"m" and int(fields[b"until"]) > 0
    assert json.loads(json.dumps({k.decode(): v.decode() for k, v in fields.items()}))["kind"] == "weekly"


def test_caw_doctor_shows_the_shared_ledger(tmp_path: Path, redis_server: RedisServer) -> None:
    reset = now() + HOUR
    SharedLedger(link_to(redis_server), directory=tmp_path / "elsewhere").set("claude", reset, kind="session")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "CAW_DATA_DIR": str(tmp_path / "data"),
        "CAW_STATE_URL": redis_server.url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    out = subprocess.run([sys.executable, "-m", "caw", "doctor", "--json"], capture_output=True, text=True, env=env)
    doc = json.loads(out.stdout)
    assert doc["shared_state"]["reachable"] is True
    assert [e["entry"] for e in doc["shared_state"]["limits"]] == ["claude"]
    claude = next(r for r in doc["providers"] if r["provider"] == "claude")
    assert claude["cooldown_until"] is not None  # the provider row reads the shared ledger too
    from caw.cli.sessions_io import shared_state_line

    line = shared_state_line(doc["shared_state"])
    assert line.startswith(f"shared state: redis://127.0.0.1:{redis_server.port}/0 (prefix 'caw:'): claude until")
    redis_server.kill()
    gone = subprocess.run([sys.executable, "-m", "caw", "doctor"], capture_output=True, text=True, env=env)
    assert "is unreachable (the local ledger is used)" in gone.stdout


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: list[object] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            action = self.on_sleep.pop(0)
            action()  # type: ignore[operator]


def cold_fleet(tmp_path: Path, server: RedisServer, t: FakeTime) -> tuple[SharedLedger, SharedLedger]:
    first = SharedLedger(link_to(server), directory=tmp_path / "first")
    other = SharedLedger(link_to(server), directory=tmp_path / "other", clock=t.clock, sleep=t.sleep, probe_wait=30)
    return first, other


def test_a_cold_fleet_sends_one_request_and_the_others_follow_its_answer(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    t = FakeTime()
    first, other = cold_fleet(tmp_path, redis_server, t)
    token = first.admit("claude")
    assert token is not None  # nobody saw claude answer lately: this worker probes
    t.on_sleep = [lambda: first.settle("claude", token, answered=True)]
    assert other.admit("claude") is None and len(t.sleeps) == 1  # waited one poll, then went
    assert other.admit("claude") is None and len(t.sleeps) == 1  # answered lately: no wait at all
    assert redis_server.client().exists("caw:probe:claude") == 0


def test_a_cold_fleet_waits_for_the_probe_and_sees_its_limit(tmp_path: Path, redis_server: RedisServer) -> None:
    t = FakeTime()
    first, other = cold_fleet(tmp_path, redis_server, t)
    token = first.admit("codex")
    reset = now() + HOUR

    def limited() -> None:
        first.record(UsageLimitError("codex", "limit", resets_at=reset))
        first.settle("codex", token, answered=False)

    t.on_sleep = [lambda: None, limited]
    assert other.admit("codex") is None and len(t.sleeps) == 2
    assert other.skip_reason("codex") is not None


def test_a_probe_that_never_ends_holds_the_others_only_probe_wait_seconds(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    t = FakeTime()
    first, other = cold_fleet(tmp_path, redis_server, t)
    assert first.admit("opencode") is not None  # and never settles (a crashed worker)
    assert other.admit("opencode") is None
    assert 30 <= t.now < 31 and t.sleeps
    off = SharedLedger(link_to(redis_server), directory=tmp_path / "off", probe_wait=0, sleep=t.sleep)
    count = len(t.sleeps)
    assert off.admit("opencode") is None and len(t.sleeps) == count


def test_an_agent_whose_redis_is_down_at_start_answers_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    dead = RedisServer()  # nothing listens on its port
    runner = ScriptedRunner({"claude": ["first", "second"]})
    agent = caw.Agent(provider="claude", runner=runner, state_url=dead.url, data_dir=tmp_path / "sessions")
    session = agent.start_session()
    assert session.send("one").result == "first"
    assert session.send("two").result == "second"
    session.end()
    err = capsys.readouterr().err
    assert err.count("is unreachable") == 1, err
    assert caw.list_sessions(tmp_path / "sessions")[0].turns == 2  # the local files have every turn


@pytest.mark.parametrize(
    ("cwd", "suffix"),
    [  # the hashes node computes with claude 2.1.332's own function
        ("/tmp/" + "a" * 230, "kb6lzb"),
        ("/work/é/" + "x/" * 120, "7p55wj"),
        ("/w/😀/" + "b" * 220, "xfwq4b"),
    ],
)
def test_claude_names_a_long_project_dir_by_a_hash_of_the_path(cwd: str, suffix: str) -> None:
    slug = claude_slug(cwd)
    assert len(slug) == 200 + 1 + len(suffix) and slug.endswith("-" + suffix)
    assert claude_slug("/work/a.b c") == "-work-a-b-c"
    assert claude_slug("/w/😀") == "-w---"  # the emoji is two UTF-16 units: two dashes


def test_a_limit_without_a_reset_is_shared_for_a_minute(tmp_path: Path, redis_server: RedisServer) -> None:
    a = SharedLedger(link_to(redis_server), directory=tmp_path / "a")
    b = SharedLedger(link_to(redis_server), directory=tmp_path / "b")
    assert a.record(UsageLimitError("codex", "Rate limit reached", resets_at=None, kind="rate"))
    until = b.active()["codex"].until
    assert 55 < (until - now()).total_seconds() <= 60
    local = caw.state.ledger.CooldownStore(tmp_path / "c")  # one machine's file keeps no reset-less limit
    assert local.record(UsageLimitError("codex", "x")) is True and local.active() == {}


def test_a_redis_url_without_the_redis_client_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if caw[redis] was not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'caw-agents\[redis\]'"):
        RedisState(parse_url("redis://127.0.0.1:1/0"))


def test_session_export_and_import_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from caw.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    handle = encode(claude_handle(str(work), "sess-x"))
    runner = CliRunner()
    out = tmp_path / "s.cawrec"
    missing = runner.invoke(app, ["session", "export", handle, "-o", str(out), "--data-dir", str(tmp_path / "d")])
    assert missing.exit_code != 0 and "has no record of 5d36-aa" in missing.output and not out.exists()
    transcript = home / ".claude" / "projects" / claude_slug(str(work)) / "5d36-aa.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(b'{"type":"user"}\n')
    done = runner.invoke(app, ["session", "export", handle, "-o", str(out), "--data-dir", str(tmp_path / "d")])
    assert done.exit_code == 0, done.output
    assert unpack(out.read_bytes(), source="x").files[0].data == b'{"type":"user"}\n'
    imported = runner.invoke(app, ["session", "import", str(out), "--data-dir", str(tmp_path / "other")])
    assert imported.exit_code == 0 and handle in imported.output
    assert FileSessionStore(tmp_path / "other").get_record("sess-x") is not None
    out.write_bytes(out.read_bytes()[:-2])
    broken = runner.invoke(app, ["session", "import", str(out), "--data-dir", str(tmp_path / "third")])
    assert broken.exit_code != 0 and "fails its checksum" in broken.output
    assert not (tmp_path / "third").exists()


def test_a_limit_ends_the_answered_lately_mark(tmp_path: Path, redis_server: RedisServer) -> None:
    ledger = SharedLedger(link_to(redis_server), directory=tmp_path)
    ledger.settle("claude", None, answered=True)
    assert redis_server.client().exists("caw:ok:claude") == 1
    ledger.set("claude", now() + HOUR)  # after this reset, the fleet starts again with one request
    assert redis_server.client().exists("caw:ok:claude") == 0


def test_a_record_whose_sizes_do_not_add_up_is_malformed_even_with_a_good_checksum() -> None:
    import hashlib
    import zlib

    head = json.dumps({"v": 1, "handle": "h", "provider": "claude", "session_id": "s",
                       "files": [{"path": "t", "role": "claude-transcript", "size": 99}]}).encode()  # fmt: skip
    body = zlib.compress(len(head).to_bytes(4, "big") + head + b"short")
    blob = record_mod.MAGIC + hashlib.sha256(body).digest() + body
    with pytest.raises(SessionRecordCorrupt) as info:
        unpack(blob, source="crafted")
    assert info.value.why == "malformed"
