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
from caw.viewer.source import Source, SourceError, resolve_subagent, subagent_link
from caw.viewer.summary import summarize

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
    #: a tool call that ran a subagent: the link to its trajectory (as the ToolUse JSON holds it)
    link: Any = None


def steps(traj: Trajectory, raw: dict[str, Any] | None = None) -> list[Step]:
    """The numbered steps of ``traj``; ``raw`` (its JSON as stored) supplies each tool call's subagent link."""
    found = raw.get("turns") if raw is not None else None
    raw_turns: list[Any] = found if isinstance(found, list) else []
    out: list[Step] = []
    for t_index, turn in enumerate(traj.turns, start=1):
        out.append(Step(len(out) + 1, t_index, "user", "user", turn.input))
        raw_turn = raw_turns[t_index - 1] if t_index - 1 < len(raw_turns) else {}
        raw_blocks = raw_turn.get("output") if isinstance(raw_turn, dict) else None
        for b_index, block in enumerate(turn.output):
            n = len(out) + 1
            if isinstance(block, TextBlock):
                out.append(Step(n, t_index, "text", "text", block.text))
            elif isinstance(block, ThinkingBlock):
                out.append(Step(n, t_index, "thinking", "thinking", block.text))
            elif isinstance(block, ToolUse):
                raw_block = raw_blocks[b_index] if isinstance(raw_blocks, list) and b_index < len(raw_blocks) else {}
                link = subagent_link(
                    {**block.model_dump(mode="json"), **(raw_block if isinstance(raw_block, dict) else {})}
                )
                out.append(Step(n, t_index, "tool", _tool_title(block), block.output or "", link))
    return out


def _tool_title(use: ToolUse) -> str:
    status = " (error)" if use.is_error else ("" if use.output is not None else " (no result)")
    return f"tool {tool_call_text(use.name, use.arguments)}{status}"


def render_trajectory(
    console: Console,
    traj: Trajectory,
    *,
    source: str = "",
    full: bool = False,
    loaded: Source | None = None,
    indent: str = "",
) -> None:
    """A readable overview: header (outcome, totals, attempts, limit waits), then each turn with its steps.

    Tool output is folded to ``FOLD_LINES`` lines unless ``full``; ``loaded`` (the trajectory as loaded, with
    its raw JSON and base dir) lets a tool call that ran a subagent show the subagent's trajectory nested.
    """
    nested = bool(indent)
    title = ("subagent " if nested else "caw trajectory ") + traj.session_id + (f" ({source})" if source else "")
    console.print(Text(indent + title, style="bold"))
    s = summarize(traj)
    duration = seconds_text(s.duration_ms) + (f" working · {seconds_text(s.wall_ms)} wall clock" if s.wall_ms else "")
    facts = [
        ("provider", s.provider or "-"),
        ("model", s.model or "-"),
        ("effort", traj.reasoning or "-"),
        ("outcome", s.outcome),
        ("created", local_and_utc(traj.created_at)),
        ("cwd", traj.cwd or "-"),
        ("turns", str(s.turns)),
        ("tools", f"{s.tool_calls} call(s)" + (f", {s.tool_errors} failed" if s.tool_errors else "")),
        ("usage", f"{usage_text(s.usage)} · {s.usage.total_tokens:,} tokens · {duration}"),
    ]
    if traj.resume_handle:
        facts.append(("resume", f"caw resume {traj.resume_handle}"))
    if traj.usage_limited:
        facts.append(("limits", "this conversation ran into a usage limit"))
    for wait in s.waits:
        waited = f"waited {seconds_text(wait.waited_ms)}" if wait.waited_ms is not None else "not resumed"
        reset = f", reset {local_and_utc(wait.resets_at)}" if wait.resets_at else ""
        facts.append(("wait", f"turn {wait.turn}: {wait.kind} limit, {waited}{reset}"))
    if traj.pending_message is not None:
        facts.append(("pending", clip(traj.pending_message, 100) + " (not answered yet)"))
    if traj.metadata:
        meta = traj.model_dump(mode="json", include={"metadata"})["metadata"]
        facts.append(("metadata", " · ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in meta.items())))
    for label, value in facts:
        console.print(Text.assemble((f"{indent}  {label:<9}", "dim"), value))
    for note in traj.notes:
        console.print(Text(f"{indent}  note     {note}", style="yellow"))
    if traj.attempts:
        console.print(Text(indent + "attempts", style="bold"))
        for a in traj.attempts:
            line = f"{indent}  {a.provider}: {a.reason}"
            if a.resets_at is not None:
                line += f", resets {local_and_utc(a.resets_at)}"
            if a.error:
                line += f" ({clip(a.error, 120)})"
            console.print(Text(line, style="green" if a.reason == "answered" else "yellow"))
    by_turn: dict[int, list[Step]] = {}
    for step in steps(traj, loaded.raw if loaded is not None else None):
        by_turn.setdefault(step.turn_index, []).append(step)
    show_cmd = "--full" if nested else f"caw traj show {shlex.quote(source) if source else 'FILE'} --step"
    context = _TurnContext(show_cmd, full, loaded, indent)
    for t_index, turn in enumerate(traj.turns, start=1):
        _render_turn(console, t_index, turn, by_turn.get(t_index, []), context)


@dataclass(frozen=True)
class _TurnContext:
    show_cmd: str
    full: bool
    loaded: Source | None
    indent: str


def _render_turn(console: Console, index: int, turn: Turn, turn_steps: list[Step], ctx: _TurnContext) -> None:
    status_style = "green" if turn.status == "completed" else "red"
    ind = ctx.indent
    head = Text.assemble(
        (f"{ind}turn {index}", "bold"),
        " · ",
        (turn.status, status_style),
        f" · {turn.provider or '-'}" + (f" ({turn.model})" if turn.model else ""),
        f" · {usage_text(turn.usage)} · {seconds_text(turn.duration_ms)}",
    )
    console.print(head)
    if turn.error is not None:
        console.print(Text(f"{ind}  error: {turn.error.type} ({turn.error.reason}): {turn.error.message}", style="red"))
    if turn.limit is not None:
        when = local_and_utc(turn.limit.resets_at) if turn.limit.resets_at else "unknown"
        kind = turn.limit.kind + ("" if turn.limit.waitable else ", not waitable")
        console.print(Text(f"{ind}  limit: {kind}, resets {when}", style="yellow"))
    if turn.retries:
        console.print(Text(f"{ind}  the CLI retried {turn.retries} time(s) on its own", style="dim"))
    if turn.denied_tools:
        console.print(Text(f"{ind}  refused tool uses: {', '.join(turn.denied_tools)}", style="red"))
    for step in turn_steps:
        _render_step_folded(console, step, ctx)
        if step.link is not None:
            _render_subagent(console, step, ctx)


_STEP_STYLE = {"user": "bold blue", "text": "", "thinking": "dim italic", "tool": "cyan"}


def _render_step_folded(console: Console, step: Step, ctx: _TurnContext) -> None:
    ind = ctx.indent
    if ctx.full:
        shown, more = step.body.rstrip("\n").splitlines() or [""], 0
    else:
        shown, more = fold(step.body)
    style = "red" if step.kind == "tool" and step.title.endswith("(error)") else (_STEP_STYLE[step.kind] or "bold")
    # one print per step: a 10,000-tool-call trajectory is 50,000 lines, and rich's cost is per print
    block = Text.assemble((f"{ind}  [{step.number}] ", "dim"), (step.title, style))
    body_style = "dim" if step.kind == "tool" else ""
    for line in shown:
        block.append(f"\n{ind}      {line}", style=body_style)
    if more:
        hint = ctx.show_cmd if ctx.show_cmd == "--full" else f"{ctx.show_cmd} {step.number}"
        block.append(f"\n{ind}      … +{more} lines ({hint})", style="dim")
    console.print(block)


def _render_subagent(console: Console, step: Step, ctx: _TurnContext) -> None:
    base = ctx.loaded.base_dir if ctx.loaded is not None else None
    try:
        sub = resolve_subagent(step.link, base)
    except SourceError as exc:
        console.print(Text(f"{ctx.indent}      subagent trajectory not found: {exc}", style="yellow"))
        return
    if len(ctx.indent) >= 24:  # four levels deep: enough
        console.print(Text(f"{ctx.indent}      subagent {sub.trajectory.session_id} (nested too deep to show)"))
        return
    render_trajectory(console, sub.trajectory, full=ctx.full, loaded=sub, indent=ctx.indent + "      ")


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
