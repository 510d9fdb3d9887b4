"""What a subagent call leaves behind, and how the parent's ``ToolUse`` is linked to it.

The subagent tool itself needs ``Agent`` and is built in ``caw.agent`` (rank 8); it hands this layer plain
callables and records each run here. After a turn the session links every ``ToolUse`` of a subagent tool to
the run with the same arguments (in call order): ``ToolUse.subagent`` is the subagent's trajectory file (or
its session id when nothing is saved), ``ToolUse.subagent_usage`` what its turns used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caw.models import ToolUse, Turn, UsageStats


@dataclass
class SubagentRun:
    """One finished subagent call."""

    server: str
    tool: str
    arguments: dict[str, Any]
    #: the trajectory file, or the subagent's session id when it had no data_dir
    link: str
    provider: str
    usage: UsageStats = field(default_factory=UsageStats)
    linked: bool = False


def tool_matches(use_name: str, server: str, tool: str) -> bool:
    """Whether a CLI's name for a tool use is ``tool`` of ``server`` (``mcp__s__t``, ``s_t`` or ``t``)."""
    return use_name in (tool, f"mcp__{server}__{tool}", f"{server}_{tool}")


class SubagentLog:
    """The runs of one session's subagent tools (thread-safe: tools run on worker threads)."""

    def __init__(self) -> None:
        self._runs: list[SubagentRun] = []
        self._lock = threading.Lock()
        #: the calling session's directory (None without a data_dir): subagents keep theirs under it
        self.parent_dir: Path | None = None

    def add(self, run: SubagentRun) -> None:
        with self._lock:
            self._runs.append(run)

    @property
    def runs(self) -> list[SubagentRun]:
        with self._lock:
            return list(self._runs)

    def link(self, turn: Turn) -> int:
        """Link ``turn``'s subagent tool uses to their runs; how many were linked."""
        linked = 0
        with self._lock:
            for block in turn.output:
                if not isinstance(block, ToolUse) or block.subagent is not None:
                    continue
                run = self._match(block)
                if run is not None:
                    run.linked = True
                    block.subagent = run.link
                    block.subagent_usage = run.usage
                    linked += 1
        return linked

    def _match(self, use: ToolUse) -> SubagentRun | None:
        candidates = [r for r in self._runs if not r.linked and tool_matches(use.name, r.server, r.tool)]
        for run in candidates:
            if run.arguments == use.arguments:
                return run
        return candidates[0] if candidates else None


__all__ = ["SubagentLog", "SubagentRun", "tool_matches"]
