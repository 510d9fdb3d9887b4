"""What the ``caw`` command says on failure: one clear line, each fact once (issue 12, message polish)."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import caw.text
from caw.cli import app, failure_for
from caw.errors import UsageLimitError
from caw.models import Trajectory, Turn


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_text_helpers_examples_hold() -> None:
    result = doctest.testmod(caw.text)
    assert result.attempted >= 4 and result.failed == 0


def test_an_invalid_handle_is_named_once(runner: CliRunner) -> None:
    r = runner.invoke(app, ["resume", "caw1_AAAAnotahandle", "hi"])
    assert r.exit_code == 2
    assert r.stderr.count("invalid resume handle") == 1


@pytest.mark.parametrize(("kind", "phrase"), [("usage", "hit its usage limit"), ("rate", "hit its rate limit")])
def test_a_limit_is_named_by_its_kind_without_repeating_usage(kind: str, phrase: str) -> None:
    line = failure_for(UsageLimitError("codex", "limited", kind=kind)).line
    assert phrase in line
    assert "usage usage" not in line and "rate usage" not in line


def test_a_long_limit_message_is_cut_after_a_whole_sentence() -> None:
    text = "You've hit your usage limit. " + "Upgrade to Pro for more, or wait for the window to reset. " * 8
    line = failure_for(UsageLimitError("codex", text, kind="usage")).line
    assert "You've hit your usage limit." in line
    assert "…" not in line.split("(", 1)[1].split(")", 1)[0]


def test_step_out_of_range_names_the_range(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    traj = Trajectory(turns=[Turn(input="hi", status="completed")])
    path.write_text(json.dumps(traj.to_dict(), default=str))
    r = runner.invoke(app, ["traj", "show", str(path), "--step", "9"])
    assert r.exit_code == 2
    assert "pick a step from 1 to 1" in r.stderr and "1..N" not in r.stderr


def _main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from caw.cli import main

    monkeypatch.setattr("sys.argv", ["caw", *argv])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0)


def test_a_prompt_that_looks_like_an_option_gets_one_line_that_says_to_use_dashdash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(monkeypatch, "run", "-x hi") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "caw: error: no such option -x" in err and "--" in err


def test_main_keeps_typer_exit_codes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(monkeypatch, "--version") == 0
    assert capsys.readouterr().out.startswith("caw ")
    assert _main(monkeypatch, "run", "--bogus-flag") == 2


# ---- providers that cannot start -------------------------------------------------------------------------
@pytest.fixture
def no_clis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with no agent CLI on it, and no CAW_<NAME>_BIN."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for var in ("CAW_PROVIDER", "CAW_CLAUDE_BIN", "CAW_CODEX_BIN", "CAW_OPENCODE_BIN"):
        monkeypatch.delenv(var, raising=False)


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("caw: error: ")]


@pytest.mark.usefixtures("no_clis")
def test_no_cli_installed_is_one_short_line_with_each_install_hint_once(runner: CliRunner) -> None:
    r = runner.invoke(app, ["run", "hi", "--provider", "claude,codex,opencode"])
    assert r.exit_code == 3
    assert _error_lines(r.stderr) == [
        "caw: error: no agent CLI is installed (tried claude, codex, opencode) — install one: "
        "npm install -g @anthropic-ai/claude-code | @openai/codex | opencode-ai"
    ]
    for package in ("@anthropic-ai/claude-code", "@openai/codex", "opencode-ai"):
        assert r.stderr.count(package) == 1, r.stderr


@pytest.mark.usefixtures("no_clis")
def test_a_bin_variable_pointing_nowhere_is_named_not_reported_as_missing_from_path(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAW_CLAUDE_BIN", "/nowhere/claude")
    r = runner.invoke(app, ["run", "hi", "--provider", "claude"])
    assert r.exit_code == 3
    (line,) = _error_lines(r.stderr)
    assert "CAW_CLAUDE_BIN=/nowhere/claude is not an executable file" in line
    assert "not found" not in line and "not installed" not in line
    r = runner.invoke(app, ["run", "hi", "--provider", "claude,codex"])
    (line,) = _error_lines(r.stderr)
    assert "claude: CAW_CLAUDE_BIN=/nowhere/claude is not an executable file; codex: not installed" in line
    assert line.endswith("— fix or unset CAW_CLAUDE_BIN; install one: npm install -g @openai/codex")


# ---- saved trajectories ------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc", ["{}", '{"name": "x"}', "[]", "3"])
def test_traj_show_refuses_json_that_is_not_a_trajectory(runner: CliRunner, tmp_path: Path, doc: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(doc)
    r = runner.invoke(app, ["traj", "show", str(path)])
    assert r.exit_code == 2
    (line,) = _error_lines(r.stderr)
    assert "is not a caw trajectory" in line and r.stdout == ""


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("soon", "--max-wait 'soon' is not a duration"),
        ("1h1h", "--max-wait '1h1h' is not a duration (a unit appears twice)"),
        ("-5", "--max-wait '-5' is not a duration (must be a non-negative number of seconds)"),
    ],
)
def test_a_bad_duration_gives_its_examples_once(runner: CliRunner, value: str, what: str) -> None:
    r = runner.invoke(app, ["run", "hi", "--max-wait", value])
    assert r.exit_code == 2
    assert _error_lines(r.stderr) == [f"caw: error: {what} — use e.g. 30s, 10m, 6h or 1h30m, or plain seconds"]


@pytest.mark.usefixtures("no_clis")
def test_doctor_names_a_bin_variable_pointing_nowhere(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAW_CLAUDE_BIN", "/nowhere/claude")
    r = runner.invoke(app, ["doctor", "--provider", "claude"])
    assert r.exit_code == 3
    (line,) = _error_lines(r.stderr)
    assert line.endswith("— CAW_CLAUDE_BIN=/nowhere/claude is not an executable file: fix or unset it")
    from caw.providers.health import check_health

    health = check_health("claude", live=True)
    assert health.live_detail == "CAW_CLAUDE_BIN=/nowhere/claude is not an executable file"


def test_a_limit_without_a_reset_time_does_not_suggest_a_longer_max_wait() -> None:
    line = failure_for(UsageLimitError("codex", "limited", kind="usage"), handle="caw1_H").line
    assert "the reset time is unknown — resume after the reset with `caw resume caw1_H` (exit 75" in line
    assert "--max-wait" not in line
