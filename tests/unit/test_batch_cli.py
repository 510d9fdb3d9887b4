"""``caw batch``: exit codes, result lines, resume, and snapshots of the progress display and the plain lines."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from caw.batches import BatchError, BatchProgress, BatchResult
from caw.cli import app  # not caw.cli.app: importing the submodule first would shadow caw.cli.app, the typer app
from caw.cli.batch import LiveProgress, PlainLog, progress_text, result_line, step_summary, worst_exit_code
from caw.cli.runner import CliContext
from caw.errors import AuthenticationError, TurnFailed, UsageLimitError
from caw.providers.base import TurnRequest
from tests.unit.scripted import ScriptedRunner


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    for var in ("CAW_PROVIDER", "CAW_AUTOWAIT", "CAW_MAX_WAIT", "GITHUB_STEP_SUMMARY", "CI"):
        monkeypatch.delenv(var, raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("claude", "codex", "opencode"):
        exe = bindir / name
        exe.write_text("#!/bin/sh\necho 1.0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    yield


def by_prompt(replies: dict[str, Any]) -> ScriptedRunner:
    def behaviour(request: TurnRequest) -> Any:
        return replies.get(request.prompt, f"answer to {request.prompt}")

    return ScriptedRunner({"codex": [behaviour], "claude": [behaviour]})


def write_tasks(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": p, "prompt": p}) + "\n" for p in prompts))
    return path


def invoke(runner: ScriptedRunner, *args: str) -> Any:
    return CliRunner().invoke(app, ["batch", *args], obj=CliContext(agent_options={"runner": runner}))


def test_worst_failure_class_decides_the_exit_code() -> None:
    assert worst_exit_code([]) == 0
    assert worst_exit_code([75, 124]) == 124
    assert worst_exit_code([75, 1, 4]) == 4
    assert worst_exit_code([2, 130]) == 130
    assert worst_exit_code([99]) == 1  # an unknown code is a failed turn


def test_all_succeed_exit_zero_and_results_go_to_out(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["a", "b", "c"])
    out = tmp_path / "out.jsonl"
    r = invoke(by_prompt({}), str(tasks), "--out", str(out), "-j", "2", "-p", "codex", "--no-wait")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted((x["id"], x["status"], x["result"]) for x in lines) == [
        ("a", "ok", "answer to a"), ("b", "ok", "answer to b"), ("c", "ok", "answer to c"),
    ]  # fmt: skip
    assert "caw batch: 3 tasks, 0 done earlier, 3 to run, concurrency 2" in r.stderr
    assert "caw batch: 3 of 3 succeeded" in r.stderr and "exit 0" in r.stderr


def test_without_out_one_result_line_per_task_on_stdout(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["a", "b"])
    r = invoke(by_prompt({}), str(tasks), "-p", "codex")
    assert r.exit_code == 0, r.stderr
    assert sorted(json.loads(x)["id"] for x in r.stdout.splitlines()) == ["a", "b"]
    assert "nothing was kept" not in r.stderr


def test_failures_exit_with_the_worst_class_and_carry_exit_codes(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["ok", "broken", "limited", "later"])
    out = tmp_path / "out.jsonl"
    replies = {
        "limited": UsageLimitError("codex", "limit", resets_at=datetime.now(timezone.utc) + timedelta(hours=1)),
        "broken": TurnFailed("codex", "model error", kind="invalid_request"),
    }
    runner = by_prompt(replies)
    r = invoke(runner, str(tasks), "--out", str(out), "-j", "1", "-p", "codex", "--no-wait")
    assert r.exit_code == 1, r.stderr
    assert [req.prompt for _, req, _ in runner.calls] == [
        "ok",
        "broken",
        "limited",
    ]  # a failed turn is worse than a limit (75)
    lines = {x["id"]: x for x in map(json.loads, out.read_text().splitlines())}
    assert lines["limited"]["error"]["exit_code"] == 75 and lines["limited"]["error"]["exit_class"] == "rate_limited"
    assert lines["broken"]["error"]["exit_code"] == 1 and lines["broken"]["error"]["type"] == "TurnFailed"
    # one provider, no waiting: the task after the limit fails at once, without a request
    assert (
        lines["later"]["error"]["type"] == "UsageLimitError" and "in this batch" in lines["later"]["error"]["message"]
    )
    assert (
        f"run the failed ones again with: caw batch {tasks} --out {out} -j 1 --provider codex --no-wait --retry-failed"
        in r.stderr
    )


def test_only_limits_exit_75_and_a_rerun_keeps_the_earlier_failures_code(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["a", "b"])
    out = tmp_path / "out.jsonl"
    replies = {"b": AuthenticationError("codex", "bad key")}
    first = invoke(by_prompt(replies), str(tasks), "--out", str(out), "-p", "codex", "-j", "1")
    assert first.exit_code == 4, first.stderr
    again = invoke(by_prompt({}), str(tasks), "--out", str(out), "-p", "codex")
    assert again.exit_code == 4  # nothing ran, but b is still failed
    assert "2 tasks, 2 done earlier, 0 to run" in again.stderr
    fixed = invoke(by_prompt({}), str(tasks), "--out", str(out), "-p", "codex", "--retry-failed")
    assert fixed.exit_code == 0, fixed.stderr
    assert "2 of 2 succeeded" in fixed.stderr


def test_a_bad_tasks_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"prompt": "a"}\nnot json\n')
    r = invoke(by_prompt({}), str(bad))
    assert r.exit_code == 2 and "line 2 is not JSON" in r.stderr
    r = invoke(by_prompt({}), str(tmp_path / "missing.jsonl"))
    assert r.exit_code == 2 and "cannot read" in r.stderr
    r = invoke(by_prompt({}), str(write_tasks(tmp_path / "t.jsonl", ["a"])), "-j", "0")
    assert r.exit_code == 2 and "--concurrency 0" in r.stderr


def test_the_github_step_summary_lists_the_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["a", "b"])
    r = invoke(by_prompt({"b": AuthenticationError("codex", "bad key")}), str(tasks), "-p", "codex", "-j", "1",
               "--out", str(tmp_path / "o.jsonl"))  # fmt: skip
    assert r.exit_code == 4
    text = summary.read_text()
    assert text.startswith("### caw batch: 1/2 succeeded ❌ (exit 4)")
    assert "| b | codex | AuthenticationError: codex: bad key | 4 |" in text


# ---- snapshots (the clock injected) --------------------------------------------------------------------
RESET = datetime(2026, 12, 4, 14, 5, tzinfo=timezone.utc)


def progress() -> BatchProgress:
    return BatchProgress(
        total=12, skipped=2, done=4, failed=1, cost_usd=0.0123, started=100.0,
        running={"t07": "claude", "t08": "codex"}, waiting={"t09": RESET}, limited={"claude": RESET},
    )  # fmt: skip


def ok_result() -> BatchResult:
    return BatchResult(id="t03", ok=True, provider="codex", duration_s=2.14, cost_usd=0.001)


def failed_result() -> BatchResult:
    err = BatchError("UsageLimitError", "codex hit its limit\nresets soon", "rate_limited", "codex", RESET, 75, "x")
    return BatchResult(id="t05", ok=False, error=err, duration_s=0.5)


def test_progress_line_snapshot() -> None:
    assert progress_text(progress(), now=150.0) == (
        "6/12 done (2 earlier) · 2 running · 1 waiting for a limit · 1 failed · $0.0123 · ETA 0:50"
    )
    assert progress_text(BatchProgress(total=3), now=1.0) == "0/3 done · 0 running · 0 failed · $0.0000 · ETA –"


def test_plain_lines_snapshot() -> None:
    buf = io.StringIO()
    log = PlainLog(buf)
    p = progress()
    log.result(ok_result(), p)
    log.result(failed_result(), p)
    log.line("claude is limited until 2026-12-04T14:05:00+00:00: no new task starts on it")
    assert buf.getvalue() == (
        "caw batch: [7/12] ok t03 — codex, 2.1s, $0.0010\n"
        "caw batch: [7/12] failed t05 — UsageLimitError: codex hit its limit resets soon (exit 75)\n"
        "caw batch: claude is limited until 2026-12-04T14:05:00+00:00: no new task starts on it\n"
    )
    assert result_line(ok_result(), p) == "[7/12] ok t03 — codex, 2.1s, $0.0010"


def test_live_progress_snapshot() -> None:
    console = Console(file=io.StringIO(), width=110, record=True, color_system=None, force_terminal=False)
    view = LiveProgress(console, clock=lambda: 150.0)
    console.print(view.renderable(progress()))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert lines == [
        "caw batch ━━━━━━━━━━━╸         6/12 done (2 earlier) · 2 running · 1 waiting for a limit · 1 failed · $0.0123",
        "                               · ETA 0:50",
        "          ▶ running            t07 on claude",
        "          ▶ running            t08 on codex",
        "          ⏸ waiting            t09 until 14:05:00Z",
        "          ⚠ limited            claude until 14:05:00Z",
    ]


def test_step_summary_snapshot() -> None:
    text = step_summary(progress(), 75, [failed_result()], "caw batch t.jsonl --out o.jsonl")
    assert text == (
        "### caw batch: 6/12 succeeded ❌ (exit 75)\n\n| | |\n|---|---|\n| Done | 6 (2 earlier) |\n"
        "| Failed | 1 |\n| Cost | $0.0123 |\n| Resume | `caw batch t.jsonl --out o.jsonl` |\n\n"
        "| task | provider | error | exit |\n|---|---|---|---|\n"
        "| t05 |  | UsageLimitError: codex hit its limit resets soon | 75 |\n\n"
    )


def test_a_limit_with_max_wait_waits_and_every_task_succeeds(tmp_path: Path) -> None:
    import threading

    now = [datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)]
    lock = threading.Lock()

    def clock() -> datetime:
        with lock:
            return now[0]

    def sleeper(seconds: float, cancel: threading.Event) -> bool:
        with lock:
            now[0] += timedelta(seconds=seconds)
        return cancel.is_set()

    limit = UsageLimitError("codex", "limit", resets_at=now[0] + timedelta(minutes=10), kind="session")
    runner = ScriptedRunner({"codex": [limit, "fine"]})
    tasks = write_tasks(tmp_path / "tasks.jsonl", ["a", "b", "c"])
    context = CliContext(agent_options={"runner": runner, "clock": clock, "sleeper": sleeper})
    r = CliRunner().invoke(
        app, ["batch", str(tasks), "-p", "codex", "-j", "2", "--max-wait", "1h", "--out", str(tmp_path / "o.jsonl")],
        obj=context,
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "caw batch: codex is limited until 2026-12-04T12:10:00+00:00: no new task starts on it" in r.stderr
    assert "caw batch: codex usage limit" in r.stderr  # the session's own wait line, as a batch line
    assert "3 of 3 succeeded" in r.stderr
