"""Issue 12 item 5: a tool use the CLI refused is counted on the turn, warned about, and in ``--json``."""

from __future__ import annotations

import io
import json
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from caw.cli.live import LiveView
from caw.cli.views import Outcome, refusal_warning
from caw.events import Event, ResultEvent, ToolDeniedEvent, ToolResultEvent, event_summary
from caw.models import ToolGroup, Trajectory, Turn
from caw.providers.claude import ClaudeParser
from caw.providers.codex import CodexParser, CodexTurnContext
from caw.providers.opencode import OpencodeParser
from tests.unit.parse_helpers import replay, replay_fixture
from tests.unit.test_cli import Script


def claude_lines(denials: list[dict[str, Any]]) -> list[str]:
    frames: list[dict[str, Any]] = [
        {"type": "system", "subtype": "init", "session_id": "s1", "model": "claude-sonnet"},
        {
            "type": "assistant",
            "message": {
                "id": "m1",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"file_path": "/w/a"}}],
            },
        },
        {
            "type": "user",
            "message": {
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "content": "Claude requested permissions to write to /w/a, but you haven't granted it yet.",
                    }
                ]
            },
        },
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "result": "I could not write the file.",
            "usage": {"input_tokens": 10, "output_tokens": 5},
            "permission_denials": denials,
        },
    ]
    return [json.dumps(f) for f in frames]


def test_claude_permission_denials_are_counted_on_a_completed_turn() -> None:
    denial = {"tool_name": "Write", "tool_use_id": "toolu_1", "tool_input": {"file_path": "/w/a"}}
    events, turn = replay(ClaudeParser(), claude_lines([denial]))
    [refused] = [e for e in events if isinstance(e, ToolDeniedEvent)]
    assert (refused.id, refused.name, refused.provider) == ("toolu_1", "Write", "claude")
    assert "/w/a" in refused.message and "refused: Write" in event_summary(refused)
    assert turn.denied_tools == ["Write"]
    assert isinstance(events[-1], ResultEvent)  # still a completed turn: the count is what tells


def test_claude_without_denials_counts_none() -> None:
    _, turn = replay(ClaudeParser(), claude_lines([]))
    assert turn.denied_tools == []


def test_opencode_auto_rejected_permission_is_a_refused_tool_use() -> None:
    events, turn = replay_fixture(OpencodeParser(), "opencode", "permission_rejected")
    assert turn.denied_tools == ["bash"]
    [refused] = [e for e in events if isinstance(e, ToolDeniedEvent)]
    assert "rejected permission" in refused.message
    # the refusal follows the tool's own (error) result
    kinds = [type(e) for e in events if isinstance(e, ToolResultEvent | ToolDeniedEvent)]
    assert kinds == [ToolResultEvent, ToolDeniedEvent]


def test_opencode_failing_tool_is_not_a_refusal() -> None:
    _, turn = replay_fixture(OpencodeParser(), "opencode", "tool")
    assert turn.denied_tools == []


def codex(items: list[dict[str, Any]]) -> Turn:
    lines = [json.dumps({"type": "thread.started", "thread_id": "t1"})]
    lines += [json.dumps({"type": "item.completed", "item": item}) for item in items]
    lines.append(json.dumps({"type": "turn.completed", "usage": {"input_tokens": 1, "output_tokens": 1}}))
    _, turn = replay(CodexParser(CodexTurnContext(codex_home=None, tz=None)), lines)
    return turn


def test_codex_mcp_call_needing_an_approval_and_declined_items_are_refusals() -> None:
    turn = codex(
        [
            {
                "id": "item_1",
                "type": "mcp_tool_call",
                "server": "echo",
                "tool": "echo",
                "arguments": {},
                "result": None,
                "error": {"message": "MCP tool call requires approval, but approval policy is never"},
                "status": "failed",
            },
            {"id": "item_2", "type": "command_execution", "command": "rm -rf /", "status": "declined"},
            {  # an ordinary failing command is the command's failure, not a refusal
                "id": "item_3",
                "type": "command_execution",
                "command": "false",
                "aggregated_output": "",
                "exit_code": 1,
                "status": "failed",
            },
        ]
    )
    assert turn.denied_tools == ["mcp__echo__echo", "exec_command"]


def test_the_trajectory_totals_refusals_and_round_trips() -> None:
    traj = Trajectory(turns=[Turn(input="a", denied_tools=["Edit", "Bash"]), Turn(input="b", denied_tools=["Edit"])])
    data = traj.to_dict()
    assert data["denied_tool_uses"] == 3 and data["turns"][0]["denied_tools"] == ["Edit", "Bash"]
    assert Trajectory.from_dict(data).denied_tool_uses == 3


# ---- the warning --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("denied", "granted", "line"),
    [
        (
            ["Edit", "Bash"],
            None,
            "claude refused 2 tool uses (Edit, Bash) — allow them with --tools reader,writer,exec",
        ),
        (["Write"], ToolGroup.EXEC, "claude refused 1 tool use (Write) — allow them with --tools writer,exec"),
        (["Edit"], ToolGroup.ALL, "claude refused 1 tool use (Edit) — its own permission settings refused them"),
        (["mystery"], None, "claude refused 1 tool use (mystery) — its own permission settings refused them"),
    ],
)
def test_refusal_warning_names_the_tools_and_the_flag(denied: list[str], granted: ToolGroup | None, line: str) -> None:
    assert refusal_warning(Turn(input="x", provider="claude", denied_tools=denied), granted) == line
    assert refusal_warning(Turn(input="x", provider="claude"), granted) is None


@dataclass
class Refusing(Script):
    """The scripted CLI, whose turns end with the CLI having refused ``denied``."""

    denied: list[str] = field(default_factory=lambda: ["Edit", "Bash"])

    def __call__(self, *args: Any, **kw: Any) -> Generator[Event, None, Turn]:
        turn = yield from super().__call__(*args, **kw)
        turn.denied_tools = list(self.denied)
        return turn


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Refusing:
    for var in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "CAW_MODEL", "CAW_EFFORT", "CAW_MAX_WAIT", "CAW_AUTOWAIT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAW_PROVIDER", "claude")
    return Refusing()


def test_fix_the_failing_test_with_refused_writes_warns_on_stderr(refusing: Refusing) -> None:
    r = refusing.invoke("run", "Fix the failing test")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "the answer\n"
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("caw: warning: ")]
    assert warnings == [
        "caw: warning: claude refused 2 tool uses (Edit, Bash) — allow them with --tools reader,writer,exec"
    ]


def test_refused_tool_uses_are_a_field_in_json(refusing: Refusing) -> None:
    r = refusing.invoke("run", "--json", "--tools", "reader", "Fix the failing test")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["denied_tool_uses"] == 2 and data["turns"][-1]["denied_tools"] == ["Edit", "Bash"]
    assert "--tools reader,writer,exec" in r.stderr


def test_no_refusal_no_warning(refusing: Refusing) -> None:
    refusing.denied = []
    r = refusing.invoke("run", "hello")
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_the_live_view_shows_a_refusal_as_it_happens() -> None:
    buf = io.StringIO()
    view = LiveView(Console(file=buf, force_terminal=True, width=100, color_system=None))
    view.start("claude")
    view.event(ToolDeniedEvent(provider="claude", id="toolu_1", name="Write", message='{"file_path": "/w/a"}'))
    view.finish(Outcome(exit_code=0))
    assert "tool use refused: Write" in buf.getvalue()
