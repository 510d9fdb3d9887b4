"""Hand-built trajectories for the viewer tests: every kind of block, a limit wait, fallback attempts, an
injected ``<script>``, a subagent linked from a tool call (issue 15's link, written as a newer caw would),
and a 10,000-tool-call trajectory. Fixed timestamps, so the terminal snapshots do not move."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from caw.models import (
    Attempt,
    LimitInfo,
    TextBlock,
    ThinkingBlock,
    ToolUse,
    Trajectory,
    Turn,
    TurnError,
    UsageStats,
)

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
#: what an injected script would set if it ever ran
PWNED = "window.__caw_pwned"
INJECTION = (
    '<script>window.__caw_pwned = 1</script><img src=x onerror="window.__caw_pwned = 2"></script><!-- & &amp; \u2028'
)


def sample_trajectory(session_id: str = "sample0001") -> Trajectory:
    long_output = "\n".join(f"test_{i:03d} PASSED" for i in range(1, 121))
    turns = [
        Turn(
            input="Run the tests and fix what fails",
            status="completed",
            provider="claude",
            model="sonnet",
            started_at=T0,
            duration_ms=8400,
            usage=UsageStats(input_tokens=1200, output_tokens=300, cache_read_tokens=5000, cost_usd=0.0123),
            output=[
                ThinkingBlock(text="The user wants the tests run first.\nThen a fix."),
                ToolUse(id="tu1", name="Bash", arguments={"command": "pytest -q"}, output=long_output),
                ToolUse(id="tu2", name="Bash", arguments={"command": "cat notes.html"}, output=INJECTION),
                ToolUse(
                    id="tu3",
                    name="Read",
                    arguments={"file_path": "/srv/app/missing.py"},
                    output="File does not exist.",
                    is_error=True,
                ),
                TextBlock(text="All 120 tests pass; notes.html holds markup."),
            ],
        ),
        Turn(
            input="Now summarise the repository",
            status="rate_limited",
            provider="claude",
            model="sonnet",
            started_at=T0 + timedelta(minutes=2),
            duration_ms=900,
            limit=LimitInfo(kind="five_hour", resets_at=T0 + timedelta(hours=1), message="5-hour limit reached"),
            error=TurnError(type="UsageLimitError", reason="rate_limited", message="5-hour limit reached"),
        ),
        Turn(
            input="Now summarise the repository",
            status="completed",
            provider="claude",
            model="sonnet",
            started_at=T0 + timedelta(hours=1, minutes=1),
            duration_ms=5100,
            usage=UsageStats(input_tokens=2200, output_tokens=410, cost_usd=0.0301),
            output=[
                ToolUse(
                    id="tu4",
                    name="Task",
                    arguments={"description": "survey the tree", "prompt": "List modules"},
                    output="caw has 9 layers.",
                ),
                TextBlock(text="caw is a library over three agent CLIs."),
            ],
        ),
    ]
    return Trajectory(
        agent="claude",
        model="sonnet",
        session_id=session_id,
        created_at=T0,
        completed_at=T0 + timedelta(hours=1, minutes=2),
        cwd="/srv/app",
        turns=turns,
        usage_limited=True,
        attempts=[
            Attempt(provider="codex", reason="not_installed", error="codex: not found", started_at=T0),
            Attempt(provider="claude", reason="answered", started_at=T0, duration_ms=8400),
        ],
        resume_handle="caw1_SAMPLEHANDLE",
        metadata={"job": "ci-42"},
    )


def subagent_trajectory() -> Trajectory:
    return Trajectory(
        agent="codex",
        model="gpt-5",
        session_id="sub0001",
        created_at=T0 + timedelta(hours=1, minutes=1),
        turns=[
            Turn(
                input="List modules",
                status="completed",
                provider="codex",
                model="gpt-5",
                started_at=T0 + timedelta(hours=1, minutes=1),
                duration_ms=2000,
                usage=UsageStats(input_tokens=300, output_tokens=40, cost_usd=0.002),
                output=[
                    ToolUse(id="s1", name="exec_command", arguments={"cmd": ["ls", "caw"]}, output="agent.py\ncli\n"),
                    TextBlock(text="caw has 9 layers."),
                ],
            )
        ],
    )


def write_session(
    data_dir: Path, traj: Trajectory, *, subagent: Trajectory | None = None, link: str | None = None
) -> Path:
    """Save ``traj`` as a session of ``data_dir``; with ``subagent``, save it where caw does (issue 15:
    ``<session dir>/subagents/sessions/<id>/trajectory.json``) and link it from the tool call named Task by
    ``ToolUse.subagent`` (``link``: that absolute path unless given)."""
    d = data_dir / "sessions" / traj.session_id
    d.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = traj.to_dict()
    if subagent is not None:
        sub_dir = d / "subagents" / "sessions" / subagent.session_id
        sub_dir.mkdir(parents=True, exist_ok=True)
        (sub_dir / "trajectory.json").write_text(json.dumps(subagent.to_dict()), encoding="utf-8")
        for turn in doc["turns"]:
            for block in turn["output"]:
                if block.get("name") == "Task":
                    block["subagent"] = link or str(sub_dir / "trajectory.json")
                    block["subagent_usage"] = subagent.usage.model_dump(mode="json")
    (d / "trajectory.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return d


def big_trajectory(tool_calls: int = 10_000, output_chars: int = 5_000, turns: int = 50) -> Trajectory:
    """``tool_calls`` tool calls over ``turns`` turns, each output ``output_chars`` long (50 MB by default)."""
    per_turn = tool_calls // turns
    line = "x" * 79 + "\n"
    body = (line * (output_chars // len(line) + 1))[:output_chars]
    out: list[Turn] = []
    for t in range(turns):
        blocks: list[TextBlock | ThinkingBlock | ToolUse] = []
        for i in range(per_turn):
            n = t * per_turn + i
            blocks.append(
                ToolUse(
                    id=f"c{n}",
                    name="Bash",
                    arguments={"command": f"step {n}"},
                    output=f"#{n}\n{body}",
                    is_error=n % 97 == 0,
                )
            )
        blocks.append(TextBlock(text=f"turn {t + 1} done"))
        out.append(
            Turn(
                input=f"batch {t + 1}",
                status="completed",
                provider="codex",
                started_at=T0 + timedelta(minutes=t),
                duration_ms=1000 + t,
                usage=UsageStats(input_tokens=1000 + 10 * t, output_tokens=100, cost_usd=0.001),
                output=blocks,
            )
        )
    return Trajectory(agent="codex", model="gpt-5", session_id="big10k", created_at=T0, turns=out)
