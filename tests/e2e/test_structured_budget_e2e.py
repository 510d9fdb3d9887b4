"""``output=`` and budgets on the real CLIs against the loopback fakes (issue 16).

A schema is answered on each CLI (claude through its ``--json-schema`` StructuredOutput tool, codex through
``--output-schema`` with caw's strict transform, opencode by instruction and extraction); an invalid answer
is repaired on the second try, twice invalid is ``StructuredOutputError``; a token budget crossed in the middle
of a turn stops it on each CLI with no process left and the partial turn on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

import caw
from caw.state.store import SessionStore
from tests.e2e.harness import LiveFactory, live_factory
from tests.fakes.env import CODEX_MODEL
from tests.fakes.replies import Hang, Text, ToolCall


@pytest.fixture
def codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("codex", tmp_path / "codex", monkeypatch)


@pytest.fixture
def claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("claude", tmp_path / "claude", monkeypatch)


@pytest.fixture
def opencode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("opencode", tmp_path / "opencode", monkeypatch)


def processes_in(directory: Path) -> list[int]:
    """Live processes whose working directory is ``directory`` (the CLI and every tool it started there)."""
    found = []
    target = str(directory.resolve())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") != target:
                continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                    found.append(int(entry))
        except OSError:
            continue
    return found


class Address(BaseModel):
    city: str
    zip_code: str | None = None


class Person(BaseModel):
    name: str
    age: int
    nickname: str = "none"
    tags: list[str] = Field(default_factory=list)
    address: Address
    previous: Address | None = None


#: what the model sends: for codex in strict form (every property present, the optional ones null)
_ANSWER: dict[str, Any] = {"name": "Ada", "age": 36, "address": {"city": "London"}}
_STRICT_ANSWER: dict[str, Any] = {
    "name": "Ada",
    "age": 36,
    "nickname": None,
    "tags": None,
    "address": {"city": "London", "zip_code": None},
    "previous": None,
}


def _answer(provider: str, data: dict[str, Any]) -> Any:
    if provider == "claude":  # claude's --json-schema: the model calls its StructuredOutput tool
        return ToolCall("", tool="StructuredOutput", input=data)
    return Text(json.dumps(data))


def test_schema_answered_with_optional_and_nested_fields(live: LiveFactory) -> None:
    run = live()
    name = run.harness.name
    run.server.enqueue(_answer(name, _STRICT_ANSWER if name == "codex" else _ANSWER))
    traj = run.agent(data_dir=run.root / "caw-data").completion("Describe Ada as JSON", output=Person)
    turn = traj.turns[-1]
    assert isinstance(traj.parsed, Person), turn
    assert turn.parsed == Person(name="Ada", age=36, address=Address(city="London"))
    assert turn.parsed.nickname == "none" and turn.parsed.tags == []  # defaults restored (codex sent nulls)
    assert json.loads(turn.result)["name"] == "Ada"  # the raw text is the answer
    body = run.server.model_requests[0].body or {}
    if name == "codex":  # the schema codex sent is OpenAI-strict
        schema = body["text"]["format"]["schema"]
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) == set(schema["properties"]) == set(Person.model_fields)
    if name == "opencode":  # no schema flag: caw asked for JSON in the prompt, and recorded the user's input
        assert "JSON schema" in run.server.last_user_text(body)
        assert turn.input == "Describe Ada as JSON"
    # the trajectory on disk round-trips the parsed answer as JSON
    saved = SessionStore(run.root / "caw-data").load(traj.session_id)
    assert saved.turns[-1].parsed == turn.parsed.model_dump(mode="json")


def test_codex_invalid_answer_repaired_on_the_second_try(codex: LiveFactory) -> None:
    run = codex()
    run.server.enqueue(Text('{"name": "Ada"}'), Text(json.dumps(_STRICT_ANSWER)))
    session = run.agent().start_session()
    turn = session.send("Describe Ada", output=Person)
    session.end()
    assert isinstance(turn.parsed, Person) and turn.parsed.age == 36
    assert len(session.trajectory.turns) == 2
    repair = run.server.last_user_text(run.server.model_requests[-1].body or {})
    assert "did not match" in repair and "age" in repair  # the repair turn carried the validation errors


def test_codex_invalid_twice_raises_structured_output_error(codex: LiveFactory) -> None:
    run = codex()
    run.server.enqueue(Text("not json at all"), Text('{"name": "Ada"}'))
    with pytest.raises(caw.StructuredOutputError) as info:
        run.agent().completion("Describe Ada", output=Person)
    err = info.value
    assert err.raw == '{"name": "Ada"}' and err.attempts == 2
    assert any("age" in e for e in err.errors)
    assert err.turn is not None and err.turn.parsed is None
    assert len(err.trajectory.turns) == 2  # type: ignore[attr-defined]


def test_claude_gives_up_after_its_own_schema_retries(claude: LiveFactory) -> None:
    """claude retries its StructuredOutput tool itself (5 tries) and ends the turn with the result subtype
    error_max_structured_output_retries: that is caw's StructuredOutputError, with the last answer."""
    run = claude()
    run.server.enqueue(*[ToolCall("", tool="StructuredOutput", input={"name": "Ada"}) for _ in range(5)])
    with pytest.raises(caw.StructuredOutputError) as info:
        run.agent().completion("Describe Ada", output=Person)
    err = info.value
    assert json.loads(err.raw) == {"name": "Ada"}
    assert "structured output" in err.errors[0]


def test_token_budget_crossed_mid_stream_stops_the_turn(live: LiveFactory) -> None:
    run = live()
    # a tool whose output is ~3000 tokens by caw's estimate (opencode reports the first call's ~2500 input
    # tokens itself), then a model that would take 60 s to answer
    run.server.enqueue(ToolCall(f"{sys.executable} -c \"print('x' * 12000)\""), Hang(60))
    agent = run.agent(max_tokens=2000, tools=caw.ToolGroup.EXEC, data_dir=run.root / "caw-data")
    started = time.monotonic()
    with pytest.raises(caw.BudgetExceeded) as info:
        agent.completion("Run the command")
    elapsed = time.monotonic() - started
    err = info.value
    assert err.budget == "tokens" and err.limit == 2000 and err.reached > err.limit
    assert elapsed < 30, elapsed  # long before the model's 60 s answer
    assert processes_in(run.work) == []
    traj = err.trajectory  # type: ignore[attr-defined]
    saved = SessionStore(run.root / "caw-data").load(traj.session_id)
    [turn] = saved.turns
    assert turn.status == "cancelled" and turn.error is not None and turn.error.type == "BudgetExceeded"


def _caw(run: Any, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**run.env, "CAW_DATA_DIR": str(run.root / "caw-data"), **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "caw", "run", *args],
        input="",
        env=env,
        cwd=run.work,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_caw_run_schema_prints_the_json_and_exits_5_when_invalid(claude: LiveFactory, codex: LiveFactory) -> None:
    good = claude()
    path = good.root / "person.schema.json"
    path.write_text(json.dumps(Person.model_json_schema()))
    good.server.enqueue(ToolCall("", tool="StructuredOutput", input=_ANSWER))
    done = _caw(good, "-p", "claude", "--schema", str(path), "Describe Ada")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _ANSWER  # the validated JSON on stdout, nothing else
    bad = codex()
    bad.server.enqueue(Text("no idea"), Text('{"name": "Ada"}'))
    failed = _caw(bad, "-p", "codex", "-m", CODEX_MODEL, "--schema", str(path), "--json", "Describe Ada")
    assert failed.returncode == 5, failed.stderr
    assert "does not match the schema" in failed.stderr
    report = json.loads(failed.stdout)
    assert report["exit_code"] == 5 and len(report["turns"]) == 2


def test_caw_run_max_cost_exits_6_and_reports_the_cost(claude: LiveFactory, codex: LiveFactory) -> None:
    run = claude()
    outputs = run.root / "github_output.txt"
    run.server.enqueue(ToolCall("echo hi"), Text("done"))
    done = _caw(
        run, "-p", "claude", "--max-cost", "0.01", "--json", "Run it", extra_env={"GITHUB_OUTPUT": str(outputs)}
    )
    assert done.returncode == 6, done.stderr  # claude's own --max-budget-usd stopped it: caw's exit code
    assert "budget exceeded: cost_usd" in done.stderr
    report = json.loads(done.stdout)
    assert report["cost_usd"] > 0.01 and report["input_tokens"] > 0
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert float(values["cost_usd"]) == pytest.approx(report["cost_usd"], abs=1e-6)
    assert values["exit_code"] == "6" and int(values["input_tokens"]) == report["input_tokens"]
    # codex reports no cost: a cost budget on it is refused before anything runs (usage error)
    other = codex()
    refused = _caw(other, "-p", "codex", "--max-cost", "1", "hi")
    assert refused.returncode == 2 and "reports tokens only" in refused.stderr
    assert other.server.model_requests == []


def test_claude_max_turns_is_its_own_cap_and_the_same_error(claude: LiveFactory) -> None:
    """``max_turns`` reaches claude as ``--max-turns``: its ``error_max_turns`` result is caw's BudgetExceeded."""
    run = claude()
    run.server.enqueue(ToolCall("echo one"), ToolCall("echo two"), Text("done"))
    with pytest.raises(caw.BudgetExceeded) as info:
        run.agent(tools=caw.ToolGroup.EXEC).completion("Run both", max_turns=1)
    err = info.value
    assert (err.budget, err.limit, err.native) == ("turns", 1, True)
    assert len(run.server.model_requests) == 1  # claude stopped itself before a second model call
    assert err.turn is not None and err.turn.status == "cancelled"


def test_claude_json_schema_text_answer_without_structured_output(claude: LiveFactory) -> None:
    """A model that answers --json-schema in text: claude asks once more for its StructuredOutput tool, then
    ends the turn as a success with the last text as ``result`` and no ``structured_output``. caw validates
    that text (the turn's text joins both answers)."""
    run = claude()
    run.server.enqueue(Text(json.dumps(_ANSWER)), Text(json.dumps(_ANSWER)))
    traj = run.agent().completion("Describe Ada", output=Person)
    assert traj.parsed == Person.model_validate(_ANSWER)
    assert len(traj.turns) == 1 and len(run.server.model_requests) == 2


def test_opencode_warm_sends_the_schema_as_format(opencode: LiveFactory) -> None:
    """A warm opencode (``opencode serve``) gets the schema as the prompt's ``format``: opencode offers the model
    a StructuredOutput tool with tool_choice required, and the assistant message's ``structured`` is the answer."""
    run = opencode()
    run.server.enqueue(ToolCall("", tool="StructuredOutput", input=_ANSWER))
    with run.agent(warm=True).start_session() as session:
        turn = session.send("Describe Ada", output=Person)
    assert turn.parsed == Person.model_validate(_ANSWER)
    assert json.loads(turn.result) == _ANSWER  # the structured answer, as the turn's text
    body = run.server.model_requests[0].body or {}
    assert body.get("tool_choice") == "required"
    assert "StructuredOutput" in [(t.get("function") or {}).get("name") for t in body.get("tools", [])]
