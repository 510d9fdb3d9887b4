"""A trajectory as the JSON document the viewer page renders (the report embeds it, ``caw view`` serves it).

Long texts are cut to a preview in the document; the full text goes to ``Page.fulls`` (the report embeds each
in an element of its own, parsed only when "show all" is clicked; the server answers it on request). The
preview shrinks as the trajectory grows, so a 10,000-tool-call, 50 MB trajectory gives a document of a few
megabytes that the browser parses in well under a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caw.models import TextBlock, ThinkingBlock, ToolUse, Trajectory, Turn
from caw.viewer.source import Source, SourceError, resolve_subagent, subagent_link
from caw.viewer.summary import summarize

#: the longest preview of one text in the page document (characters)
PREVIEW_CHARS = 2000
#: the shortest preview, however large the trajectory
MIN_PREVIEW_CHARS = 160
#: what all the previews of one page may add up to (characters), before it shrinks each preview
PAGE_BUDGET_CHARS = 6_000_000
#: subagents nested deeper than this are linked, not rendered
MAX_DEPTH = 4


@dataclass
class Page:
    """The document (``data``) and the full texts its previews refer to by index (``fulls``)."""

    data: dict[str, Any]
    fulls: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, preview: int) -> None:
        self.preview = preview
        self.fulls: list[str] = []

    def text(self, value: str) -> dict[str, Any]:
        """``{"t": preview}``, plus ``n`` (its length) and ``f`` (index of the full text) when cut."""
        if len(value) <= self.preview:
            return {"t": value}
        self.fulls.append(value)
        cut = value[: self.preview]
        return {"t": cut, "n": len(value), "f": len(self.fulls) - 1}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count_texts(traj: Trajectory) -> int:
    return sum(1 + 2 * len(t.output) for t in traj.turns) or 1


def build_page(source: Source, *, preview: int | None = None) -> Page:
    """The page document of ``source`` (with its subagents nested under the tool calls that ran them)."""
    chars = preview if preview is not None else _preview_for(source.trajectory)
    builder = _Builder(chars)
    data = _trajectory(builder, source, depth=0)
    data["preview_chars"] = chars
    return Page(data, builder.fulls)


def _preview_for(traj: Trajectory) -> int:
    return max(MIN_PREVIEW_CHARS, min(PREVIEW_CHARS, PAGE_BUDGET_CHARS // _count_texts(traj)))


def _trajectory(b: _Builder, source: Source, depth: int) -> dict[str, Any]:
    traj = source.trajectory
    s = summarize(traj)
    raw_turns = _list(source.raw.get("turns"))
    return {
        "session_id": traj.session_id,
        "label": source.label,
        "header": {
            "provider": s.provider,
            "model": s.model,
            "outcome": s.outcome,
            "turns": s.turns,
            "tool_calls": s.tool_calls,
            "tool_errors": s.tool_errors,
            "usage": s.usage.model_dump(mode="json"),
            "duration_ms": s.duration_ms,
            "wall_ms": s.wall_ms,
            "waited_ms": s.waited_ms,
            "created_at": traj.created_at.isoformat(),
            "completed_at": traj.completed_at.isoformat() if traj.completed_at else None,
            "reasoning": traj.reasoning,
            "cwd": traj.cwd,
            "resume_handle": traj.resume_handle,
            "pending_message": traj.pending_message,
            "usage_limited": traj.usage_limited,
            "system_prompt": b.text(traj.system_prompt) if traj.system_prompt else None,
            "denied_tool_uses": traj.denied_tool_uses,
            "subagent_usage": _subagent_usage(traj),
            "metadata": traj.model_dump(mode="json", include={"metadata"})["metadata"],
        },
        "attempts": [a.model_dump(mode="json") for a in s.attempts],
        "waits": [
            {
                "turn": w.turn,
                "kind": w.kind,
                "resets_at": w.resets_at.isoformat() if w.resets_at else None,
                "waited_ms": w.waited_ms,
                "message": w.message,
            }
            for w in s.waits
        ],
        "notes": list(traj.notes),
        "turns": [
            _turn(b, turn, raw_turns[i] if i < len(raw_turns) and isinstance(raw_turns[i], dict) else {}, source, depth)
            for i, turn in enumerate(traj.turns)
        ],
    }


def _turn(b: _Builder, turn: Turn, raw: dict[str, Any], source: Source, depth: int) -> dict[str, Any]:
    raw_blocks = _list(raw.get("output"))
    blocks: list[dict[str, Any]] = []
    for i, block in enumerate(turn.output):
        raw_block = raw_blocks[i] if i < len(raw_blocks) and isinstance(raw_blocks[i], dict) else {}
        if isinstance(block, TextBlock):
            blocks.append({"k": "text", **b.text(block.text)})
        elif isinstance(block, ThinkingBlock):
            blocks.append({"k": "thinking", **b.text(block.text)})
        elif isinstance(block, ToolUse):
            blocks.append(_tool(b, block, raw_block, source, depth))
    return {
        "input": b.text(turn.input),
        "status": turn.status,
        "provider": turn.provider,
        "model": turn.model,
        "usage": turn.usage.model_dump(mode="json"),
        "duration_ms": turn.duration_ms,
        "started_at": turn.started_at.isoformat(),
        "error": turn.error.model_dump(mode="json") if turn.error else None,
        "limit": turn.limit.model_dump(mode="json") if turn.limit else None,
        "retries": turn.retries,
        "denied_tools": list(turn.denied_tools),
        "blocks": blocks,
    }


def _tool(b: _Builder, use: ToolUse, raw: dict[str, Any], source: Source, depth: int) -> dict[str, Any]:
    from caw.text import clip

    args = json.dumps(use.arguments, ensure_ascii=False, indent=1) if use.arguments else ""
    out: dict[str, Any] = {
        "k": "tool",
        "id": use.id,
        "name": use.name,
        "summary": clip(_summary_argument(use.arguments), 140),
        "args": b.text(args),
        "output": b.text(use.output) if use.output is not None else None,
        "err": use.is_error,
    }
    sub_usage = getattr(use, "subagent_usage", None)
    if sub_usage is not None:
        out["sub_usage"] = sub_usage.model_dump(mode="json")
    link = subagent_link({**use.model_dump(mode="json"), **raw})
    if link is not None:
        if depth >= MAX_DEPTH:
            out["sub_error"] = f"nested deeper than {MAX_DEPTH} subagents: not shown"
        else:
            try:
                sub = resolve_subagent(link, source.base_dir)
                out["sub"] = _trajectory(b, sub, depth + 1)
            except SourceError as exc:
                out["sub_error"] = f"subagent trajectory not found: {exc}"
    return out


def _subagent_usage(traj: Trajectory) -> dict[str, Any] | None:
    """What the subagents used (``Trajectory.subagent_usage``, issue 15), None when there were none."""
    total = getattr(traj, "subagent_usage", None)
    if total is None or not any(getattr(u, "subagent", None) for t in traj.turns for u in t.tool_uses):
        return None
    return dict(total.model_dump(mode="json"))


def _summary_argument(arguments: dict[str, Any]) -> str:
    for key in ("command", "cmd", "file_path", "path", "pattern", "url", "query", "description", "prompt"):
        value = arguments.get(key)
        if isinstance(value, str) and value:
            return value.replace("\n", " ")
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return " ".join(value)
    return json.dumps(arguments, ensure_ascii=False) if arguments else ""


def page_version(session_dir: Path) -> str:
    """Changes whenever the session's files do: the live page polls it."""
    parts = []
    for name in ("trajectory.json", "turns.jsonl"):
        try:
            st = (session_dir / name).stat()
            parts.append(f"{st.st_mtime_ns}-{st.st_size}")
        except OSError:
            parts.append("-")
    return ".".join(parts)
