"""GitHub Actions integration for ``caw run`` / ``caw resume``: the step summary and the step outputs.

* ``GITHUB_STEP_SUMMARY`` set: append a short markdown report of the run (provider used, providers
  skipped and why, usage and cost, a result excerpt, the resume handle; on failure what failed, when a
  limit resets and how to resume);
* ``GITHUB_OUTPUT`` set: append ``resume_handle``, ``provider``, ``session_id`` and ``exit_code`` outputs
  (values with a line break use the ``name<<DELIMITER`` form, so nothing can inject another output).

Writing these files never fails a run: a problem is reported on stderr and the exit code stays the run's.
No rich here: plain text files.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from caw.cli.views import Outcome

#: how much of the result text the step summary shows
RESULT_EXCERPT_CHARS = 1500

_EXIT_MEANING = {
    0: "success",
    1: "the agent's turn failed",
    2: "usage error",
    3: "no provider available",
    4: "authentication / account problem",
    5: "the answer did not match the schema",
    6: "a budget was crossed",
    75: "rate-limited (requeue)",
    124: "timed out",
    130: "interrupted",
}


def report(outcome: Outcome, env: Mapping[str, str], redact: Callable[[str], str] = str) -> None:
    """Write the step summary and outputs when running under GitHub Actions (no-op elsewhere).

    ``redact`` masks secrets in both (the session's ``Session.redact``).
    """
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        _append(summary, redact(step_summary(outcome)))
    outputs = env.get("GITHUB_OUTPUT")
    if outputs:
        provider = (outcome.trajectory.agent if outcome.trajectory else "") or outcome.provider
        values = {
            "resume_handle": outcome.resume_handle or "",
            "provider": provider,
            "session_id": outcome.trajectory.session_id if outcome.trajectory else "",
            "exit_code": str(outcome.exit_code),
            **usage_outputs(outcome),
        }
        _append(outputs, redact(format_outputs(values)))


def usage_outputs(outcome: Outcome) -> dict[str, str]:
    """The run's totals as step outputs (issue 16): ``cost_usd`` is empty when the CLI reported no cost."""
    from caw.cli.views import USAGE_KEYS

    usage = outcome.trajectory.usage if outcome.trajectory is not None else None
    if usage is None:
        return dict.fromkeys(USAGE_KEYS, "")
    cost = "" if usage.cost_usd is None else f"{usage.cost_usd:.6f}"
    return {"cost_usd": cost, **{k: str(getattr(usage, k)) for k in USAGE_KEYS[1:]}}


def format_outputs(values: Mapping[str, str]) -> str:
    """``name=value`` lines; a value with a line break in the multiline-safe ``name<<DELIM`` form."""
    lines: list[str] = []
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            delimiter = f"CAW_EOF_{uuid.uuid4().hex}"
            lines += [f"{name}<<{delimiter}", value, delimiter]
        else:
            lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def step_summary(outcome: Outcome) -> str:
    """The markdown appended to ``GITHUB_STEP_SUMMARY``."""
    traj = outcome.trajectory
    provider = (traj.agent if traj else "") or outcome.provider or "none"
    meaning = _EXIT_MEANING.get(outcome.exit_code, "failed")
    head = (
        f"### caw: {provider} answered ✅" if outcome.ok else f"### caw failed ❌ (exit {outcome.exit_code}: {meaning})"
    )
    rows: list[tuple[str, str]] = [("Provider", _provider_cell(outcome))]
    skipped = [a for a in (traj.attempts if traj else []) if a.reason != "answered"]
    if skipped:
        rows.append(("Skipped", "<br>".join(_md(_attempt_text(a)) for a in skipped)))
    if traj is not None and traj.turns:
        from caw.cli.views import seconds_text, usage_text

        turn = outcome.turn
        if turn is not None and (outcome.ok or turn.usage.total_tokens):
            rows.append(("This turn", _md(f"{usage_text(turn.usage)} · {seconds_text(turn.duration_ms)}")))
        if len(traj.turns) > 1:
            rows.append(("Conversation", _md(f"{len(traj.turns)} turns · {usage_text(traj.usage)}")))
        rows.append(("Totals", _md(_totals_text(outcome))))
    if not outcome.ok:
        rows.append(("What failed", _md(outcome.error or "unknown error")))
    if outcome.resets_at is not None:
        from caw.cli.views import local_and_utc

        rows.append(("Limit resets", _md(local_and_utc(outcome.resets_at))))
    if outcome.resume_handle and outcome.resume_handle not in (outcome.error or ""):
        rows.append(("Resume", f"`caw resume {outcome.resume_handle}`"))
    out = [head, "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    if outcome.ok and outcome.result:
        out += ["", "<details><summary>Result</summary>", "", *_fenced(_excerpt(outcome.result)), "", "</details>"]
    return "\n".join(out) + "\n\n"


def _totals_text(outcome: Outcome) -> str:
    from caw.cli.views import USAGE_KEYS

    values = usage_outputs(outcome)
    cost = f"${values['cost_usd']} (the CLI's list-price estimate)" if values["cost_usd"] else "cost not reported"
    tokens = ", ".join(f"{k.replace('_tokens', '').replace('_', ' ')} {values[k]}" for k in USAGE_KEYS[1:])
    return f"{cost} · tokens: {tokens}"


def _provider_cell(outcome: Outcome) -> str:
    traj = outcome.trajectory
    if traj is None or not traj.agent:
        return "none"
    last_model = next((t.model for t in reversed(traj.turns) if t.model), None)
    model = f" ({traj.model or last_model})" if (traj.model or last_model) else ""
    return _md(traj.agent + model)


def _attempt_text(attempt: object) -> str:
    provider = getattr(attempt, "provider", "?")
    reason = getattr(attempt, "reason", "?")
    error = getattr(attempt, "error", "")
    text = f"{provider}: {reason}"
    if error:
        text += f" — {error}"
    return text if len(text) <= 300 else text[:299] + "…"


def _excerpt(text: str) -> str:
    if len(text) <= RESULT_EXCERPT_CHARS:
        return text
    return text[:RESULT_EXCERPT_CHARS].rstrip() + f"\n… ({len(text) - RESULT_EXCERPT_CHARS} more characters)"


def _fenced(text: str) -> list[str]:
    """A code block whose fence is longer than any backtick run inside (the result cannot close it)."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]


def _md(text: str) -> str:
    """Text safe inside a markdown table cell (one line, no cell breaks, no HTML)."""
    one = " ".join(text.split())
    return one.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _append(path: str, text: str) -> None:
    try:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        sys.stderr.write(f"caw: warning: could not write {path}: {exc}\n")


__all__ = ["format_outputs", "report", "step_summary"]
