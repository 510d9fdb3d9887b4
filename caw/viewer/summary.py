"""The facts a reader wants first about a trajectory: outcome, totals, fallback attempts, limit waits.

One computation for the HTML report, the ``caw view`` session list and ``caw traj show``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from caw.models import Attempt, ToolUse, Trajectory, UsageStats


@dataclass(frozen=True)
class LimitWait:
    """A usage limit a turn ran into, and how long the conversation stood still before the next turn."""

    turn: int  # 1-based index of the limited turn
    kind: str
    resets_at: datetime | None
    #: from the end of the limited turn to the start of the next one; None when no turn followed
    waited_ms: int | None
    message: str = ""


@dataclass(frozen=True)
class Summary:
    provider: str
    model: str | None
    outcome: str
    turns: int
    tool_calls: int
    tool_errors: int
    usage: UsageStats
    #: the turns' own durations added up (what the agent worked)
    duration_ms: int
    #: created_at to completed_at, when the session was ended (includes limit waits and idle time)
    wall_ms: int | None
    attempts: list[Attempt] = field(default_factory=list)
    waits: list[LimitWait] = field(default_factory=list)

    @property
    def waited_ms(self) -> int:
        return sum(w.waited_ms or 0 for w in self.waits)


def outcome(traj: Trajectory) -> str:
    """``completed``, ``failed``, ``rate_limited``, ``running``... (the last turn's status), ``pending`` (a
    message accepted but unanswered) or ``empty`` (no turn)."""
    if traj.pending_message is not None and (not traj.turns or traj.turns[-1].status != "completed"):
        return "pending"
    if not traj.turns:
        return "empty"
    return traj.turns[-1].status


def limit_waits(traj: Trajectory) -> list[LimitWait]:
    out: list[LimitWait] = []
    for index, turn in enumerate(traj.turns):
        if turn.limit is None and turn.status != "rate_limited":
            continue
        waited: int | None = None
        if index + 1 < len(traj.turns):
            ended = _aware(turn.started_at).timestamp() * 1000 + turn.duration_ms
            waited = max(0, int(_aware(traj.turns[index + 1].started_at).timestamp() * 1000 - ended))
        limit = turn.limit
        out.append(
            LimitWait(
                turn=index + 1,
                kind=limit.kind if limit else "rate",
                resets_at=limit.resets_at if limit else None,
                waited_ms=waited,
                message=limit.message if limit else "",
            )
        )
    return out


def summarize(traj: Trajectory) -> Summary:
    """The header facts of ``traj``.

    >>> from caw.models import Turn
    >>> s = summarize(Trajectory(agent="codex", turns=[Turn(input="hi", status="completed")]))
    >>> s.provider, s.outcome, s.turns, s.tool_calls
    ('codex', 'completed', 1, 0)
    """
    uses = [b for t in traj.turns for b in t.output if isinstance(b, ToolUse)]
    model = traj.model or next((t.model for t in reversed(traj.turns) if t.model), None)
    provider = traj.agent or next((t.provider for t in reversed(traj.turns) if t.provider), "")
    wall = None
    if traj.completed_at is not None:
        wall = max(0, int((_aware(traj.completed_at) - _aware(traj.created_at)).total_seconds() * 1000))
    return Summary(
        provider=provider,
        model=model,
        outcome=outcome(traj),
        turns=len(traj.turns),
        tool_calls=len(uses),
        tool_errors=sum(1 for u in uses if u.is_error),
        usage=traj.usage,
        duration_ms=traj.duration_ms,
        wall_ms=wall,
        attempts=list(traj.attempts),
        waits=limit_waits(traj),
    )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
