"""The typer-free parser of plain ``caw run`` lines gives ``execute`` what the typer app gives it (issue 18)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from caw.cli import app
from caw.cli.fastpath import RUN_OPTIONS, parse_run

PLAIN = [
    ["run", "hi"],
    ["run", "-"],
    ["run", "--quiet", "Say hello"],
    ["run", "-q", "--provider", "codex", "Say hello"],
    ["run", "Say hello", "--json"],
    ["run", "--jsonl", "-p", "claude,codex", "-m", "opus", "--effort", "high", "x"],
    ["run", "--tools=reader,writer", "--system-prompt", "be brief", "--cwd", "/tmp", "x"],
    ["run", "--data-dir", "d", "--max-wait", "6h", "--no-wait", "--timeout", "30s", "x"],
    ["run", "--idle-timeout", "5m", "--first-output-timeout=90s", "--save", "t.json", "--debug", "x"],
    ["run", "--resume", "caw1_abc", "more"],
    ["run", "--file", "-"],
    ["run", "-f", "prompt.txt", "--provider", "opencode", "--model", "fake/text"],
    ["run", "-p", "codex", "-p", "claude", "x"],  # the last one wins, as in click
    ["run", "--", "-x starts with a dash"],
    ["run", "-q", "--", "--help"],
    ["run"],
]

LEFT_TO_TYPER = [
    ["run", "--help"],
    ["run", "-h"],
    ["run", "--nope", "x"],
    ["run", "-qp", "codex", "x"],
    ["run", "-pcodex", "x"],
    ["run", "--provider"],
    ["run", "--provider", "--quiet", "x"],
    ["run", "--quiet=1", "x"],
    ["run", "two", "prompts"],
    ["run", "--version"],
    ["resume", "caw1_abc"],
    ["--version"],
    [],
]


def _typer_call(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    seen: list[tuple[Any, ...]] = []

    def fake_execute(args: Any, prompt: Any, handle: Any, context: Any) -> int:
        seen.append((args, prompt, handle))
        return 0

    # the module (``caw.cli.app`` as an attribute is the typer app itself)
    monkeypatch.setattr(sys.modules["caw.cli.app"], "execute", fake_execute)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_a_plain_run_line_parses_as_typer_parses_it(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_run(argv) == _typer_call(argv, monkeypatch)


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=lambda a: " ".join(a) or "(empty)")
def test_help_errors_and_the_other_commands_are_left_to_typer(argv: list[str]) -> None:
    assert parse_run(argv) is None


def test_the_option_table_is_the_typer_run_command() -> None:
    # click's classes by shape: typer vendors click in newer releases, so the classes move
    run = get_command(app).commands["run"]  # type: ignore[attr-defined]
    options = [p for p in run.params if p.param_type_name == "option"]
    spellings = {s: p for p in options for s in p.opts if s not in ("-h", "--help")}
    # typer names the keyword after the Python parameter: json_out is RunArgs.json
    assert {s: k for s, (k, _kind) in RUN_OPTIONS.items()} == {
        s: {"json_out": "json"}.get(p.name, p.name) for s, p in spellings.items()
    }
    assert {s for s, (_k, kind) in RUN_OPTIONS.items() if kind == "flag"} == {
        s for s, p in spellings.items() if p.is_flag
    }
    assert {k for _s, (k, kind) in RUN_OPTIONS.items() if kind == "path"} == {
        "file", "cwd", "data_dir", "save", "html", "schema",
    }  # fmt: skip
