"""``caw.batch``: scheduling, limits shared inside the batch, the results file and resume (scripted runner)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
from collections.abc import Generator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import caw
from caw.batches import BatchProgress, BatchTask, ResultsFile, _Limits, load_tasks
from caw.errors import AuthenticationError, ConfigurationError, ProviderUnavailable, TurnCancelled, UsageLimitError
from caw.events import Event, RetryEvent, TextEvent
from caw.models import Turn
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session.turn import TurnControl
from tests.unit.scripted import ScriptedRunner

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    for var in ("CAW_PROVIDER", "CAW_AUTOWAIT", "CAW_MAX_WAIT"):
        monkeypatch.delenv(var, raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("claude", "codex", "opencode"):
        exe = bindir / name
        exe.write_text("#!/bin/sh\necho 1.0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    yield


class FakeTime:
    """The batch's aware-UTC clock and its sleeper: sleeping moves the clock, nothing really waits."""

    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> datetime:
        with self._lock:
            return self.now

    def sleeper(self, seconds: float, cancel: threading.Event) -> bool:
        with self._lock:
            self.slept.append(seconds)
            self.now += timedelta(seconds=seconds)
        return cancel.is_set()


def echo(request: TurnRequest) -> str:
    return f"answer to {request.prompt}"


def run_all(tasks: list[Any], agent: caw.Agent, **kw: Any) -> list[caw.BatchResult]:
    return list(caw.batch(tasks, agent=agent, **kw))


def test_twelve_tasks_at_concurrency_three_never_run_more_than_three_at_once() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)  # three at a time must be possible: else the barrier breaks

    def runner(provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest,
               **kw: Any) -> Generator[Event, None, Turn]:  # fmt: skip
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            yield TextEvent(provider=provider.name, text="working")  # the first answer opens the provider
            barrier.wait()
            turn = yield from ScriptedRunner({provider.name: [echo]})(provider, binary, config, request, **kw)
        finally:
            with lock:
                active -= 1
        return turn

    agent = caw.Agent(provider="codex", runner=runner)
    results = run_all([f"task {n}" for n in range(12)], agent, concurrency=3)
    assert peak == 3
    assert sorted(r.result or "" for r in results) == sorted(f"answer to task {n}" for n in range(12))
    assert all(r.ok and r.provider == "codex" and r.error is None for r in results)


def test_task_dicts_carry_id_model_and_cwd(tmp_path: Path) -> None:
    runner = ScriptedRunner({"codex": [echo]})
    (tmp_path / "sub").mkdir()
    tasks = [{"id": "a", "prompt": "one", "model": "m1", "cwd": str(tmp_path / "sub")}, "two"]
    results = {r.id: r for r in run_all(tasks, caw.Agent(provider="codex", runner=runner), concurrency=1)}
    assert set(results) == {"a", BatchTask.of("two", 1).key}
    configs = {req.prompt: cfg for _, req, cfg in runner.calls}
    assert configs["one"].model == "m1" and configs["one"].cwd == str((tmp_path / "sub").resolve())


def test_task_keys_hash_when_there_is_no_id_and_refuse_a_repeated_id() -> None:
    a, b = load_tasks(["same", "same"])
    assert a.key.startswith("sha256:") and b.key == a.key + "~2"
    with pytest.raises(ConfigurationError, match="used twice"):
        load_tasks([{"id": "x", "prompt": "p"}, {"id": "x", "prompt": "q"}])
    with pytest.raises(ConfigurationError, match="unknown key"):
        load_tasks([{"prompt": "p", "colour": "red"}])
    with pytest.raises(ConfigurationError, match="prompt"):
        load_tasks([{"id": "x"}])


def test_a_missing_task_cwd_fails_that_task_only(tmp_path: Path) -> None:
    runner = ScriptedRunner({"codex": [echo]})
    tasks = [{"id": "bad", "prompt": "p", "cwd": str(tmp_path / "nope")}, {"id": "good", "prompt": "q"}]
    results = {r.id: r for r in run_all(tasks, caw.Agent(provider="codex", runner=runner), concurrency=2)}
    assert results["good"].ok
    bad = results["bad"]
    assert not bad.ok and bad.error is not None
    assert (bad.error.type, bad.error.reason) == ("ConfigurationError", "configuration")


def test_a_limit_seen_by_one_task_sends_later_tasks_to_the_next_provider_without_a_request() -> None:
    resets = datetime.now(timezone.utc) + timedelta(hours=1)
    runner = ScriptedRunner({"claude": [UsageLimitError("claude", "limit", resets_at=resets, kind="session")],
                             "codex": [echo]})  # fmt: skip
    agent = caw.Agent(provider=["claude", "codex"], runner=runner, auto_wait=False)
    results = run_all([f"t{n}" for n in range(6)], agent, concurrency=3)
    assert runner.providers_called().count("claude") == 1  # the probe; nobody else asked claude
    assert all(r.ok and r.provider == "codex" for r in results)
    reasons = sorted(tuple(a.reason for a in r.attempts) for r in results)
    assert reasons[-1] == ("rate_limited", "answered")  # the task that found out
    assert reasons[:-1] == [("cooldown", "answered")] * 5  # the others: skipped by the batch, no request


def test_a_limit_without_a_reset_time_is_shared_too() -> None:
    runner = ScriptedRunner({"claude": [UsageLimitError("claude", "limit")], "codex": [echo]})
    agent = caw.Agent(provider=["claude", "codex"], runner=runner, auto_wait=False)
    run_all([f"t{n}" for n in range(4)], agent, concurrency=2)
    assert runner.providers_called().count("claude") == 1


def test_one_provider_limited_without_auto_wait_fails_the_rest_without_requests() -> None:
    resets = NOW + timedelta(hours=1)
    runner = ScriptedRunner({"codex": [UsageLimitError("codex", "limit", resets_at=resets)]})
    t = FakeTime()
    agent = caw.Agent(provider="codex", runner=runner, auto_wait=False)
    results = run_all(["a", "b", "c"], agent, concurrency=2, clock=t.clock, sleeper=t.sleeper)
    assert len(runner.calls) == 1
    assert [r.error.type for r in results if r.error] == ["UsageLimitError"] * 3
    assert t.slept == []


def test_one_provider_limited_with_auto_wait_holds_starts_then_restarts_staggered() -> None:
    t = FakeTime()
    resets = NOW + timedelta(minutes=30)
    behaviours: list[Any] = [UsageLimitError("codex", "limit", resets_at=resets, kind="session")]
    runner = ScriptedRunner({"codex": [*behaviours, echo]})
    own = FakeTime()  # the limited task's own session waits too (the Agent's policy); the others wait in the batch
    agent = caw.Agent(provider="codex", runner=runner, clock=own.clock, sleeper=own.sleeper, wait_output=lambda s: None)
    results = run_all([f"t{n}" for n in range(4)], agent, concurrency=4, seed=7, stagger=2.0, clock=t.clock,
                      sleeper=t.sleeper)  # fmt: skip
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(runner.calls) == 5  # the limited try, its retry, and the three others once each
    # the others waited in the batch until the reset (+ the Agent's buffer), not in a request each
    assert t.slept[0] == 30 * 60 + 120


def test_after_a_reset_one_task_probes_then_the_starts_are_staggered_with_jitter() -> None:
    t = FakeTime()
    limits = _Limits(
        clock=t.clock, sleeper=t.sleeper, stop=threading.Event(), stagger=2.0, rng=random.Random(1),
        concurrency=4, progress=BatchProgress(), lock=threading.Lock(), notice=lambda line: None,
    )  # fmt: skip
    limits.limited("codex", NOW + timedelta(minutes=10))
    with pytest.raises(UsageLimitError, match="limited in this batch"):
        limits.admit("a", ("codex",), can_wait=False, max_wait=0)
    usable, skips = limits.admit("a", ("claude", "codex"), can_wait=False, max_wait=0)
    assert usable == ["claude"] and [(s.provider, s.reason) for s in skips] == [("codex", "cooldown")]
    limits.answered("claude")
    assert limits.admit("b", ("codex",), can_wait=True, max_wait=3600) == (["codex"], [])  # the probe
    assert t.slept == [600.0] and limits.gates["codex"].probing == "b"
    limits.answered("codex")
    starts = []
    for key in "cde":
        limits.admit(key, ("codex",), can_wait=True, max_wait=3600)
        starts.append((t.now - NOW).total_seconds() - 600)
    gaps = [b - a for a, b in itertools.pairwise([0.0, *starts])]  # the probe started at 0
    assert all(2.0 <= g <= 3.0 for g in gaps) and len(set(gaps)) == 3  # stagger + jitter
    assert limits.admit("f", ("codex",), can_wait=True, max_wait=3600) == (["codex"], [])  # staggering is over


def test_results_file_resume_skips_finished_and_retry_failed_reruns_failures(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    first = ScriptedRunner({"codex": [AuthenticationError("codex", "bad key"), echo]})
    agent = caw.Agent(provider="codex", runner=first)
    results = run_all([{"id": "a", "prompt": "A"}, {"id": "b", "prompt": "B"}], agent, concurrency=1, results=out)
    assert [r.ok for r in results] == [False, True]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(ln["id"], ln["status"]) for ln in lines] == [("a", "failed"), ("b", "ok")]
    assert lines[0]["error"]["type"] == "AuthenticationError" and lines[0]["error"]["reason"] == "auth"
    again = ScriptedRunner({"codex": [echo]})
    tasks = [{"id": "a", "prompt": "A"}, {"id": "b", "prompt": "B"}, {"id": "c", "prompt": "C"}]
    b = caw.batch(tasks, agent=caw.Agent(provider="codex", runner=again), concurrency=2, results=out)
    assert [r.id for r in b] == ["c"] and {r.id for r in b.previous} == {"a", "b"}
    retry = ScriptedRunner({"codex": [echo]})
    agent = caw.Agent(provider="codex", runner=retry)
    assert [r.id for r in caw.batch(tasks, agent=agent, results=out, retry_failed=True)] == ["a"]
    assert [req.prompt for _, req, _ in retry.calls] == ["A"]


def test_a_torn_last_line_is_cut_off_and_that_task_runs_again(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    out.write_text(json.dumps({"id": "a", "status": "ok"}) + "\n" + '{"id": "b", "stat')
    results = ResultsFile(out).open()
    assert results.repaired and set(results.previous) == {"a"}
    results.close()
    assert out.read_text().endswith("}\n")
    runner = ScriptedRunner({"codex": [echo]})
    tasks = [{"id": "a", "prompt": "A"}, {"id": "b", "prompt": "B"}]
    assert [r.id for r in caw.batch(tasks, agent=caw.Agent(provider="codex", runner=runner), results=out)] == ["b"]
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "b"]


def test_a_results_file_in_use_by_another_batch_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    held = ResultsFile(out).open()
    try:
        with pytest.raises(ConfigurationError, match="in use"):
            caw.batch(["x"], agent=caw.Agent(provider="codex", runner=ScriptedRunner({})), results=out)
    finally:
        held.close()


def test_leaving_the_loop_early_cancels_the_rest_and_writes_only_what_finished(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    cancelled_turns: list[str] = []

    def runner(provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, *,
               control: TurnControl | None = None, **kw: Any) -> Generator[Event, None, Turn]:  # fmt: skip
        if request.prompt != "t0":  # every later task runs until it is cancelled
            assert control is not None
            yield TextEvent(provider=provider.name, text="working")
            assert control.cancelled.wait(10), "the batch never cancelled the running turn"
            cancelled_turns.append(request.prompt)
            raise TurnCancelled("cancelled", turn=Turn(input=request.prompt, provider=provider.name))
        turn = yield from ScriptedRunner({"codex": [echo]})(provider, binary, config, request, control=control, **kw)
        return turn

    b = caw.batch([f"t{n}" for n in range(10)], agent=caw.Agent(provider="codex", runner=runner), concurrency=2,
                  results=out)  # fmt: skip
    first = next(iter(b))
    b.close()  # what leaving a for loop early does, when the iterator is collected
    assert first.id == BatchTask.of("t0", 0).key and b.stopped
    # what was started then (t1, and t2 if the freed slot took it) was cancelled, in its turn or before it;
    # a turn that was not cancelled would fail its runner's assert and be written as failed
    later = {BatchTask.of(f"t{n}", n).key for n in (1, 2)}
    running = {BatchTask.of(p, 0).key for p in cancelled_turns}
    assert set(b.cancelled) and set(b.cancelled) <= later and running <= set(b.cancelled)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [first.id]  # only what finished


def test_abatch_yields_the_same_results() -> None:
    async def main() -> list[caw.BatchResult]:
        agent = caw.Agent(provider="codex", runner=ScriptedRunner({"codex": [echo]}))
        return [r async for r in caw.abatch(["x", "y", "z"], agent=agent, concurrency=2)]

    results = asyncio.run(main())
    assert sorted(r.result or "" for r in results) == ["answer to x", "answer to y", "answer to z"]


def test_result_lines_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    agent = caw.Agent(provider="codex", runner=ScriptedRunner({"codex": [echo]}))
    (result,) = run_all([{"id": "a", "prompt": "A"}], agent, results=out)
    line = json.loads(out.read_text())
    back = caw.BatchResult.from_json(line)
    assert (back.id, back.ok, back.provider, back.result) == ("a", True, "codex", "answer to A")
    assert back.trajectory is not None and back.trajectory.result == result.result


def test_a_limit_the_ledger_remembers_from_an_earlier_run_costs_no_request() -> None:
    from caw.state.ledger import CooldownStore

    CooldownStore.default().set("codex", datetime.now(timezone.utc) + timedelta(hours=1), kind="session")
    runner = ScriptedRunner({"codex": [echo], "claude": [echo]})
    alone = run_all(["a", "b"], caw.Agent(provider="codex", runner=runner, auto_wait=False), concurrency=2)
    assert runner.calls == [] and [r.error.reason for r in alone if r.error] == ["rate_limited"] * 2
    both = run_all(["a", "b"], caw.Agent(provider=["codex", "claude"], runner=runner, auto_wait=False))
    assert runner.providers_called() == ["claude", "claude"] and all(r.provider == "claude" for r in both)


def test_a_probe_that_fails_for_another_reason_opens_the_provider_and_a_slow_one_stops_holding() -> None:
    t = FakeTime()
    limits = _Limits(
        clock=t.clock, sleeper=t.sleeper, stop=threading.Event(), stagger=2.0, rng=random.Random(1),
        concurrency=3, progress=BatchProgress(), lock=threading.Lock(), notice=lambda line: None,
    )  # fmt: skip
    assert limits.admit("a", ("claude", "codex"), can_wait=False, max_wait=0)[0] == ["claude", "codex"]
    limits.failed("claude", "a")  # e.g. logged out: not a limit, so nobody is held back from trying it
    assert limits.gates["claude"].open
    limits.admit("b", ("codex",), can_wait=False, max_wait=0)  # b probes codex
    limits.probe_patience = 0.0  # b's first answer is slow
    assert limits.admit("c", ("codex",), can_wait=False, max_wait=0) == (["codex"], [])
    assert limits.gates["codex"].open and t.slept == []


def _retrying_429(then: BaseException | None):  # type: ignore[no-untyped-def]
    """A runner whose claude turns retry an HTTP 429 first, then fail with ``then`` (or answer)."""
    scripted = ScriptedRunner({"codex": [echo], "claude": [echo]})

    def runner(provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest,
               **kw: Any) -> Generator[Event, None, Turn]:  # fmt: skip
        scripted.calls.append((provider.name, request, config))
        if provider.name == "claude":
            yield RetryEvent(provider="claude", attempt=1, max_retries=10, status=429, message="rate limited")
            if then is not None:
                raise then
        inner = ScriptedRunner({provider.name: [echo]})
        return (yield from inner(provider, binary, config, request, **kw))

    return runner, scripted


def test_http_429s_the_cli_keeps_retrying_pause_the_provider_for_the_others() -> None:
    runner, seen = _retrying_429(ProviderUnavailable("claude", "retried for 5 minutes"))
    agent = caw.Agent(provider=["claude", "codex"], runner=runner, auto_wait=False)
    results = run_all([f"t{n}" for n in range(5)], agent, concurrency=2)
    assert seen.providers_called().count("claude") == 1 and all(r.provider == "codex" for r in results)


def test_a_429_that_a_retry_gets_past_lifts_the_pause() -> None:
    runner, seen = _retrying_429(None)
    agent = caw.Agent(provider=["claude", "codex"], runner=runner, auto_wait=False)
    results = run_all([f"t{n}" for n in range(4)], agent, concurrency=2)
    assert all(r.provider == "claude" for r in results) and seen.providers_called().count("codex") == 0


def test_a_429_on_the_only_provider_holds_starts_without_failing_them() -> None:
    runner, seen = _retrying_429(None)
    agent = caw.Agent(provider="claude", runner=runner, auto_wait=False)
    results = run_all([f"t{n}" for n in range(3)], agent, concurrency=3)
    assert all(r.ok and r.provider == "claude" for r in results) and len(seen.calls) == 3


def test_a_task_output_schema_reaches_the_turn_and_its_parsed_answer_the_result(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    runner = ScriptedRunner({"codex": ['{"n": 7}']})
    out = tmp_path / "r.jsonl"
    (r,) = run_all([{"id": "a", "prompt": "count", "output": schema, "max_turns": 3}],
                   caw.Agent(provider="codex", runner=runner), results=out)  # fmt: skip
    assert r.ok and r.parsed == {"n": 7}, r.error
    assert runner.calls[0][1].output_schema is not None
    assert json.loads(out.read_text())["parsed"] == {"n": 7}
