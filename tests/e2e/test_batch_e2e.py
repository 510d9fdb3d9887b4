"""``caw batch`` / ``caw.batch`` with the real CLIs on the loopback fakes (issue 20).

Concurrency is checked by counting the CLIs' processes (sampled on a thread), failover by counting the
requests that reached the limited provider's fake, resume by interrupting a ``caw batch`` subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import caw
from tests.e2e.harness import HARNESSES, LiveFactory, Multi, live_factory, load_harnesses, start_multi, wait_until
from tests.fakes.env import CLIS_DIR
from tests.fakes.replies import Echo, Hang

load_harnesses()


def cli_roots(where: Path) -> list[int]:
    """Live agent CLIs working under ``where``: processes run from the pinned CLIs' directory whose working
    directory is inside ``where`` (other tests run CLIs too) and whose parent is not one of them (a CLI's
    own helpers, e.g. codex's launcher and its native binary, count once)."""
    mine: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if str(CLIS_DIR) in cmd and fields[0] != b"Z" and cwd.startswith(str(where)):
            mine[int(entry)] = int(fields[1])
    return [pid for pid, parent in mine.items() if parent not in mine]


class Sampler:
    """The most CLIs alive at once, sampled every 20 ms while the batch runs (there is no clock to inject)."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, len(cli_roots(self.where)))
            self._stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("codex", tmp_path, monkeypatch)


def test_twelve_tasks_at_concurrency_three_never_more_than_three_clis(codex: LiveFactory) -> None:
    live = codex()
    tasks = [{"id": f"t{n:02d}", "prompt": f"task number {n:02d}"} for n in range(12)]
    with Sampler(live.root) as sampler:
        results = list(caw.batch(tasks, agent=live.agent(auto_wait=False), concurrency=3))
    assert 2 <= sampler.peak <= 3, sampler.peak
    assert sorted(r.id for r in results) == [t["id"] for t in tasks]
    for r in results:
        assert r.ok and r.provider == "codex", r.error
        assert f"last=task number {r.id[1:]}" in (r.result or "")
    assert len(live.server.model_requests) == 12
    assert cli_roots(live.root) == []


@pytest.fixture
def claude_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Multi]:
    m = start_multi(["claude", "codex"], tmp_path, monkeypatch, flags={"claude": {"oauth": True}})
    yield m
    for s in m.servers.values():
        s.stop()


def test_a_provider_limited_mid_batch_gets_no_more_requests(claude_codex: Multi) -> None:
    claude, codex = claude_codex.servers["claude"], claude_codex.servers["codex"]
    limited = HARNESSES["claude"].rate_limited
    assert limited is not None
    reset = int(time.time()) + 3600
    claude.enqueue(Echo(), Echo(), Echo(), *[limited(reset) for _ in range(3)])
    agent = caw.Agent(
        provider=["claude", "codex"], cwd=str(claude_codex.work), auto_wait=False, timeout=120,
        models={"codex": HARNESSES["codex"].agent_kwargs["model"]},
    )  # fmt: skip
    results = list(caw.batch([f"job {n}" for n in range(8)], agent=agent, concurrency=2))
    assert all(r.ok for r in results), [r.error for r in results]
    on_claude = [r for r in results if r.provider == "claude"]
    found_out = [r for r in results if any(a.reason == "rate_limited" for a in r.attempts)]
    skipped = [r for r in results if r.attempts and r.attempts[0].reason == "cooldown"]
    assert len(on_claude) == 3 and 1 <= len(found_out) <= 2  # at most the tasks in flight when it hit
    assert len(skipped) == 8 - 3 - len(found_out)  # every later task: straight to codex, no request to claude
    assert len(claude.model_requests) == len(on_claude) + len(found_out)
    assert len(codex.model_requests) == 8 - len(on_claude)


def test_a_provider_limited_from_the_start_is_asked_once_not_once_per_slot(claude_codex: Multi) -> None:
    claude, codex = claude_codex.servers["claude"], claude_codex.servers["codex"]
    limited = HARNESSES["claude"].rate_limited
    assert limited is not None
    claude.enqueue(*[limited(int(time.time()) + 3600) for _ in range(3)])
    agent = caw.Agent(
        provider=["claude", "codex"], cwd=str(claude_codex.work), auto_wait=False, timeout=120,
        models={"codex": HARNESSES["codex"].agent_kwargs["model"]},
    )  # fmt: skip
    results = list(caw.batch([f"job {n}" for n in range(6)], agent=agent, concurrency=3))
    assert all(r.ok and r.provider == "codex" for r in results), [r.error for r in results]
    assert len(claude.model_requests) == 1  # the probe found the limit; the other five never asked
    assert len(codex.model_requests) == 6


@pytest.fixture
def claude_oauth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("claude", tmp_path, monkeypatch)


def test_one_provider_limited_waits_for_the_reset_without_requests_then_finishes(claude_oauth: LiveFactory) -> None:
    live = claude_oauth(oauth=True)  # the subscription path reports resetsAt and does not retry
    limited = HARNESSES["claude"].rate_limited
    assert limited is not None
    reset = time.time() + 4
    live.server.enqueue(limited(int(reset) + 1))
    agent = live.agent(wait_buffer=0, max_wait=60)
    results = list(caw.batch([f"job {n}" for n in range(3)], agent=agent, concurrency=2))
    assert all(r.ok and r.provider == "claude" for r in results), [r.error for r in results]
    times = sorted(r.t for r in live.server.model_requests)
    assert len(times) == 4  # the limited one, its own retry, and the other two once each
    assert all(t >= int(reset) + 1 - 0.5 for t in times[1:])  # nobody asked while it was limited


def _batch_cmd(tasks: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "caw", "batch", str(tasks), "--out", str(out), "-j", "2", "--provider", "codex",
            "--model", HARNESSES["codex"].agent_kwargs["model"], "--no-wait"]  # fmt: skip


def test_an_interrupted_batch_resumes_and_runs_only_what_was_left(codex: LiveFactory, tmp_path: Path) -> None:
    live = codex()
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": f"j{n}", "prompt": f"job {n}"}) + "\n" for n in range(6)))
    out = tmp_path / "results.jsonl"
    live.server.enqueue(Echo(), Echo(), Hang(60), Hang(60))
    env = {**live.env, "CAW_DATA_DIR": str(live.root / "caw-data")}
    proc = subprocess.Popen(_batch_cmd(tasks, out), env=env, cwd=live.work, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 2, 60, "two results")
        wait_until(lambda: len(live.server.model_requests) == 4, 60, "two tasks hanging at the fake")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "resume with: caw batch" in stderr and str(out) in stderr
    assert cli_roots(live.root) == []  # the cancelled turns' CLIs are gone
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(first) == 2 and all(line["status"] == "ok" for line in first)
    again = subprocess.run(_batch_cmd(tasks, out), env=env, cwd=live.work, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "6 tasks, 2 done earlier, 4 to run" in again.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == [f"j{n}" for n in range(6)]  # nothing ran twice
    assert len(live.server.model_requests) == 4 + 4
    assert "6 of 6 succeeded" in again.stderr and "exit 0" in again.stderr


def test_sigterm_stops_a_batch_like_ctrl_c(codex: LiveFactory, tmp_path: Path) -> None:
    live = codex()
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(f"job {n}") + "\n" for n in range(4)))
    out = tmp_path / "results.jsonl"
    live.server.enqueue(Echo(), Hang(60), Hang(60))
    env = {**live.env, "CAW_DATA_DIR": str(live.root / "caw-data")}
    proc = subprocess.Popen(_batch_cmd(tasks, out), env=env, cwd=live.work, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_until(lambda: len(live.server.model_requests) == 3, 60, "two tasks hanging at the fake")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert cli_roots(live.root) == []
    (line,) = out.read_text().splitlines()
    assert json.loads(line)["status"] == "ok" and "1 of 4 succeeded, 3 not run" in stderr
