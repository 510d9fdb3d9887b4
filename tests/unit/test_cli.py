"""The `caw` command with typer's CliRunner: argument parsing, output modes, the exit-code contract.

The commands run the real Agent and Session; only the turn runner is scripted (``Script``, handed to the app
through its public seam, ``CliContext(agent_options={"runner": ...})``): it yields events, then returns a
turn or raises an error, so no process is started. Limit waits run on the script's clock, so nothing
sleeps. Sessions land in a temp data dir (``CAW_DATA_DIR``), where the tests read what the CLI kept.
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console
from typer.testing import CliRunner
from typer.testing import Result as CliResult

import caw
from caw import cli
from caw.cli import CliContext, ExitCode, Failure, app, ci, failure_for, parse_tools
from caw.cli.args import RunArgs
from caw.cli.live import LiveView
from caw.cli.reports import render_trajectory, steps
from caw.cli.views import Outcome
from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
    CawTimeoutError,
    ContextOverflowError,
    ConversationNotFound,
    IdleTimeout,
    ProviderCrashed,
    ProviderError,
    ProviderNotInstalled,
    TurnCancelled,
    TurnFailed,
    TurnTimeout,
    UsageLimitError,
)
from caw.events import (
    EVENT_ADAPTER,
    ErrorEvent,
    Event,
    LimitWaitEvent,
    ResultEvent,
    SessionStarted,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
    event_json_schema,
)
from caw.models import Attempt, TextBlock, ToolGroup, ToolUse, Trajectory, Turn, UsageStats
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session.turn import TurnControl, TurnOptions
from caw.state.handle import ResumeHandle, encode
from caw.state.store import SessionStore, list_sessions

HANDLE = "caw1_TESTHANDLE"  # for the renderers, which take a handle as given
RESET = datetime(2026, 11, 22, 17, 0, tzinfo=timezone.utc)
_DEFAULT_OPTIONS = TurnOptions()
#: the conversation id the scripted CLI reports, and the one a test's resume handle names
CONVERSATION = "k1"


# ---- the scripted turn runner ---------------------------------------------------------------------------
@dataclass
class Script:
    """A ``TurnRunner``: each turn yields ``events``, then raises ``errors[provider]`` or ``error`` (for the
    first ``fail_times`` turns; None: every turn) or returns a turn with ``result``. Records every call."""

    events: list[Event] = field(
        default_factory=lambda: [
            SessionStarted(provider="claude", session_id=CONVERSATION),
            TextEvent(provider="claude", text="hi"),
        ]
    )
    result: str = "the answer"
    error: BaseException | None = None
    errors: dict[str, BaseException] = field(default_factory=dict)
    fail_times: int | None = None
    status: str = "completed"
    on_event: Callable[[TurnControl], None] | None = None  # called after the first event (a signal mid-turn)
    # recorded
    calls: list[tuple[str, TurnRequest, RunConfig, TurnOptions]] = field(default_factory=list)
    # the limit-wait clock: it moves only when the wait policy sleeps
    now: datetime = RESET - timedelta(hours=1)
    sleeps: list[float] = field(default_factory=list)

    def __call__(
        self,
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        base_env: dict[str, str],
        options: TurnOptions = _DEFAULT_OPTIONS,
        control: TurnControl | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Generator[Event, None, Turn]:
        self.calls.append((provider.name, request, config, options))
        control = control or TurnControl()
        turn = Turn(input=request.prompt, provider=provider.name, model="sonnet", duration_ms=1500, status="running")
        control.turn = turn
        for i, ev in enumerate(self.events):
            yield ev
            if i == 0 and self.on_event is not None:
                self.on_event(control)
        error = self.errors.get(provider.name, self.error)
        if error is not None and (self.fail_times is None or len(self.calls) <= self.fail_times):
            if isinstance(error, ProviderError | CawTimeoutError | TurnCancelled):
                error.turn = turn
            raise error
        turn.output = [TextBlock(text=self.result)]
        turn.usage = UsageStats(input_tokens=100, output_tokens=20, cost_usd=0.0123)
        turn.status = self.status  # type: ignore[assignment]
        return turn

    def clock(self) -> datetime:
        return self.now

    def sleeper(self, seconds: float, cancel: threading.Event) -> bool:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        return cancel.is_set()

    @property
    def prompts(self) -> list[str]:
        return [request.prompt for _, request, _, _ in self.calls]

    def invoke(self, *args: str, input: str | None = None) -> CliResult:
        """``caw ARGS`` with this script as the runner (and its clock for limit waits)."""
        context = CliContext(agent_options={"runner": self, "clock": self.clock, "sleeper": self.sleeper})
        return CliRunner().invoke(app, list(args), input=input, obj=context)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "CAW_PROVIDER", "CAW_MODEL", "CAW_EFFORT"):
        monkeypatch.delenv(var, raising=False)
    for var in ("CAW_MAX_WAIT", "CAW_WAIT_BUFFER", "CAW_AUTOWAIT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    monkeypatch.setenv("CAW_PROVIDER", "claude")  # one provider unless a test passes --provider
    return Script()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The data dir the commands use by default (CAW_DATA_DIR)."""
    return tmp_path / "data"


def invoke(*args: str, input: str | None = None) -> CliResult:
    """``caw ARGS`` for the commands that run no turn."""
    return CliRunner().invoke(app, list(args), input=input)


def kept(data_dir: Path, session_id: str | None = None) -> Trajectory:
    """The session the command kept in ``data_dir`` (the only one, unless ``session_id`` is given)."""
    if session_id is None:
        infos = list_sessions(data_dir)
        assert len(infos) == 1, [i.session_id for i in infos]
        session_id = infos[0].session_id
    return SessionStore(data_dir).load(session_id)


def handle_of(data_dir: Path) -> str:
    handle = kept(data_dir).resume_handle
    assert handle is not None
    return handle


def stored_conversation(data_dir: Path, tmp_path: Path, *, pending: str | None = None) -> str:
    """A saved session ``s1`` (claude's conversation ``k1``, maybe with a pending message); its resume handle."""
    traj = Trajectory(session_id="s1", agent="claude", provider_session_id=CONVERSATION, pending_message=pending)
    SessionStore(data_dir).save(traj)
    return encode(ResumeHandle(provider="claude", session_id="s1", resume_key=CONVERSATION, cwd=str(tmp_path)))


# ---- prompts and options --------------------------------------------------------------------------------
def test_run_prints_result_on_stdout_and_resume_handle_on_stderr(script: Script, data: Path) -> None:
    r = script.invoke("run", "hello")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "the answer\n"
    assert f"caw: resume with: caw resume {handle_of(data)}" in r.stderr
    assert script.prompts == ["hello"]
    assert kept(data).completed_at is not None  # the session was ended


def test_prompt_starting_with_dash_after_double_dash(script: Script) -> None:
    r = script.invoke("run", "--", "--help me")
    assert r.exit_code == 0, r.stderr
    assert script.prompts == ["--help me"]


def test_dash_reads_the_prompt_from_stdin(script: Script) -> None:
    r = script.invoke("run", "-", input="-- from stdin\nsecond line\n")
    assert r.exit_code == 0, r.stderr
    assert script.prompts == ["-- from stdin\nsecond line\n"]


def test_file_prompt_of_one_megabyte_arrives_verbatim(script: Script, tmp_path: Path) -> None:
    text = "-x ünïcode\n" + ("0123456789abcdef" * 65536)
    path = tmp_path / "prompt.txt"
    path.write_text(text, encoding="utf-8")
    r = script.invoke("run", "--file", str(path))
    assert r.exit_code == 0, r.stderr
    assert script.prompts == [text]


@pytest.mark.parametrize(
    ("argv", "stdin", "needle"),
    [
        (["run"], None, "no prompt given"),
        (["run", "   "], None, "the prompt is empty"),
        (["run", "-"], "", "the prompt is empty"),
        (["run", "x", "--file", "f.txt"], None, "either as an argument or with --file"),
        (["run", "--file", "/nonexistent/prompt.txt"], None, "cannot read --file"),
        (["run", "x", "--json", "--quiet"], None, "exclude each other"),
        (["run", "x", "--no-wait", "--max-wait", "1h"], None, "exclude each other"),
        (["run", "x", "--tools", "reader,bogus"], None, "unknown tool group 'bogus'"),
        (["run", "x", "--max-wait", "soon"], None, "--max-wait 'soon'"),
        (["run", "x", "--timeout", "-5"], None, "--timeout"),
        (["run", "x", "--cwd", "/nonexistent/dir"], None, "no such directory"),
        (["run", "x", "--effort", "hgih"], None, "--effort 'hgih' is not a reasoning effort"),
    ],
)
def test_usage_errors_exit_2_with_one_line(script: Script, argv: list[str], stdin: str | None, needle: str) -> None:
    r = script.invoke(*argv, input=stdin)
    assert r.exit_code == ExitCode.USAGE
    assert needle in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("caw: error: ")]
    assert len(lines) == 1 and " — " in lines[0]
    assert "Traceback" not in r.stderr
    assert script.prompts == []


def test_unknown_flag_is_a_usage_error() -> None:
    r = invoke("run", "--bogus", "x")
    assert r.exit_code == 2
    assert "--bogus" in r.stderr


def test_options_reach_the_agent(script: Script, tmp_path: Path) -> None:
    script.errors = {"claude": ProviderCrashed("claude", "exit 1")}  # so the order shows: codex answers
    r = script.invoke(
        "run", "x", "--provider", "claude,codex", "--model", "sonnet", "--effort", "high", "--tools", "all,-web",
        "--system-prompt", "be brief", "--cwd", str(tmp_path), "--data-dir", str(tmp_path / "d"),
        "--max-wait", "1h30m", "--timeout", "2m", "--idle-timeout", "45", "--save", str(tmp_path / "t.json"),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert [name for name, *_ in script.calls] == ["claude", "codex"]
    (_, _, claude, opts), (_, _, codex, _) = script.calls
    assert claude.model == "sonnet" and codex.model is None  # a model name belongs to the first provider
    assert claude.reasoning == codex.reasoning == "high" and claude.system_prompt == "be brief"
    assert claude.tools == ToolGroup.ALL - ToolGroup.WEB
    assert claude.cwd == str(tmp_path.resolve())
    assert opts.timeout == 120.0 and opts.idle_timeout == 45.0
    assert kept(tmp_path / "d").agent == "codex"
    assert Trajectory.from_dict(json.loads((tmp_path / "t.json").read_text())).result == "the answer"


def test_run_args_become_agent_options(tmp_path: Path) -> None:
    """What the commands hand the Agent; the tests around it show each option taking effect."""
    kw = RunArgs(provider="claude,codex", max_wait="1h30m", timeout="2m", idle_timeout="45", tools="all,-web",
                 data_dir=tmp_path / "d").agent_kwargs()  # fmt: skip
    assert kw["max_wait"] == 5400.0 and kw["auto_wait"] is True
    assert kw["timeout"] == 120.0 and kw["idle_timeout"] == 45.0 and kw["data_dir"] == tmp_path / "d"
    off = RunArgs(no_wait=True).agent_kwargs()
    assert off["auto_wait"] is False and off["data_dir"] == tmp_path / "data"
    assert "max_wait" not in off and "tools" not in off  # the Agent's own defaults apply


def test_max_wait_reaches_the_wait_policy(script: Script) -> None:
    script.error = UsageLimitError("claude", "session limit", resets_at=script.now + timedelta(hours=2))
    r = script.invoke("run", "x", "--max-wait", "1h30m")  # 2h away: longer than the max wait
    assert r.exit_code == ExitCode.RATE_LIMITED, r.stderr
    assert script.sleeps == [] and len(script.calls) == 1
    script.error = UsageLimitError("claude", "session limit", resets_at=script.now + timedelta(hours=1))
    script.fail_times = 2  # this run's first turn is limited, its retry answers
    r = script.invoke("run", "x", "--max-wait", "1h30m")  # 1h away: within it, so caw waits
    assert r.exit_code == 0, r.stderr
    assert 3600 < sum(script.sleeps) <= 3600 + 121


def test_no_wait_turns_auto_wait_off_and_data_dir_defaults_to_caw_data_dir(script: Script, data: Path) -> None:
    script.error = UsageLimitError("claude", "session limit", resets_at=script.now + timedelta(minutes=1))
    r = script.invoke("run", "x", "--no-wait")
    assert r.exit_code == ExitCode.RATE_LIMITED
    assert script.sleeps == [] and "waiting until" not in r.stderr
    assert kept(data).usage_limited is True
    assert script.calls[0][2].tools is None  # no --tools: the Agent's default


def test_a_limit_is_waited_out_and_the_conversation_continues(script: Script, data: Path) -> None:
    script.error = UsageLimitError("claude", "session limit", resets_at=script.now + timedelta(minutes=10))
    script.fail_times = 1
    r = script.invoke("run", "x")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "the answer\n"
    assert "waiting until" in r.stderr and "continuing the conversation" in r.stderr
    assert 10 * 60 + 120 <= sum(script.sleeps) < 10 * 60 + 121  # the reset plus the default buffer
    assert script.prompts == ["x", "continue"]  # claude kept the limited message in the conversation
    traj = kept(data)
    assert traj.usage_limited is True and traj.pending_message is None and traj.turns[-1].input == "x"


def test_parse_tools() -> None:
    assert parse_tools("reader,writer") == ToolGroup.READER | ToolGroup.WRITER
    assert parse_tools("NO_INTERACTION") == ToolGroup.NO_INTERACTION
    assert parse_tools("none") == ToolGroup.NONE
    assert parse_tools("all,-interaction") == ToolGroup.NO_INTERACTION
    with pytest.raises(cli.exit_codes.UsageProblem):
        parse_tools("readers")


# ---- output modes ---------------------------------------------------------------------------------------
def test_quiet_prints_only_the_result(script: Script) -> None:
    r = script.invoke("run", "x", "--quiet")
    assert r.exit_code == 0
    assert r.stdout == "the answer\n"
    assert r.stderr == ""


def test_plain_mode_prints_progress_on_stderr(script: Script) -> None:
    script.events.insert(1, ToolCallEvent(provider="claude", id="t1", name="Bash", arguments={"command": "ls"}))
    r = script.invoke("run", "x")
    assert r.exit_code == 0
    assert "caw: [claude] tool call Bash" in r.stderr
    assert "caw: done: claude · sonnet · 100 in · 20 out · $0.0123 · 1.5s" in r.stderr
    assert "tool call" not in r.stdout


def test_ci_progress_prints_tool_arguments_as_json_not_a_python_repr(script: Script) -> None:
    arguments = {"command": "ls -la", "timeout": 5, "dry": True}
    script.events.insert(1, ToolCallEvent(provider="claude", id="t1", name="Bash", arguments=arguments))
    r = script.invoke("run", "x")
    (line,) = [ln for ln in r.stderr.splitlines() if "tool call" in ln]
    assert line == 'caw: [claude] tool call Bash: {"command": "ls -la", "timeout": 5, "dry": true}'


def test_the_footer_says_how_long_caw_waited_for_a_limit_and_names_the_session(script: Script, data: Path) -> None:
    script.error = UsageLimitError("claude", "session limit", resets_at=script.now + timedelta(minutes=10))
    script.fail_times = 1
    r = script.invoke("run", "x")
    assert r.exit_code == 0, r.stderr
    session_id = kept(data).session_id
    (done,) = [ln for ln in r.stderr.splitlines() if ln.startswith("caw: done: ")]
    assert done.endswith(f" · 1.5s · waited 12m 00s for a limit · s:{session_id[:8]}")  # 10 min + 2 min buffer
    plain = script.invoke("run", "y")
    (done,) = [ln for ln in plain.stderr.splitlines() if ln.startswith("caw: done: ")]
    assert "waited" not in done and done.endswith(f" · s:{list_sessions(data)[0].session_id[:8]}")


def test_debug_prints_each_event_line_once(script: Script) -> None:
    script.events.insert(1, ToolCallEvent(provider="claude", id="t1", name="Bash", arguments={"command": "ls"}))
    r = script.invoke("run", "x", "--debug")
    assert r.exit_code == 0, r.stderr
    progress = [ln for ln in r.stderr.splitlines() if ln.startswith("caw: [claude]")]
    assert len(progress) == len(set(progress)) == 3, r.stderr  # session started, tool call, text


def test_json_prints_the_trajectory_with_resume_handle(script: Script, data: Path) -> None:
    r = script.invoke("run", "x", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["resume_handle"] == handle_of(data) and doc["exit_code"] == 0 and doc["error"] is None
    assert doc["result"] == "the answer" and doc["turns"][0]["input"] == "x"
    jsonschema.validate(doc, Trajectory.model_json_schema(mode="serialization"))
    assert Trajectory.from_dict(doc).turns[0].result == "the answer"


def test_json_on_failure_still_prints_a_document(script: Script) -> None:
    script.error = AuthenticationError("claude", "Invalid API key", status=401)
    r = script.invoke("run", "x", "--json")
    assert r.exit_code == ExitCode.AUTH
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == 4 and "could not authenticate" in doc["error"]


def test_jsonl_lines_validate_against_the_event_schema(script: Script) -> None:
    script.events += [
        ToolCallEvent(provider="claude", id="t1", name="Bash", arguments={"command": "ls"}),
        ToolResultEvent(provider="claude", id="t1", output="a\nb"),
        UsageEvent(provider="claude", usage=UsageStats(input_tokens=5), final=True),
        ResultEvent(provider="claude", text="the answer"),
    ]
    r = script.invoke("run", "x", "--jsonl")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert [EVENT_ADAPTER.validate_json(ln).type for ln in lines] == [
        "session_started", "text", "tool_call", "tool_result", "usage", "result", "caw_session",
    ]  # fmt: skip
    validator = jsonschema.Draft202012Validator(event_json_schema())
    for ln in lines:
        validator.validate(json.loads(ln))


def test_jsonl_failure_ends_with_a_fatal_error_event(script: Script) -> None:
    script.events = []  # the CLI is not there: nothing is printed before the error
    script.error = ProviderNotInstalled("claude", "claude")
    r = script.invoke("run", "x", "--jsonl")
    assert r.exit_code == ExitCode.NO_PROVIDER
    last = EVENT_ADAPTER.validate_json(r.stdout.splitlines()[-2])  # the last line is caw's caw_session
    assert isinstance(last, ErrorEvent) and last.fatal and last.kind == "cli"
    assert "not installed" in last.message


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (UsageLimitError("claude", "credit balance is too low", waitable=False), "billing"),
        (UsageLimitError("claude", "session limit", resets_at=RESET), "rate_limit"),
        (AuthenticationError("claude", "401"), "auth"),
        (TurnTimeout("t", provider="claude"), "unknown"),
    ],
)
def test_jsonl_closing_error_event_names_the_class(script: Script, error: BaseException, kind: str) -> None:
    script.error = error
    r = script.invoke("run", "x", "--jsonl", "--no-wait")
    last = EVENT_ADAPTER.validate_json(r.stdout.splitlines()[-2])  # the last line is caw's caw_session
    assert isinstance(last, ErrorEvent) and last.kind == kind and last.provider == "claude"


def test_a_turn_that_did_not_complete_is_never_exit_0(script: Script) -> None:
    script.status = "rate_limited"
    r = script.invoke("run", "x")
    assert r.exit_code == ExitCode.TURN_FAILED
    assert r.stdout == ""
    assert "ended as rate_limited" in r.stderr


# ---- the exit-code contract -----------------------------------------------------------------------------
def _limit(**kw: Any) -> UsageLimitError:
    return UsageLimitError("claude", "You've hit your session limit", resets_at=RESET, kind="session", **kw)


def _all(*errors: Exception, attempts: list[Attempt] | None = None) -> AllProvidersFailed:
    recorded = attempts if attempts is not None else [
        Attempt(provider=getattr(e, "provider", "x"), reason="error", error=str(e)) for e in errors
    ]  # fmt: skip
    return AllProvidersFailed("no provider could answer", list(errors), recorded)


_CASES: list[tuple[str, BaseException, int]] = [
    ("turn failed", TurnFailed("claude", "API Error: 500", kind="server", status=500), 1),
    ("context overflow", ContextOverflowError("claude", "prompt is too long"), 1),
    ("conversation gone", ConversationNotFound("claude", "No conversation found"), 1),
    ("crash on the first turn", ProviderCrashed("claude", "exit 1"), 3),
    ("not installed", ProviderNotInstalled("codex", "codex"), 3),
    ("auth", AuthenticationError("claude", "Invalid API key", status=401), 4),
    ("limit", _limit(), 75),
    ("money", UsageLimitError("claude", "credit balance is too low", waitable=False, kind="credits"), 4),
    ("total timeout", TurnTimeout("claude did not finish within 3s", provider="claude", seconds=3), 124),
    ("idle timeout", IdleTimeout("claude printed nothing for 5s", provider="claude", seconds=5), 124),
    ("cancelled", TurnCancelled(), 130),
    ("ctrl-c", KeyboardInterrupt(), 130),
    ("bug", RuntimeError("boom"), 1),
    ("all limited", _all(_limit(), UsageLimitError("codex", "usage limit", resets_at=RESET + timedelta(hours=1))), 75),
    ("limited or missing", _all(_limit(), ProviderNotInstalled("codex", "codex")), 75),
    ("auth and missing", _all(AuthenticationError("claude", "401"), ProviderNotInstalled("codex", "codex")), 4),
    ("auth and limit", _all(AuthenticationError("claude", "401"), _limit()), 4),
    ("all missing", _all(ProviderNotInstalled("claude", "claude"), ProviderNotInstalled("codex", "codex")), 3),
    ("crashed and missing", _all(ProviderCrashed("claude", "exit 1"), ProviderNotInstalled("codex", "codex")), 3),
    ("all timed out", _all(TurnTimeout("t", provider="claude"), TurnTimeout("t", provider="codex")), 124),
    ("cooldown only", _all(attempts=[Attempt(provider="claude", reason="cooldown", error="until 17:00")]), 75),
]


@pytest.mark.parametrize(("name", "error", "code"), _CASES, ids=[c[0] for c in _CASES])
def test_exit_code_of_each_failure(script: Script, name: str, error: BaseException, code: int) -> None:
    script.error = error
    r = script.invoke("run", "x", "--no-wait")  # the CI case: a limit is reported, not waited out
    assert r.exit_code == code, r.stderr
    assert r.stdout == ""
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("caw: error: ")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "caw: resume with:" not in r.stderr  # the error line says how to resume, once


def test_configuration_error_from_the_agent_is_a_usage_error(script: Script) -> None:
    r = script.invoke("run", "x", "--provider", "claud")
    assert r.exit_code == ExitCode.USAGE
    assert "caw: error: unknown provider 'claud'" in r.stderr
    assert script.calls == []


def test_crash_after_the_first_turn_is_a_turn_failure(script: Script, data: Path, tmp_path: Path) -> None:
    script.error = ProviderCrashed("claude", "exit 1")
    r = script.invoke("resume", stored_conversation(data, tmp_path), "again")
    assert r.exit_code == ExitCode.TURN_FAILED


def test_limit_message_says_when_it_resets_and_how_to_resume(script: Script, data: Path) -> None:
    script.error = _limit()
    r = script.invoke("run", "x", "--no-wait")
    assert r.exit_code == ExitCode.RATE_LIMITED
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("caw: error: claude hit its session limit")
    assert "17:00 UTC" in line
    assert f"caw resume {handle_of(data)}" in line


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (ProviderNotInstalled("claude", "claude"), "npm install -g @anthropic-ai/claude-code"),
        (ProviderNotInstalled("codex", "codex"), "CAW_CODEX_BIN"),
        (ProviderNotInstalled("opencode", "opencode"), "npm install -g opencode-ai"),
        (AuthenticationError("claude", "401"), "claude /login"),
        (AuthenticationError("codex", "401"), "codex login"),
        (AuthenticationError("opencode", "401"), "opencode auth login"),
        (TurnTimeout("claude did not finish", provider="claude"), "--timeout"),
    ],
)
def test_error_lines_say_what_to_do(error: BaseException, needle: str) -> None:
    assert needle in failure_for(error, handle=None).line


def test_failure_line_is_one_line_whatever_the_cli_printed() -> None:
    f = failure_for(TurnFailed("claude", "line one\nline two\r\n  three"))
    assert "\n" not in f.line and "line one line two three" in f.line


def test_all_failed_limit_reports_the_earliest_reset() -> None:
    later = UsageLimitError("codex", "limit", resets_at=RESET + timedelta(hours=2))
    f = failure_for(_all(later, _limit()))
    assert f.code == ExitCode.RATE_LIMITED and f.resets_at == RESET


def test_debug_adds_traceback_and_stderr_tail(script: Script) -> None:
    script.error = ProviderCrashed("claude", "exit 1", stderr_tail="TypeError: oops in the CLI")
    quiet = script.invoke("run", "x")
    assert "Traceback" not in quiet.stderr and "oops in the CLI" not in quiet.stderr
    loud = script.invoke("run", "x", "--debug")
    assert "Traceback" in loud.stderr and "oops in the CLI" in loud.stderr
    assert loud.exit_code == quiet.exit_code == ExitCode.NO_PROVIDER


@pytest.mark.parametrize("error", [_limit(), TurnTimeout("t", provider="claude"), TurnCancelled()])
def test_unanswered_message_stays_pending_for_caw_resume(script: Script, data: Path, error: BaseException) -> None:
    script.error = error
    r = script.invoke("run", "the original request", "--no-wait")
    assert r.exit_code == failure_for(error).code
    assert kept(data).pending_message == "the original request"


def test_continuing_a_pending_message_that_hits_a_limit_again_keeps_the_original(
    script: Script, data: Path, tmp_path: Path
) -> None:
    handle = stored_conversation(data, tmp_path, pending="the original request")
    script.error = _limit()
    r = script.invoke("resume", handle, "--no-wait")
    assert r.exit_code == 75
    assert script.prompts == ["continue"]  # claude's continuation prompt was sent...
    assert kept(data).pending_message == "the original request"  # ...but the original stays pending


def test_answered_or_failed_turns_leave_nothing_pending(script: Script, data: Path, tmp_path: Path) -> None:
    ok = script.invoke("resume", stored_conversation(data, tmp_path, pending="left by a limit"))
    script.error = AuthenticationError("claude", "401")
    failed = script.invoke("run", "x")
    assert ok.exit_code == 0 and failed.exit_code == 4
    assert kept(data, "s1").pending_message is None  # the continued message was answered
    (other,) = [i.session_id for i in list_sessions(data) if i.session_id != "s1"]
    assert kept(data, other).pending_message is None  # a login problem: nothing to continue


def test_sigterm_mid_turn_cancels_the_session_and_exits_130(script: Script, data: Path) -> None:
    stray: list[int] = []  # signals that reached the test's own handler instead of caw's

    def send_sigterm(control: TurnControl) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next bytecode of this thread
        assert control.cancelled.wait(10), "the SIGTERM handler did not cancel the session"
        script.error = TurnCancelled()  # what run_turn raises once its CLI is gone

    def not_caws(signum: int, frame: object) -> None:
        stray.append(signum)

    script.on_event = send_sigterm
    original = signal.signal(signal.SIGTERM, not_caws)  # a regression must fail this test, not kill pytest
    try:
        r = script.invoke("run", "x")
        assert signal.getsignal(signal.SIGTERM) is not_caws  # caw restored the handler it found
    finally:
        signal.signal(signal.SIGTERM, original)
    assert stray == []
    assert r.exit_code == ExitCode.INTERRUPTED, r.stderr
    assert "caw: error: interrupted" in r.stderr and f"caw resume {handle_of(data)}" in r.stderr
    assert kept(data).turns[-1].status != "completed"  # the partial turn is kept, not passed off as an answer


def test_a_signal_during_fallback_is_a_cancel_not_a_skipped_provider(script: Script, data: Path) -> None:
    script.errors = {"claude": ProviderCrashed("claude", "exit 1")}  # so codex runs, and is interrupted

    def sigterm_on_codex(control: TurnControl) -> None:
        if len(script.calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            assert control.cancelled.wait(10), "the SIGTERM handler did not cancel the session"
            script.errors["codex"] = TurnCancelled()

    script.on_event = sigterm_on_codex
    r = script.invoke("run", "x", "--provider", "claude,codex")
    assert r.exit_code == ExitCode.INTERRUPTED, r.stderr
    assert "claude skipped (crashed)" in r.stderr
    assert "codex skipped" not in r.stderr and "(error)" not in r.stderr
    assert [a.provider for a in kept(data).attempts] == ["claude"]  # the cancel is no failed attempt


# ---- resume ---------------------------------------------------------------------------------------------
def test_resume_sends_the_prompt_to_the_handles_conversation(script: Script, data: Path, tmp_path: Path) -> None:
    r = script.invoke("resume", stored_conversation(data, tmp_path), "and then?")
    assert r.exit_code == 0, r.stderr
    assert script.prompts == ["and then?"] and script.calls[0][1].resume_key == CONVERSATION
    assert [t.input for t in kept(data, "s1").turns] == ["and then?"]  # the same caw session goes on


def test_resume_without_prompt_continues_the_pending_message(script: Script, data: Path, tmp_path: Path) -> None:
    r = script.invoke("resume", stored_conversation(data, tmp_path, pending="the limited request"))
    assert r.exit_code == 0, r.stderr
    # claude kept the limited message in its history: caw sends its continuation prompt instead
    assert script.prompts == [caw.providers.get_provider("claude").continuation_prompt("the limited request")]


def test_resume_without_prompt_or_pending_message_is_a_usage_error(script: Script, data: Path, tmp_path: Path) -> None:
    r = script.invoke("resume", stored_conversation(data, tmp_path))
    assert r.exit_code == ExitCode.USAGE
    assert "no unanswered message" in r.stderr
    assert script.calls == []


def test_resume_with_invalid_handle_exits_2(script: Script) -> None:
    r = script.invoke("resume", "caw1_garbage", "x")
    assert r.exit_code == ExitCode.USAGE
    assert "caw: error: invalid resume handle:" in r.stderr and "truncated or edited" in r.stderr
    assert script.calls == []


def test_resume_a_bare_session_id_that_is_not_there_says_so_not_bad_handle(script: Script, data: Path) -> None:
    r = script.invoke("resume", "3f2a9c1b", "x")
    assert r.exit_code == ExitCode.USAGE
    assert f"caw: error: no session '3f2a9c1b' in {data} — `caw sessions` lists" in r.stderr
    assert "invalid resume handle" not in r.stderr and script.calls == []


def test_resume_last_continues_the_newest_session_of_this_directory(
    script: Script, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    ids = []
    for cwd in (here, there, here, there):
        assert script.invoke("run", "first", "--cwd", str(cwd)).exit_code == 0
        ids.append(list_sessions(data)[0].session_id)
    monkeypatch.chdir(here)
    r = script.invoke("resume", "--last", "and then?")
    assert r.exit_code == 0, r.stderr
    assert [t.input for t in kept(data, ids[2]).turns] == ["first", "and then?"]  # the newest one run here
    assert script.calls[-1][2].cwd == str(here.resolve())
    monkeypatch.chdir(tmp_path)
    r = script.invoke("resume", "--last", "x")
    assert r.exit_code == ExitCode.USAGE and f"no session in {data} was run in {tmp_path.resolve()}" in r.stderr
    assert script.invoke("resume").exit_code == ExitCode.USAGE  # neither a handle nor --last


def test_run_resume_option_resumes(script: Script, data: Path, tmp_path: Path) -> None:
    r = script.invoke("run", "--resume", stored_conversation(data, tmp_path), "more")
    assert r.exit_code == 0 and script.calls[0][1].resume_key == CONVERSATION


# ---- GitHub Actions -------------------------------------------------------------------------------------
def test_github_summary_and_outputs_on_success(
    script: Script, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    r = script.invoke("run", "x")
    assert r.exit_code == 0
    handle, session_id = handle_of(data), kept(data).session_id
    text = summary.read_text()
    assert "claude answered" in text and "the answer" in text and f"caw resume {handle}" in text
    assert "100 in · 20 out · $0.0123" in text
    assert outputs.read_text().splitlines() == [
        f"resume_handle={handle}", "provider=claude", f"session_id={session_id}", "exit_code=0",
        "cost_usd=0.012300", "input_tokens=100", "output_tokens=20", "cache_read_tokens=0", "cache_write_tokens=0",
    ]  # fmt: skip


def test_github_summary_on_a_limit_says_when_and_how_to_resume(
    script: Script, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    script.error = _limit()
    r = script.invoke("run", "x", "--no-wait")
    assert r.exit_code == 75
    handle = handle_of(data)
    text = summary.read_text()
    assert "exit 75" in text and "Limit resets" in text and "17:00 UTC" in text and f"caw resume {handle}" in text
    assert "exit_code=75" in outputs.read_text() and f"resume_handle={handle}" in outputs.read_text()


def test_github_summary_lists_skipped_providers() -> None:
    traj = Trajectory(
        session_id="s",
        agent="codex",
        attempts=[
            Attempt(provider="claude", reason="rate_limited", error="session limit | resets 5pm"),
            Attempt(provider="codex", reason="answered"),
        ],
        turns=[Turn(input="x", output=[TextBlock(text="```\nok\n```")], status="completed", provider="codex")],
    )
    text = ci.step_summary(Outcome(exit_code=0, trajectory=traj, turn=traj.turns[0], resume_handle=HANDLE))
    assert "claude: rate_limited — session limit \\| resets 5pm" in text
    assert "````text" in text  # a fence longer than the result's own


def test_outputs_use_the_multiline_form_for_line_breaks() -> None:
    out = ci.format_outputs({"a": "1", "b": "two\nlines"})
    lines = out.splitlines()
    assert lines[0] == "a=1"
    assert lines[1].startswith("b<<CAW_EOF_") and lines[2:4] == ["two", "lines"] and lines[4] == lines[1][3:]


# ---- other commands -------------------------------------------------------------------------------------
def test_version() -> None:
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"caw {caw.__version__}"


def test_schema_commands() -> None:
    events = json.loads(invoke("schema", "--events").stdout)
    assert events == json.loads(json.dumps(event_json_schema()))
    traj = json.loads(invoke("schema", "--trajectory").stdout)
    assert "turns" in traj["properties"] and "result" in traj["properties"]
    both = json.loads(invoke("schema").stdout)
    assert set(both) == {"event", "trajectory"}


def _saved(tmp_path: Path, name: str, created: datetime, prompt: str, handle: str | None) -> None:
    traj = Trajectory(session_id=name, agent="claude", created_at=created, resume_handle=handle)
    traj.turns.append(Turn(input=prompt, status="completed"))
    SessionStore(tmp_path / "data").save(traj)


def test_sessions_newest_first(tmp_path: Path) -> None:
    _saved(tmp_path, "older", RESET - timedelta(days=1), "first prompt " * 20, "caw1_OLD")
    _saved(tmp_path, "newer", RESET, "second", "caw1_NEW")
    r = invoke("sessions", "--data-dir", str(tmp_path / "data"))
    assert r.exit_code == 0
    assert r.stdout.index("newer") < r.stdout.index("older")
    assert "caw resume caw1_NEW" in r.stdout and "…" in r.stdout
    doc = json.loads(invoke("sessions", "--json").stdout)  # CAW_DATA_DIR is the default
    assert [d["session_id"] for d in doc] == ["newer", "older"]
    assert doc[0]["resume_handle"] == "caw1_NEW" and doc[1]["first_prompt"].startswith("first prompt")


def test_sessions_of_an_empty_dir(tmp_path: Path) -> None:
    r = invoke("sessions", "--data-dir", str(tmp_path / "nothing"))
    assert r.exit_code == 0 and "no sessions" in r.stdout


def _health(monkeypatch: pytest.MonkeyPatch, rows: list[Any]) -> list[Any]:
    import caw.providers.health

    seen: list[Any] = []

    def check_all(order: Any = None, *, live: bool = False, env: Any = None, probe: Any = None) -> list[Any]:
        seen.append((tuple(order), live))
        return rows

    monkeypatch.setattr(caw.providers.health, "check_all", check_all)
    return seen


def test_doctor_exit_0_when_the_first_provider_is_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    from caw.providers.health import ProviderHealth

    rows = [
        ProviderHealth(provider="claude", installed=True, binary="/bin/claude", version="2.1", credential="env X"),
        ProviderHealth(provider="codex", installed=False),
    ]
    seen = _health(monkeypatch, rows)
    r = invoke("doctor", "--json", "--provider", "claude")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["order"] == ["claude"] and doc["usable"] is True and doc["can_answer"] == ["claude"]
    assert [p["provider"] for p in doc["providers"]] == ["claude", "codex"]
    assert doc["providers"][1]["installed"] is False
    assert seen == [(("claude",), False)]
    lines = invoke("doctor", "--provider", "claude")  # not a terminal: one line per provider, for CI logs
    assert lines.exit_code == 0
    assert lines.stdout.splitlines() == [
        "1. claude: ok — 2.1 at /bin/claude; credential: env X",
        "-  codex: not installed",
        "can answer: claude",
    ]


def test_doctor_names_what_the_order_can_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12.9: no "ok" beside "credential: none found" or during a cooldown; exit 0 when a later
    provider in the order can answer, and the line says which."""
    from caw.providers.health import ProviderHealth

    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    rows = [
        ProviderHealth(provider="claude", installed=True, binary="/b/claude", version="2", cooldown_until=soon),
        ProviderHealth(provider="codex", installed=True, binary="/b/codex", version="0.1", credential="env K"),
        ProviderHealth(provider="opencode", installed=True, binary="/b/opencode", version="1"),
    ]
    _health(monkeypatch, rows)
    r = invoke("doctor")
    assert r.exit_code == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("1. claude: cooling down — ")
    assert out[1].startswith("2. codex: ok — ")
    assert out[2].startswith("3. opencode: no login found — ")
    assert out[-1] == "can answer: codex, opencode"


def test_doctor_table_on_a_terminal() -> None:
    from caw.cli.reports import render_doctor

    buf = io.StringIO()
    row = {"provider": "claude", "installed": True, "binary": "/b/claude", "version": "2.1", "ok": True}
    render_doctor(Console(file=buf, force_terminal=True, width=160, color_system=None), [row], ["claude"])
    out = buf.getvalue()
    assert "┃ provider" in out and "│ 1 │ claude" in out and "/b/claude" in out and "not installed" not in out


def test_doctor_exit_3_when_the_first_provider_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from caw.providers.health import ProviderHealth

    seen = _health(monkeypatch, [ProviderHealth(provider="codex", installed=False)])
    r = invoke("doctor", "--provider", "codex", "--live")
    assert r.exit_code == ExitCode.NO_PROVIDER
    assert "npm install -g @openai/codex" in r.stderr
    assert seen == [(("codex",), False)]  # nothing installed: --live has nothing to probe


def test_doctor_unknown_provider_is_a_usage_error() -> None:
    r = invoke("doctor", "--provider", "claud")
    assert r.exit_code == ExitCode.USAGE and "unknown provider" in r.stderr


def _trajectory_file(tmp_path: Path) -> Path:
    traj = Trajectory(
        session_id="s42",
        agent="claude",
        model="sonnet",
        attempts=[Attempt(provider="codex", reason="not_installed", error="codex: not found")],
        usage_limited=True,
    )
    long_output = "\n".join(f"line {i}" for i in range(1, 21))
    traj.turns.append(
        Turn(
            input="list files",
            status="completed",
            provider="claude",
            usage=UsageStats(input_tokens=10, output_tokens=5, cost_usd=0.5),
            output=[
                ToolUse(id="t1", name="Bash", arguments={"command": "seq 20"}, output=long_output),
                TextBlock(text="Twenty lines."),
            ],
        )
    )
    path = tmp_path / "traj.json"
    path.write_text(json.dumps(Outcome(exit_code=0, trajectory=traj, resume_handle=HANDLE).to_json()))
    return path


def test_traj_show_folds_tool_output(tmp_path: Path) -> None:
    r = invoke("traj", "show", str(_trajectory_file(tmp_path)))
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "turn 1 · completed" in out and "[1] user" in out and "[2] tool Bash(seq 20)" in out
    assert "line 3" in out and "line 4" not in out and "+17 lines" in out and "--step 2" in out
    assert "[3] text" in out and "Twenty lines." in out
    assert "codex: not_installed" in out and "usage limit" in out and "$0.5000" in out


def test_traj_show_step_prints_it_in_full(tmp_path: Path) -> None:
    r = invoke("traj", "show", str(_trajectory_file(tmp_path)), "--step", "2")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == "step 2 · turn 1 · tool Bash(seq 20)"
    assert "line 20" in r.stdout and "line 4" in r.stdout


@pytest.mark.parametrize("step", ["0", "4"])
def test_traj_show_step_out_of_range(tmp_path: Path, step: str) -> None:
    r = invoke("traj", "show", str(_trajectory_file(tmp_path)), "--step", step)
    assert r.exit_code == ExitCode.USAGE and "has 3 steps" in r.stderr


def test_traj_show_rejects_what_is_not_a_trajectory(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert invoke("traj", "show", str(bad)).exit_code == ExitCode.USAGE
    bad.write_text("{not json")
    r = invoke("traj", "show", str(bad))
    assert r.exit_code == ExitCode.USAGE and "is not JSON" in r.stderr
    assert invoke("traj", "show", str(tmp_path / "missing.json")).exit_code == ExitCode.USAGE


def test_traj_show_accepts_a_session_directory(tmp_path: Path) -> None:
    _saved(tmp_path, "sess", RESET, "hello there", None)
    r = invoke("traj", "show", str(tmp_path / "data" / "sessions" / "sess"))
    assert r.exit_code == 0 and "hello there" in r.stdout


def test_steps_are_numbered_across_turns() -> None:
    traj = Trajectory(
        turns=[
            Turn(input="a", output=[TextBlock(text="b")]),
            Turn(input="c", output=[ToolUse(id="1", name="Read"), TextBlock(text="d")]),
        ]
    )
    assert [(s.number, s.turn_index, s.kind) for s in steps(traj)] == [
        (1, 1, "user"), (2, 1, "text"), (3, 2, "user"), (4, 2, "tool"), (5, 2, "text"),
    ]  # fmt: skip


def test_chat_exits_with_the_clis_exit_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a fake Agent on purpose: `caw chat` hands the terminal to the CLI's own UI, which no runner scripts
    calls: list[Any] = []

    @dataclass
    class Result:
        exit_code: int
        output: str = ""

    class ChatAgent:
        def __init__(self, **kw: Any) -> None:
            calls.append(kw)

        def interactive(self, prompt: str, select_provider: bool = False) -> Result:
            calls.append((prompt, select_provider))
            return Result(7)

    monkeypatch.setattr(cli.runner, "Agent", ChatAgent)
    r = invoke("chat", "--provider", "codex", "--pick", "--", "-starts with dash")
    assert r.exit_code == 7
    assert calls == [{"provider": "codex", "model": None, "reasoning": None}, ("-starts with dash", True)]
    calls.clear()
    r = invoke("chat", "--tools", "reader,exec", "--system-prompt", "be brief", "--cwd", str(tmp_path), "hi")
    assert r.exit_code == 7, r.stderr
    assert calls[0]["tools"] == ToolGroup.READER | ToolGroup.EXEC
    assert calls[0]["system_prompt"] == "be brief" and calls[0]["cwd"] == str(tmp_path.resolve())
    assert invoke("chat", "--cwd", str(tmp_path / "missing")).exit_code == ExitCode.USAGE


# ---- rendering ------------------------------------------------------------------------------------------
def test_live_view_streams_text_tools_and_footer() -> None:
    buf = io.StringIO()
    view = LiveView(Console(file=buf, force_terminal=True, width=100, color_system=None))
    view.start("claude")
    for ev in [
        SessionStarted(provider="claude", session_id="k", model="sonnet"),
        TextEvent(provider="claude", text="Let me look.\nFirst ", message_id="m1"),
        TextEvent(provider="claude", text="[red]not markup[/red]", message_id="m1"),
        ToolCallEvent(provider="claude", id="t", name="Bash", arguments={"command": "ls -la"}),
        ToolResultEvent(provider="claude", id="t", output="a\nb\nc\nd\ne"),
        LimitWaitEvent(provider="claude", wake_at=RESET, kind="session"),
        TextEvent(provider="claude", text="Done.", message_id="m2"),
    ]:
        view.event(ev)
    turn = Turn(input="x", provider="claude", model="sonnet", usage=UsageStats(input_tokens=7), duration_ms=2000)
    view.finish(Outcome(exit_code=0, turn=turn))
    out = buf.getvalue()
    assert "Let me look." in out and "First [red]not markup[/red]" in out
    assert "⏺ Bash(ls -la)" in out and "⎿ a" in out and "… +2 lines" in out and " e" not in out
    assert "Done." in out and "─ claude · sonnet · 7 in · 0 out · 2.0s" in out


def test_render_trajectory_escapes_markup() -> None:
    buf = io.StringIO()
    traj = Trajectory(turns=[Turn(input="[bold]x[/bold]", status="completed")])
    render_trajectory(Console(file=buf, width=120, color_system=None), traj)
    assert "[bold]x[/bold]" in buf.getvalue()


def test_failure_is_a_value() -> None:
    f = Failure(ExitCode.USAGE, "what", "todo")
    assert f.line == "what — todo" and int(f.code) == 2
