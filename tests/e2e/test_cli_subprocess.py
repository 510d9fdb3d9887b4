"""The installed `caw` command as a CI job runs it: real subprocesses, the real `claude` on the loopback fake.

One test per exit code of the contract (docs/ci.md), plus JSONL validated line by line, stdin and huge
file prompts reaching the model verbatim, and the GitHub step summary / outputs files.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from caw.events import EVENT_ADAPTER, CawSessionEvent, ErrorEvent, ResultEvent, SessionStarted, TextEvent
from tests.e2e.harness import wait_until
from tests.fakes.anthropic import AnthropicFake
from tests.fakes.env import claude_env, full_env
from tests.fakes.replies import Hang, Text, anthropic_rate_limited, auth_error

CAW_SCRIPT = Path(sys.executable).with_name("caw")
RUN_TIMEOUT = 90


@dataclass
class Job:
    """A CI-style job: a fake model server, claude's offline env, a work dir, GitHub's output files."""

    server: AnthropicFake
    root: Path
    work: Path
    env: dict[str, str]

    @property
    def summary(self) -> Path:
        return self.root / "step_summary.md"

    @property
    def outputs(self) -> Path:
        return self.root / "github_output.txt"

    def argv(self, *args: str, script: bool = False) -> list[str]:
        return [str(CAW_SCRIPT), *args] if script else [sys.executable, "-m", "caw", *args]

    def caw(
        self, *args: str, input: str | None = None, extra_env: dict[str, str] | None = None, script: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args, script=script),
            input=input if input is not None else "",
            env={**self.env, **(extra_env or {})},
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    def outputs_dict(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.outputs.read_text().splitlines())


def _job(tmp_path: Path, *, oauth: bool = False) -> Iterator[Job]:
    with AnthropicFake() as server:
        root = tmp_path / "job"
        work = root / "work"
        work.mkdir(parents=True)
        env = full_env(claude_env(server.url, root, oauth=oauth))
        env.update(
            {
                "CAW_PROVIDER": "claude",
                "CAW_DATA_DIR": str(root / "caw-data"),
                "GITHUB_STEP_SUMMARY": str(root / "step_summary.md"),
                "GITHUB_OUTPUT": str(root / "github_output.txt"),
            }
        )
        yield Job(server, root, work, env)


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    yield from _job(tmp_path)


@pytest.fixture
def oauth_job(tmp_path: Path) -> Iterator[Job]:
    yield from _job(tmp_path, oauth=True)


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("caw: error: ")]


def test_exit_0_prints_the_answer_and_writes_github_files(job: Job) -> None:
    job.server.enqueue(Text("The answer is 42."))
    r = job.caw("run", "What is the answer?", "--save", str(job.root / "traj.json"), script=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "The answer is 42.\n"
    assert job.server.count_occurrences("What is the answer?") == 1
    handle = job.outputs_dict()["resume_handle"]
    assert handle.startswith("caw1_") and f"caw: resume with: caw resume {handle}" in r.stderr
    assert job.outputs_dict()["provider"] == "claude" and job.outputs_dict()["exit_code"] == "0"
    summary = job.summary.read_text()
    assert "claude answered" in summary and "The answer is 42." in summary and handle in summary
    # the saved trajectory renders
    shown = job.caw("traj", "show", str(job.root / "traj.json"))
    assert shown.returncode == 0, shown.stderr
    assert "turn 1 · completed" in shown.stdout and "What is the answer?" in shown.stdout


def test_exit_2_usage_error_sends_nothing(job: Job) -> None:
    r = job.caw("run", "--max-wait", "forever", "hello")
    assert r.returncode == 2
    (line,) = _error_lines(r.stderr)
    assert line.startswith("caw: error: --max-wait 'forever'") and " — use e.g. 30s, 10m, 6h or 1h30m" in line
    assert job.server.model_requests == []


def test_exit_3_provider_not_installed(job: Job) -> None:
    r = job.caw("run", "hello", extra_env={"CAW_CLAUDE_BIN": "/nonexistent/claude"})
    assert r.returncode == 3, r.stderr
    (line,) = _error_lines(r.stderr)
    # the variable is named as the thing that is wrong, not a command missing from PATH
    assert "CAW_CLAUDE_BIN=/nonexistent/claude is not an executable file" in line and "not found" not in line
    assert "Traceback" not in r.stderr
    assert job.outputs_dict()["exit_code"] == "3"
    assert "exit 3" in job.summary.read_text()


def test_exit_4_authentication(job: Job) -> None:
    job.server.enqueue(auth_error())
    r = job.caw("run", "hello")
    assert r.returncode == 4, r.stderr
    (line,) = _error_lines(r.stderr)
    assert "claude could not authenticate" in line and "claude /login" in line and "ANTHROPIC_API_KEY" in line


def test_exit_75_usage_limit_with_no_wait(oauth_job: Job) -> None:
    job = oauth_job
    reset = int(time.time()) + 3 * 3600
    job.server.enqueue(anthropic_rate_limited(reset))
    r = job.caw("run", "limited request", "--no-wait")
    assert r.returncode == 75, r.stderr
    (line,) = _error_lines(r.stderr)
    reset_utc = time.strftime("%H:%M", time.gmtime(reset))
    assert re.search(r"claude hit its (session|weekly|usage|rate) limit", line), line
    assert f"{reset_utc} UTC" in line
    outputs = job.outputs_dict()
    assert outputs["exit_code"] == "75" and outputs["resume_handle"].startswith("caw1_")
    assert f"caw resume {outputs['resume_handle']}" in line
    summary = job.summary.read_text()
    assert "exit 75" in summary and "Limit resets" in summary and reset_utc in summary


def test_exit_124_timeout(job: Job) -> None:
    job.server.enqueue(Hang(60))
    started = time.monotonic()
    r = job.caw("run", "hello", "--timeout", "3s")
    assert r.returncode == 124, r.stderr
    assert time.monotonic() - started < 30
    (line,) = _error_lines(r.stderr)
    assert "did not finish the turn within 3s" in line and "--timeout" in line


def test_exit_130_on_sigint_mid_turn(job: Job) -> None:
    job.server.enqueue(Hang(60))
    proc = subprocess.Popen(
        job.argv("run", "hello"),
        env=job.env,
        cwd=job.work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: job.server.model_requests, 60, "claude's request to reach the fake")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    (line,) = _error_lines(stderr)
    assert line.startswith("caw: error: interrupted") and "caw resume caw1_" in line


def test_jsonl_lines_validate_one_by_one(job: Job) -> None:
    job.server.enqueue(Text("streamed answer"))
    r = job.caw("run", "--jsonl", "hello")
    assert r.returncode == 0, r.stderr
    events = [EVENT_ADAPTER.validate_json(line) for line in r.stdout.splitlines()]
    assert isinstance(events[0], SessionStarted)
    assert any(isinstance(e, TextEvent) and "streamed answer" in e.text for e in events)
    assert isinstance(events[-2], ResultEvent)
    assert isinstance(events[-1], CawSessionEvent) and events[-1].resume_handle  # caw's own closing line


def test_jsonl_failure_ends_with_an_error_event(job: Job) -> None:
    r = job.caw("run", "--jsonl", "hello", extra_env={"CAW_CLAUDE_BIN": "/nonexistent/claude"})
    assert r.returncode == 3
    last = EVENT_ADAPTER.validate_json(r.stdout.splitlines()[-2])  # the last line is caw's caw_session
    assert isinstance(last, ErrorEvent) and last.fatal


def test_stdin_prompt_reaches_the_model(job: Job) -> None:
    prompt = "--looks like a flag\nbut it is the prompt"
    r = job.caw("run", "-", input=prompt)
    assert r.returncode == 0, r.stderr
    assert job.server.count_occurrences(prompt) == 1
    assert r.stdout.startswith("ECHO ")  # the fake's default reply


def test_one_megabyte_prompt_from_a_file_arrives_verbatim(job: Job) -> None:
    line = "-- ünïcode line with `quotes` and $VARS\n"
    prompt = line * (1024 * 1024 // len(line.encode()) + 1)
    assert len(prompt.encode()) > 1024 * 1024
    path = job.root / "prompt.txt"
    path.write_text(prompt, encoding="utf-8")
    r = job.caw("run", "--file", str(path), "--json")
    assert r.returncode == 0, r.stderr
    (request,) = job.server.model_requests
    assert request.body is not None and job.server.last_user_text(request.body) == prompt
    assert json.loads(r.stdout)["turns"][0]["input"] == prompt


def test_resume_from_another_directory_continues_the_conversation(job: Job, tmp_path: Path) -> None:
    job.server.enqueue(Text("first answer"))
    first = job.caw("run", "remember the word pelican", "--json")
    assert first.returncode == 0, first.stderr
    handle = json.loads(first.stdout)["resume_handle"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    job.server.enqueue(Text("pelican"))
    r = subprocess.run(
        job.argv("resume", handle, "which word?"),
        env=job.env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        input="",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "pelican\n"
    assert job.server.count_occurrences("remember the word pelican", anywhere=True) == 2
    listed = job.caw("sessions", "--json")
    assert [s["turns"] for s in json.loads(listed.stdout)] == [2]


def test_python_dash_m_caw_and_doctor(job: Job) -> None:
    r = job.caw("doctor", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    claude = next(p for p in doc["providers"] if p["provider"] == "claude")
    assert claude["installed"] is True and doc["usable"] is True
    missing = job.caw("doctor", "--json", extra_env={"CAW_CLAUDE_BIN": "/nonexistent/claude"})
    assert missing.returncode == 3
