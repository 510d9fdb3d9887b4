"""Reports of the ``caw`` command: a saved trajectory (``caw traj show``), the doctor and sessions tables."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from caw.cli.views import clip, fold, local_and_utc, seconds_text, tool_call_text, usage_text
from caw.models import TextBlock, ThinkingBlock, ToolUse, Trajectory, Turn

Mode = Literal["live", "plain", "quiet", "json", "jsonl"]

#: lines of a tool's output shown in the live view and in ``caw traj show`` before folding
FOLD_LINES = 3


# ---- saved trajectories (caw traj show) -----------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One numbered item of a trajectory: a user message or one output block of a turn.

    Steps are numbered from 1 across the whole trajectory, in the order they happened: turn 1's user
    message, then each of its blocks (thinking, text, tool call with its output), then turn 2's message...
    """

    number: int
    turn_index: int  # 1-based
    kind: Literal["user", "text", "thinking", "tool"]
    title: str
    body: str


def steps(traj: Trajectory) -> list[Step]:
    out: list[Step] = []
    for t_index, turn in enumerate(traj.turns, start=1):
        out.append(Step(len(out) + 1, t_index, "user", "user", turn.input))
        for block in turn.output:
            n = len(out) + 1
            if isinstance(block, TextBlock):
                out.append(Step(n, t_index, "text", "text", block.text))
            elif isinstance(block, ThinkingBlock):
                out.append(Step(n, t_index, "thinking", "thinking", block.text))
            elif isinstance(block, ToolUse):
                out.append(Step(n, t_index, "tool", _tool_title(block), block.output or ""))
    return out


def _tool_title(use: ToolUse) -> str:
    status = " (error)" if use.is_error else ("" if use.output is not None else " (no result)")
    return f"tool {tool_call_text(use.name, use.arguments)}{status}"


def render_trajectory(console: Console, traj: Trajectory, *, source: str = "") -> None:
    """A readable overview: header, fallback attempts, each turn with its steps (tool output folded)."""
    title = f"caw trajectory {traj.session_id}" + (f" ({source})" if source else "")
    console.print(Text(title, style="bold"))
    facts = [
        ("provider", traj.agent or "-"),
        ("model", traj.model or next((t.model for t in reversed(traj.turns) if t.model), None) or "-"),
        ("effort", traj.reasoning or "-"),
        ("created", local_and_utc(traj.created_at)),
        ("cwd", traj.cwd or "-"),
        ("turns", str(len(traj.turns))),
        ("usage", f"{usage_text(traj.usage)} · {seconds_text(traj.duration_ms)}"),
    ]
    if traj.resume_handle:
        facts.append(("resume", f"caw resume {traj.resume_handle}"))
    if traj.usage_limited:
        facts.append(("limits", "this conversation ran into a usage limit"))
    if traj.pending_message is not None:
        facts.append(("pending", clip(traj.pending_message, 100) + " (not answered yet)"))
    for label, value in facts:
        console.print(Text.assemble((f"  {label:<9}", "dim"), value))
    for note in traj.notes:
        console.print(Text(f"  note     {note}", style="yellow"))
    if traj.attempts:
        console.print(Text("attempts", style="bold"))
        for a in traj.attempts:
            line = f"  {a.provider}: {a.reason}"
            if a.resets_at is not None:
                line += f", resets {local_and_utc(a.resets_at)}"
            if a.error:
                line += f" ({clip(a.error, 120)})"
            console.print(Text(line, style="green" if a.reason == "answered" else "yellow"))
    by_turn: dict[int, list[Step]] = {}
    for step in steps(traj):
        by_turn.setdefault(step.turn_index, []).append(step)
    show_cmd = f"caw traj show {shlex.quote(source) if source else 'FILE'}"
    for t_index, turn in enumerate(traj.turns, start=1):
        _render_turn(console, t_index, turn, by_turn.get(t_index, []), show_cmd)


def _render_turn(console: Console, index: int, turn: Turn, turn_steps: list[Step], show_cmd: str) -> None:
    status_style = "green" if turn.status == "completed" else "red"
    head = Text.assemble(
        (f"turn {index}", "bold"),
        " · ",
        (turn.status, status_style),
        f" · {turn.provider or '-'}" + (f" ({turn.model})" if turn.model else ""),
        f" · {usage_text(turn.usage)} · {seconds_text(turn.duration_ms)}",
    )
    console.print(head)
    if turn.error is not None:
        console.print(Text(f"  error: {turn.error.type} ({turn.error.reason}): {turn.error.message}", style="red"))
    if turn.limit is not None:
        when = local_and_utc(turn.limit.resets_at) if turn.limit.resets_at else "unknown"
        kind = turn.limit.kind + ("" if turn.limit.waitable else ", not waitable")
        console.print(Text(f"  limit: {kind}, resets {when}", style="yellow"))
    if turn.retries:
        console.print(Text(f"  the CLI retried {turn.retries} time(s) on its own", style="dim"))
    for step in turn_steps:
        _render_step_folded(console, step, show_cmd)


_STEP_STYLE = {"user": "bold blue", "text": "", "thinking": "dim italic", "tool": "cyan"}


def _render_step_folded(console: Console, step: Step, show_cmd: str) -> None:
    shown, more = fold(step.body)
    label = Text.assemble((f"  [{step.number}] ", "dim"), (step.title, _STEP_STYLE[step.kind] or "bold"))
    console.print(label)
    for line in shown:
        console.print(Text(f"      {line}", style="dim" if step.kind == "tool" else ""))
    if more:
        console.print(Text(f"      … +{more} lines ({show_cmd} --step {step.number})", style="dim"))


def render_step(out: IO[str], step: Step) -> None:
    """One step in full: a header line, then the body exactly as recorded."""
    out.write(f"step {step.number} · turn {step.turn_index} · {step.title}\n")
    out.write(step.body if step.body.endswith("\n") or not step.body else step.body + "\n")
    out.flush()


# ---- tables ---------------------------------------------------------------------------------------------
def render_doctor(console: Console, rows: list[dict[str, Any]], order: Iterable[str]) -> None:
    """``caw doctor``: a table on a terminal, one line per provider in a log (the configured order first)."""
    in_order = list(order)
    if not console.is_terminal:
        for row in rows:
            console.print(Text(_doctor_line(row, in_order)), soft_wrap=True)
        return
    show_live = any(row.get("live") is not None for row in rows)
    table = Table(title="caw doctor", title_justify="left")
    table.add_column("#", no_wrap=True)
    table.add_column("provider", no_wrap=True, style="bold")
    table.add_column("ok", no_wrap=True)
    table.add_column("version")
    table.add_column("credential", overflow="fold")
    table.add_column("cooldown until")
    if show_live:
        table.add_column("live")
    table.add_column("binary", overflow="fold")
    for row in rows:
        name = str(row.get("provider", ""))
        installed = bool(row.get("installed"))
        cooldown = row.get("cooldown_until")
        cells = [
            Text(str(in_order.index(name) + 1) if name in in_order else "-"),
            Text(name),
            Text(str(row.get("status") or ("ok" if row.get("ok") else "no")), style=_status_style(row)),
            Text(str(row.get("version") or "-")) if installed else Text("not installed", style="red"),
            Text(str(row.get("credential") or "none found")),
            Text(local_and_utc(_parse_dt(cooldown)) if cooldown else "-"),
        ]
        if show_live:
            live, detail = row.get("live"), row.get("live_detail")
            cells.append(Text("-" if live is None else (f"{live}: {detail}" if detail else str(live))))
        cells.append(Text(str(row.get("binary") or "-")))
        table.add_row(*cells)
    console.print(table)


def _status_style(row: dict[str, Any]) -> str:
    status = row.get("status")
    if status == "ok":
        return "green"
    return "yellow" if row.get("ok") else "red"


def can_answer_line(rows: list[dict[str, Any]], order: Iterable[str]) -> str:
    """``can answer: codex, opencode`` (in the order), or that nothing in the order can."""
    in_order = list(order)
    names = [str(r["provider"]) for r in rows if r.get("ok") and r.get("provider") in in_order]
    names.sort(key=in_order.index)
    return f"can answer: {', '.join(names)}" if names else "can answer: none of " + ", ".join(in_order)


def _doctor_line(row: dict[str, Any], order: list[str]) -> str:
    name = str(row.get("provider", ""))
    rank = f"{order.index(name) + 1}. " if name in order else "-  "
    if not row.get("installed"):
        return f"{rank}{name}: not installed"
    parts = [f"{row.get('version') or 'unknown version'} at {row.get('binary')}"]
    parts.append(f"credential: {row.get('credential') or 'none found'}")
    if row.get("cooldown_until"):
        parts.append(f"usage limit until {local_and_utc(_parse_dt(row['cooldown_until']))}")
    if row.get("live") is not None:
        detail = f" ({row['live_detail']})" if row.get("live_detail") else ""
        parts.append(f"live: {row['live']}{detail}")
    return f"{rank}{name}: {row.get('status') or ('ok' if row.get('ok') else 'NOT ok')} — " + "; ".join(parts)


def _parse_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def render_sessions(console: Console, infos: Iterable[Any]) -> None:
    """``caw sessions``: newest first, two lines each (facts, then the resume command)."""
    count = 0
    for info in infos:
        count += 1
        head = Text.assemble(
            (info.session_id, "bold"),
            f"  {info.provider or '-':<8}  {local_and_utc(info.created_at)}  {info.turns} turn(s)  ",
            (json.dumps(clip(info.first_prompt, 60), ensure_ascii=False), "italic"),
        )
        console.print(head, soft_wrap=True)
        if getattr(info, "damaged", None):
            console.print(Text(f"  damaged: {info.damaged}", style="yellow"), soft_wrap=True)
        if info.resume_handle:
            console.print(Text(f"  caw resume {info.resume_handle}", style="dim"), soft_wrap=True)
        else:
            console.print(Text("  (no resume handle: no turn finished)", style="dim"))
    if count == 0:
        console.print(Text("no sessions", style="dim"))


def session_json(info: Any) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "provider": info.provider,
        "created_at": info.created_at.isoformat(),
        "first_prompt": info.first_prompt,
        "turns": info.turns,
        "resume_handle": info.resume_handle,
        "path": str(info.path),
        "damaged": getattr(info, "damaged", None),
    }


__all__ = ["Step", "render_doctor", "render_sessions", "render_step", "render_trajectory", "session_json", "steps"]
