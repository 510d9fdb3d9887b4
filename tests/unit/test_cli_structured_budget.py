"""``caw run --schema``, ``--max-cost``, ``--max-tokens``, ``--max-duration`` over a scripted runner (issue 16):
what is printed, the exit codes, the usage errors, and the totals in ``--json`` and the GitHub files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from caw.cli import CliContext, ExitCode, app
from caw.cli.fastpath import parse_run
from tests.unit.scripted import ScriptedRunner
from tests.unit.test_budget import Streamer

SCHEMA = {"type": "object", "properties": {"verdict": {"enum": ["ship", "hold"]}}, "required": ["verdict"]}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    for var in ("CAW_PROVIDER", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(var, raising=False)


def invoke(runner: Any, *args: str) -> Any:
    return CliRunner().invoke(app, ["run", *args], obj=CliContext(agent_options={"runner": runner}))


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "verdict.schema.json"
    path.write_text(json.dumps(SCHEMA))
    return path


def test_schema_prints_only_the_validated_json(schema_file: Path) -> None:
    runner = ScriptedRunner({"claude": ['Here you go: {"verdict": "ship"}']})
    result = invoke(runner, "-p", "claude", "--schema", str(schema_file), "Ship it?")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"verdict": "ship"}
    assert runner.calls[0][1].output_schema == SCHEMA


def test_schema_never_met_exits_5(schema_file: Path) -> None:
    runner = ScriptedRunner({"claude": ['{"verdict": "maybe"}', '{"verdict": "perhaps"}']})
    result = invoke(runner, "-p", "claude", "--schema", str(schema_file), "Ship it?")
    assert result.exit_code == ExitCode.INVALID_OUTPUT == 5
    assert "does not match the schema after 2 tries" in result.stderr
    assert len(runner.calls) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-cost", "cheap"], "--max-cost 'cheap' is not a positive number"),
        (["--max-tokens", "1.5"], "--max-tokens '1.5' is not a positive whole number"),
        (["--max-tokens", "0"], "--max-tokens '0' is not a positive whole number"),
        (["--max-duration", "soon"], "--max-duration 'soon' is not a duration"),
        (["--schema", "/nonexistent/s.json"], "cannot read --schema /nonexistent/s.json"),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], message: str) -> None:
    runner = ScriptedRunner({"claude": ["ok"]})
    result = invoke(runner, "-p", "claude", *args, "hi")
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr
    assert runner.calls == []


def test_a_schema_file_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = invoke(ScriptedRunner({"claude": ["ok"]}), "-p", "claude", "--schema", str(bad), "hi")
    assert result.exit_code == ExitCode.USAGE and "is not JSON" in result.stderr


def test_max_tokens_crossed_exits_6_with_the_totals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = tmp_path / "outputs.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    result = invoke(Streamer(chunks=10, size=400), "-p", "claude", "--max-tokens", "250", "--json", "write")
    assert result.exit_code == ExitCode.BUDGET == 6
    assert "budget exceeded: tokens reached 300 tokens (limit 250 tokens)" in result.stderr
    report = json.loads(result.stdout)
    assert report["exit_code"] == 6 and report["cost_usd"] is None
    assert report["turns"][0]["status"] == "cancelled"
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values["cost_usd"] == "" and values["exit_code"] == "6"


def test_max_cost_on_codex_is_refused_before_the_run() -> None:
    runner = ScriptedRunner({"codex": ["ok"]})
    result = invoke(runner, "-p", "codex", "--max-cost", "$1", "hi")
    assert result.exit_code == ExitCode.USAGE and "codex reports tokens only" in result.stderr
    assert runner.calls == []


def test_max_duration_reaches_the_agent() -> None:
    parsed = parse_run(["run", "--max-duration", "15m", "--max-cost", "0.5", "--max-tokens", "1_000", "hi"])
    assert parsed is not None
    kw = parsed[0].agent_kwargs()
    assert (kw["max_duration"], kw["max_cost_usd"], kw["max_tokens"]) == (900.0, 0.5, 1000)
