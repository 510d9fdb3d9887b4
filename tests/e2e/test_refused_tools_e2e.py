"""Issue 12 item 5 with the real binaries: a turn whose tool uses the CLI refused says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import caw
from tests.e2e.harness import LiveFactory, live_factory
from tests.fakes.replies import Text, ToolCall


@pytest.fixture
def claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("claude", tmp_path, monkeypatch)


@pytest.fixture
def opencode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("opencode", tmp_path, monkeypatch)


def test_claude_default_permissions_refuse_a_write_and_the_turn_counts_it(claude: LiveFactory) -> None:
    run = claude()
    run.server.enqueue(ToolCall("touch made-by-claude.txt"), Text("I tried."))
    traj = run.agent(auto_wait=False).completion("Fix the failing test")
    turn = traj.turns[0]
    assert turn.status == "completed" and not (run.work / "made-by-claude.txt").exists()
    assert turn.denied_tools == ["Bash"] and traj.denied_tool_uses == 1


def test_claude_with_exec_granted_refuses_nothing(claude: LiveFactory) -> None:
    run = claude()
    run.server.enqueue(ToolCall("touch made-by-claude.txt"), Text("Done."))
    tools = caw.ToolGroup.READER | caw.ToolGroup.WRITER | caw.ToolGroup.EXEC
    turn = run.agent(auto_wait=False, tools=tools).completion("Fix the failing test").turns[0]
    assert turn.denied_tools == [] and (run.work / "made-by-claude.txt").exists()


def test_caw_run_warns_about_refused_tool_uses_and_json_has_the_count(claude: LiveFactory) -> None:
    run = claude()
    run.server.enqueue(ToolCall("touch made-by-claude.txt"), Text("I tried."))
    r = subprocess.run(
        [sys.executable, "-m", "caw", "run", "--provider", "claude", "--json", "Fix the failing test"],
        env=dict(os.environ),
        cwd=run.work,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["denied_tool_uses"] == 1
    assert "caw: warning: claude refused 1 tool use (Bash) — allow them with --tools reader,exec" in r.stderr


def test_opencode_auto_rejected_permission_is_counted(opencode: LiveFactory) -> None:
    run = opencode()
    run.server.enqueue(ToolCall("cat /etc/hostname"), Text("Could not."))
    turn = run.agent(auto_wait=False).completion("Show /etc/hostname.").turns[0]
    assert turn.denied_tools == ["bash"]
