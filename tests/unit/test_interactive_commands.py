"""The interactive command lines share the scripted adapters' configuration mapping (no processes)."""

from __future__ import annotations

from pathlib import Path

from caw.interactive.commands import interactive_command
from caw.models import MCPServer
from caw.providers import get_provider
from caw.providers.base import RunConfig


def test_codex_interactive_profile_keeps_a_long_system_prompt_at_the_top_level(tmp_path: Path) -> None:
    """A long system prompt goes into the profile file; after an MCP [table] TOML would nest it in the table."""
    config = RunConfig(
        system_prompt="be brief " * 20_000,
        mcp_servers=(MCPServer(name="echo", command="python3", args=["s.py"], env={"TOKEN": "secret"}),),
        env={"CODEX_HOME": str(tmp_path)},
        cwd=str(tmp_path),
    )
    cmd = interactive_command(get_provider("codex"), "/usr/bin/codex", config, "hello")
    try:
        [profile] = cmd.temp_paths
        lines = profile.read_text().splitlines()
        first_table = next(i for i, line in enumerate(lines) if line.startswith("["))
        keys = [i for i, line in enumerate(lines) if line.startswith("developer_instructions = ")]
        assert keys and keys[0] < first_table, lines[:3]
        assert cmd.argv[-2:] == ["--", "hello"]
        assert "secret" not in " ".join(cmd.argv)
    finally:
        cmd.cleanup()


def test_codex_interactive_respects_a_sandbox_given_in_extra_args(tmp_path: Path) -> None:
    config = RunConfig(extra_args=("-s", "danger-full-access"), env={"CODEX_HOME": str(tmp_path)}, cwd=str(tmp_path))
    cmd = interactive_command(get_provider("codex"), "/usr/bin/codex", config, "")
    assert cmd.argv.count("-s") == 1  # codex rejects `-s` twice


def test_the_interactive_cli_gets_pwd_naming_its_working_directory(tmp_path: Path) -> None:
    """Issue 12: opencode's UI opens the project named by $PWD, not its working directory."""
    cmd = interactive_command(get_provider("opencode"), "/usr/bin/opencode", RunConfig(cwd=str(tmp_path)), "")
    assert cmd.cwd == str(tmp_path) and cmd.env["PWD"] == str(tmp_path)
