"""One send's options (``output=``, a per-call budget) and what the session does with them (issue 16).

``Session.send(message, output=..., max_tokens=...)`` makes a ``CallOptions``. For each run of a CLI the
session asks ``prepare`` for the request (the schema, or the JSON instruction for a CLI without a schema flag;
claude's native caps) and ``runner_for`` for the runner (metered by ``caw.session.budget`` when a budget
applies). After the turn, ``structured_result`` validates the answer; one invalid answer gets one repair turn
(``repair_prompt``), a second raises ``StructuredOutputError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

from caw.errors import StructuredOutputError, TurnFailed
from caw.events import Event, ResultEvent
from caw.models import TextBlock, ToolUse, Trajectory, Turn
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session.budget import (
    Budget,
    BudgetLedger,
    Scope,
    Spent,
    budget_runner,
    check_cost_reported,
    check_not_exhausted,
    native_caps,
)
from caw.session.runner import TurnRunner
from caw.structured.schema import OutputSpec, extract_json, output_spec

#: the tool claude answers its ``--json-schema`` with
_CLAUDE_OUTPUT_TOOL = "StructuredOutput"


@dataclass
class CallOptions:
    """``output=`` and a per-call budget of one send (``Session.send(..., **options)``)."""

    output: OutputSpec | None = None
    budget: Budget | None = None
    spent: Spent = field(default_factory=Spent)
    #: the last ``ResultEvent`` of the running send (claude's ``structured_output`` travels on it)
    result: ResultEvent | None = None
    #: the last run's answer text and what was wrong with it (None: not validated yet, []: valid)
    raw: str = ""
    errors: list[str] | None = None

    @classmethod
    def build(cls, output: Any = None, **budget: Any) -> CallOptions | None:
        unknown = set(budget) - {"max_cost_usd", "max_tokens", "max_turns", "max_duration", "usd_per_mtok"}
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        spec = output_spec(output) if output is not None else None
        limits = Budget.from_options(budget, where="send")
        if spec is None and limits is None:
            return None
        return cls(output=spec, budget=limits)

    def scope(self) -> Scope | None:
        return Scope(self.budget, self.spent, "call") if self.budget is not None else None


def ledger_for(budget: Budget | None, trajectory: Trajectory) -> BudgetLedger:
    """A session's ledger: a resumed conversation's earlier turns count against its budget too."""
    ledger = BudgetLedger(budget)
    usage = trajectory.usage
    ledger.spent.cost_usd = usage.cost_usd or 0.0
    ledger.spent.tokens = usage.total_tokens
    ledger.spent.duration = trajectory.duration_ms / 1000.0
    return ledger


def scopes(ledger: BudgetLedger, call: CallOptions | None) -> list[Scope]:
    out = [s for s in (ledger.scope(), call.scope() if call is not None else None) if s is not None]
    return out


def check_call(
    ledger: BudgetLedger, call: CallOptions | None, providers: list[Provider], trajectory: Trajectory | None = None
) -> None:
    """Before a send runs anything: a cost budget the CLIs cannot report, a schema codex cannot take, a budget
    already spent (``BudgetExceeded`` with no turn). The session's subagents count against its budget."""
    check_cost_reported([ledger.budget, call.budget if call is not None else None], providers)
    if trajectory is not None and ledger.budget is not None:
        sub = trajectory.subagent_usage
        ledger.subagents = Spent(cost_usd=sub.cost_usd or 0.0, tokens=sub.total_tokens)
    if call is not None and call.output is not None and any(p.output_schema_mode == "strict" for p in providers):
        from caw.structured.strict import to_strict

        to_strict(call.output.schema)  # StrictSchemaError now, not after a paid turn
    check_not_exhausted(scopes(ledger, call))


def prepare(
    call: CallOptions | None, ledger: BudgetLedger, provider: Provider, request: TurnRequest, record_input: str | None
) -> tuple[TurnRequest, str | None]:
    """The request for one run, and the input to record on its turn (the user's, not caw's instruction)."""
    changes: dict[str, Any] = {}
    if call is not None and call.output is not None:
        if provider.output_schema_mode == "prompt":
            changes["prompt"] = request.prompt + call.output.instruction()
            record_input = record_input if record_input is not None else request.prompt
        # a prompt-mode CLI's cold run ignores it; its warm client may take it (opencode serve's ``format``)
        changes["output_schema"] = call.output.schema
    changes.update(native_caps(scopes(ledger, call)))
    return (replace(request, **changes) if changes else request), record_input


def runner_for(
    call: CallOptions | None, ledger: BudgetLedger, runner: TurnRunner, clock: Callable[[], float]
) -> TurnRunner:
    """``runner``, metered when a budget applies; with ``output=``, each finished turn is validated (its
    ``parsed`` set) before the session records it, and ``call.raw``/``call.errors`` say how it went."""
    active = scopes(ledger, call)
    inner = budget_runner(runner, active, clock) if active else runner
    if call is None or call.output is None:
        return inner
    spec_call = call

    def run(
        provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **kw: Any
    ) -> Generator[Event, None, Turn]:
        spec_call.errors = None
        turn = yield from watch(spec_call, inner(provider, binary, config, request, **kw))
        spec_call.raw, spec_call.errors = structured_result(spec_call, turn, provider)
        return turn

    return run


def watch(call: CallOptions | None, gen: Generator[Event, None, Turn]) -> Generator[Event, None, Turn]:
    """``gen``'s events passed on, the last ``ResultEvent`` kept on ``call``."""
    if call is None or call.output is None:
        return (yield from gen)
    call.result = None
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                turn: Turn = stop.value
                return turn
            if isinstance(ev, ResultEvent):
                call.result = ev
            yield ev
    except GeneratorExit:
        gen.close()
        raise


def structured_result(call: CallOptions, turn: Turn, provider: Provider | None) -> tuple[str, list[str]]:
    """Validate ``turn``'s answer against ``call.output``: sets ``turn.parsed`` and returns ``(raw, [])``, or
    returns ``(raw, errors)`` leaving it None. ``raw`` is the answer's text (for claude, its
    ``structured_output`` as JSON, also added to the turn's text when the turn has none)."""
    spec = call.output
    assert spec is not None
    result = call.result
    data: Any = None
    have = False
    raw = turn.result
    if result is not None and result.structured is not None:
        data, have = result.structured, True
        raw = json.dumps(data, ensure_ascii=False)
    elif result is not None and result.text and result.text.strip():
        # the CLI's final answer: claude's result is its last message, where turn.result joins every message
        raw = result.text
    if have and not turn.result.strip():
        turn.output.append(TextBlock(text=raw))  # Turn.result is the raw answer, as on the other CLIs
    if not have:
        try:
            data = extract_json(raw)
        except ValueError as exc:
            return raw, list(exc.args[1]) if len(exc.args) > 1 else [str(exc)]
    if provider is not None and provider.output_schema_mode == "strict":
        from caw.structured.strict import restore_optional

        data = restore_optional(data, spec.schema)
    try:
        turn.parsed = spec.parse(data)
    except ValueError as exc:
        return raw, list(exc.args[1]) if len(exc.args) > 1 else [str(exc)]
    return raw, []


def native_failure(call: CallOptions, exc: TurnFailed) -> StructuredOutputError:
    """claude gave up on its own retries (``error_max_structured_output_retries``): caw's error, with the last
    answer it tried (its last ``StructuredOutput`` call)."""
    turn = exc.turn
    raw = ""
    if turn is not None:
        tries = [u for u in turn.tool_uses if isinstance(u, ToolUse) and u.name == _CLAUDE_OUTPUT_TOOL]
        raw = json.dumps(tries[-1].arguments, ensure_ascii=False) if tries else turn.result
    schema = call.output.schema if call.output is not None else None
    return StructuredOutputError(raw, [exc.detail], turn=turn, schema=schema, attempts=1)


__all__ = [
    "CallOptions",
    "check_call",
    "ledger_for",
    "native_failure",
    "prepare",
    "runner_for",
    "scopes",
    "structured_result",
    "watch",
]
