"""Issue 17.4: secrets are masked in everything caw writes or prints, never in the Turn the caller gets.

The redactor's patterns and values, the Agent's collection of them (provider key variables, ``secrets=``,
``CAW_SECRETS``, ``CAW_REDACT=0``), and ``caw run`` with a scripted turn whose answer holds a provider key:
the key is absent from trajectory.json, turns.jsonl, the --save file, --jsonl / --json stdout, stderr, the
logger and the GitHub step summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import caw
from caw import cli
from caw.cli import app
from caw.providers import get_provider
from caw.redact import MASK, MIN_SECRET_LEN, Redactor
from tests.unit.scripted import ScriptedRunner

CANARY = "canary-3f9a7c2e41d8b6aa"

KEYS = [
    "sk-ant-api03-" + "A1b2C3d4E5f6G7h8I9j0" * 3,
    "sk-proj-" + "x9Y8z7W6v5U4t3S2r1Q0",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a" * 36,
    "gho_" + "B1" * 18,
    "xoxb-1234567890-abcdefghij",
    "AIza" + "S" * 35,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc/+=\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk\\n-----END OPENSSH PRIVATE KEY-----",  # JSON-escaped
]


@pytest.mark.parametrize("key", KEYS)
def test_key_patterns_are_masked(key: str) -> None:
    assert Redactor()(f"before {key} after") == f"before {MASK} after"


def test_ordinary_text_is_left_alone() -> None:
    text = "risk-free ask-me sk-short AKIA123 ghp_short BEGIN the desk-top\n"
    assert Redactor()(text) == text


def test_known_values_are_masked_raw_and_json_escaped() -> None:
    quoted = 'pa"ss\\word-long'
    r = Redactor([CANARY, quoted])
    assert r(f"x={CANARY};") == f"x={MASK};"
    assert r(json.dumps({"v": f"({quoted})"})) == json.dumps({"v": f"({MASK})"}).replace("\\", "\\")
    assert CANARY not in r(json.dumps([CANARY * 2]))


def test_short_values_are_not_masked() -> None:
    short = "x" * (MIN_SECRET_LEN - 1)
    r = Redactor([short, "1", "true", ""])
    assert r(f"{short} 1 true") == f"{short} 1 true"
    assert Redactor(["y" * MIN_SECRET_LEN])("y" * MIN_SECRET_LEN) == MASK


def test_disabled_passes_everything_through() -> None:
    assert Redactor([CANARY], enabled=False)(f"{CANARY} {KEYS[0]}") == f"{CANARY} {KEYS[0]}"


def test_providers_list_their_key_variables() -> None:
    assert "ANTHROPIC_API_KEY" in get_provider("claude").secret_env_vars
    assert {"OPENAI_API_KEY", "CODEX_API_KEY"} <= set(get_provider("codex").secret_env_vars)
    assert "OPENROUTER_API_KEY" in get_provider("opencode").secret_env_vars


def test_the_agent_collects_provider_keys_named_variables_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "openai-value-1234")
    monkeypatch.setenv("MY_DEPLOY_TOKEN", "deploy-value-5678")
    monkeypatch.setenv("CAW_SECRETS", "OTHER_THING")
    monkeypatch.setenv("OTHER_THING", "other-value-9012")
    monkeypatch.delenv("CAW_REDACT", raising=False)
    agent = caw.Agent(
        provider=["claude", "codex"],
        env={"ANTHROPIC_API_KEY": "anthropic-value-3456"},
        secrets=["MY_DEPLOY_TOKEN", "literal-value-7890"],
    )
    text = "anthropic-value-3456 openai-value-1234 deploy-value-5678 literal-value-7890 other-value-9012"
    assert agent.redactor()(text) == " ".join([MASK] * 5)
    assert caw.Agent(provider="claude", redact=False).redactor()(KEYS[0]) == KEYS[0]
    monkeypatch.setenv("CAW_REDACT", "0")
    assert caw.Agent(provider="codex").redactor()("openai-value-1234") == "openai-value-1234"


@pytest.fixture
def ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("GITHUB_OUTPUT", "CAW_PROVIDER", "CAW_MODEL", "CAW_EFFORT", "CAW_AUTOWAIT", "CAW_REDACT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    return tmp_path


def run_with_answer(monkeypatch: pytest.MonkeyPatch, answer: str, *args: str) -> Any:
    runner = ScriptedRunner({"claude": [answer]})
    monkeypatch.setattr(cli.runner, "Agent", lambda **kw: caw.Agent(runner=runner, **kw))
    return CliRunner().invoke(app, ["run", "--provider", "claude", *args])


@pytest.mark.parametrize("mode", ["--jsonl", "--json", "--debug"])
def test_a_key_in_the_answer_is_absent_from_every_file_and_stream(
    monkeypatch: pytest.MonkeyPatch, ci: Path, mode: str
) -> None:
    save = ci / "saved.json"
    r = run_with_answer(monkeypatch, f"the key is {CANARY} and {KEYS[2]}", mode, "--save", str(save), "hi")
    assert r.exit_code == 0, r.output
    written = [save, ci / "summary.md", *(ci / "data").rglob("*.json*")]
    assert {p.name for p in written} >= {"saved.json", "summary.md", "trajectory.json", "turns.jsonl"}
    for text in [r.stdout, r.stderr, *(p.read_text() for p in written)]:
        assert CANARY not in text and KEYS[2] not in text
    assert MASK in r.stdout and MASK in save.read_text()


def test_the_in_memory_turn_keeps_the_text_and_the_logger_gets_it_masked(ci: Path) -> None:
    logged: list[str] = []

    class Log:
        def info(self, msg: str) -> None:
            logged.append(msg)

        warn = error = info

    script = ScriptedRunner({"claude": [f"key {CANARY}"]})
    agent = caw.Agent(provider="claude", runner=script, logger=Log(), data_dir=ci / "data")
    session = agent.start_session(traj_path=ci / "t.json")
    turn = session.send("hi")
    assert CANARY in turn.result and CANARY in session.trajectory.turns[0].result
    assert logged and not any(CANARY in m for m in logged)
    assert CANARY not in (ci / "t.json").read_text()
    assert CANARY not in session.redact(f"x {CANARY}")


def test_redact_off_keeps_the_text(monkeypatch: pytest.MonkeyPatch, ci: Path) -> None:
    monkeypatch.setenv("CAW_REDACT", "0")
    r = run_with_answer(monkeypatch, f"the key is {CANARY}", "--jsonl", "hi")
    assert r.exit_code == 0 and CANARY in r.stdout
