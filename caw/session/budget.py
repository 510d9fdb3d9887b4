"""Budgets: limits on cost, tokens, model turns and time, enforced while a turn streams (issue 16).

A ``Budget`` is four optional limits. An Agent's budget is its sessions' (every turn counts, fallback attempts
and repair turns included: each is a run of a CLI); a per-call budget (``send(..., max_tokens=...)``) counts
that call only. ``BudgetLedger`` keeps what a session has spent; ``budget_runner`` wraps the session's turn
runner so that each run is metered as its events arrive:

* **tokens**: the usage the CLI has reported so far (opencode reports each model call; claude and codex only
  at the end) plus an estimate of what streamed since (text, thinking, tool arguments and outputs, at four
  characters a token). Estimating is what lets caw stop a claude or codex turn in the middle;
* **cost**: the cost the CLI reported so far (and claude's own ``--max-budget-usd``, given the remainder);
* **turns**: the agent's model calls within the turn: one to start, one more after each round of tool
  results (and claude's own ``--max-turns``);
* **duration**: wall time, through the turn's total-time watchdog (set to the remainder) and each event.

Crossing a limit cancels the turn through ``TurnControl.cancel`` (the normal cancel path: the process tree is
gone when it returns) and raises ``BudgetExceeded`` carrying the partial turn, which the session keeps and
saves as cancelled. A CLI's own cap (claude's ``error_max_budget_usd`` / ``error_max_turns``) raises the same
error (``native=True``). The CLI's closing figures are not a reason to cancel: a turn that finished is kept,
and a spent budget refuses the next send before anything runs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

from caw.errors import BudgetExceeded, CawTimeoutError, ConfigurationError, TurnCancelled, TurnFailed
from caw.events import (
    Event,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
    UsageEvent,
)
from caw.models import Turn, TurnError, UsageStats
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session.runner import TurnRunner
from caw.session.turn import TurnControl, TurnOptions

#: characters per token for the estimate of what streamed before the CLI reported usage
CHARS_PER_TOKEN = 4

BUDGET_NAMES = ("cost_usd", "tokens", "turns", "duration")


@dataclass(frozen=True)
class Budget:
    """Optional limits: ``max_cost_usd`` (USD), ``max_tokens`` (``UsageStats.total_tokens``), ``max_turns``
    (model calls within caw turns), ``max_duration`` (seconds).

    ``usd_per_mtok`` is no limit: the price per million tokens at which ``max_cost_usd`` counts a run whose CLI
    reports no cost (codex), so that a cost budget is enforced on tokens there instead of refused."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_turns: int | None = None
    max_duration: float | None = None
    usd_per_mtok: float | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], *, where: str = "Agent") -> Budget | None:
        """The budget in ``options`` (the four ``max_*`` keys), None when none is set; ConfigurationError on a
        value that is not a positive number."""
        values: dict[str, Any] = {}
        for key in ("max_cost_usd", "max_tokens", "max_turns", "max_duration", "usd_per_mtok"):
            value = options.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or math.isinf(value):
                raise ConfigurationError(f"{where}: {key} must be a positive number, not {value!r}")
            if key in ("max_tokens", "max_turns") and value != int(value):
                raise ConfigurationError(f"{where}: {key} must be a whole number, not {value!r}")
            values[key] = int(value) if key in ("max_tokens", "max_turns") else float(value)
        return cls(**values) if values.keys() - {"usd_per_mtok"} else None

    def limit(self, name: str) -> float | None:
        return {
            "cost_usd": self.max_cost_usd,
            "tokens": self.max_tokens,
            "turns": self.max_turns,
            "duration": self.max_duration,
        }[name]


def check_cost_reported(budgets: list[Budget | None], providers: list[Provider]) -> None:
    """Refuse a cost budget for an order with a CLI that reports no cost (it could never be enforced)."""
    if not any(b is not None and b.max_cost_usd is not None and b.usd_per_mtok is None for b in budgets):
        return
    silent = [p.name for p in providers if not p.reports_cost]
    if silent:
        raise ConfigurationError(
            f"max_cost_usd needs a CLI that reports what a turn costs; {', '.join(silent)} reports tokens only: "
            "use max_tokens for it, an order without it, or usd_per_mtok= to count its tokens at that price"
        )


@dataclass
class Spent:
    """What has been spent against a budget."""

    cost_usd: float = 0.0
    tokens: int = 0
    turns: int = 0
    duration: float = 0.0

    def figure(self, name: str) -> float:
        value: float = getattr(self, name)
        return value

    def add(self, other: Spent) -> None:
        self.cost_usd += other.cost_usd
        self.tokens += other.tokens
        self.turns += other.turns
        self.duration += other.duration


@dataclass
class Scope:
    """One budget and what has been spent against it (the session's, or one call's).

    ``spent`` is what caw's runs used (charged as they end); ``elsewhere`` what was spent outside them and
    counts too: the session's subagents (``Trajectory.subagent_usage``)."""

    budget: Budget
    spent: Spent
    label: str = "session"
    elsewhere: Spent = field(default_factory=Spent)

    def figure(self, name: str) -> float:
        return self.spent.figure(name) + self.elsewhere.figure(name)

    def remaining(self, name: str) -> float | None:
        limit = self.budget.limit(name)
        return None if limit is None else limit - self.figure(name)

    def exhausted(self) -> tuple[str, float, float] | None:
        """The first limit already reached: ``(name, limit, reached)``."""
        for name in BUDGET_NAMES:
            limit = self.budget.limit(name)
            if limit is not None and self.figure(name) >= limit:
                return name, limit, self.figure(name)
        return None


class TurnMeter:
    """What one run of a CLI has spent so far, from its events (see the module doc)."""

    def __init__(self, started: float, usd_per_mtok: float | None = None) -> None:
        self.started = started
        self.usd_per_mtok = usd_per_mtok
        self.reported = UsageStats()
        self.estimate = 0  # tokens streamed since the last usage report
        self.model_turns = 0
        self._after_tools = False
        self.final = False

    def see(self, ev: Event) -> None:
        if isinstance(ev, UsageEvent):
            if ev.final:
                self.reported = ev.usage
                self.final = True
            else:
                self.reported = self.reported + ev.usage
            self.estimate = 0
            return
        chars = 0
        if isinstance(ev, TextEvent | ThinkingEvent):
            chars = len(ev.text)
        elif isinstance(ev, ToolCallEvent):
            chars = len(json.dumps(ev.arguments, ensure_ascii=False, default=str)) + len(ev.name)
        elif isinstance(ev, ToolResultEvent):
            chars = len(ev.output or "")
        if isinstance(ev, TextEvent | ThinkingEvent | ToolCallEvent):
            if self.model_turns == 0 or self._after_tools:
                self.model_turns += 1
                self._after_tools = False
        elif isinstance(ev, ToolResultEvent):
            self._after_tools = True
        self.estimate += math.ceil(chars / CHARS_PER_TOKEN)

    def spent(self, now: float) -> Spent:
        tokens = self.reported.total_tokens + (0 if self.final else self.estimate)
        cost = self.reported.cost_usd
        if cost is None:  # the CLI reported no cost: counted on tokens when the budget names a price
            cost = tokens * self.usd_per_mtok / 1_000_000 if self.usd_per_mtok is not None else 0.0
        return Spent(
            cost_usd=cost,
            tokens=tokens,
            turns=max(self.model_turns, 1 if self.final else 0),
            duration=max(0.0, now - self.started),
        )


class BudgetLedger:
    """A session's spending, turn by turn (every run of a CLI: fallback attempts and repair turns too)."""

    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget
        self.spent = Spent()
        #: what the session's subagents used (their own runs, reported on the parent's tool uses)
        self.subagents = Spent()

    def scope(self) -> Scope | None:
        return Scope(self.budget, self.spent, elsewhere=self.subagents) if self.budget is not None else None


def check_not_exhausted(scopes: list[Scope], turn: Turn | None = None) -> None:
    """``BudgetExceeded`` (nothing run) when a scope's budget is already spent."""
    for scope in scopes:
        hit = scope.exhausted()
        if hit is not None:
            raise BudgetExceeded(*hit, turn=turn)


def native_caps(scopes: list[Scope]) -> dict[str, Any]:
    """The CLI-side caps for a run (claude's ``--max-budget-usd`` / ``--max-turns``): the smallest remainders."""
    caps: dict[str, Any] = {}
    cost = [r for s in scopes if (r := s.remaining("cost_usd")) is not None]
    turns = [r for s in scopes if (r := s.remaining("turns")) is not None]
    if cost:
        caps["max_budget_usd"] = max(0.000001, min(cost))
    if turns:
        caps["max_turns"] = max(1, int(min(turns)))
    if any(s.remaining(what) is not None for s in scopes for what in ("tokens", "cost_usd")):
        caps["stream_text"] = True  # text as it streams, so a crossing mid-message is seen at once
    return caps


def budget_runner(inner: TurnRunner, scopes: list[Scope], clock: Callable[[], float] = time.monotonic) -> TurnRunner:
    """``inner`` metered against ``scopes``: crossing one cancels the run and raises ``BudgetExceeded``."""

    def run(
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        base_env: dict[str, str],
        options: TurnOptions | None = None,
        control: TurnControl | None = None,
        clock: Callable[[], float] = clock,
    ) -> Generator[Event, None, Turn]:
        control = control or TurnControl()
        options = options or TurnOptions()
        duration_left = [r for s in scopes if (r := s.remaining("duration")) is not None]
        by_budget = False
        if duration_left:
            left = max(0.001, min(duration_left))
            if options.timeout is None or left < options.timeout:
                options = replace(options, timeout=left)
                by_budget = True
        prices = [s.budget.usd_per_mtok for s in scopes if s.budget.usd_per_mtok is not None]
        meter = TurnMeter(clock(), max(prices) if prices else None)
        gen = inner(provider, binary, config, request, base_env=base_env, options=options, control=control, clock=clock)
        crossed: tuple[str, float, float] | None = None
        try:
            while True:
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    turn: Turn = stop.value
                    break
                meter.see(ev)
                if crossed is None and not meter.final:
                    crossed = _crossing(scopes, meter.spent(clock()))
                    if crossed is not None:
                        control.cancel()  # SIGINT, grace, then the tree: returns when nothing is left
                yield ev
        except TurnCancelled as exc:
            if crossed is None:
                raise
            raise _exceeded(crossed, exc.turn or control.turn) from None
        except CawTimeoutError as exc:
            if not by_budget or exc.seconds != options.timeout:
                raise
            partial = exc.turn or control.turn
            binding = min(
                (s for s in scopes if s.budget.max_duration is not None), key=lambda s: s.remaining("duration") or 0
            )
            limit = float(binding.budget.max_duration or 0.0)
            raise _exceeded(
                ("duration", limit, binding.figure("duration") + meter.spent(clock()).duration), partial
            ) from None
        except TurnFailed as exc:
            if exc.kind != "budget":
                raise
            raise _native(exc, scopes, meter.spent(clock()), request) from None
        except GeneratorExit:
            gen.close()
            raise
        finally:
            _charge(scopes, meter.spent(clock()))
        return turn

    return run


def _crossing(scopes: list[Scope], now: Spent) -> tuple[str, float, float] | None:
    for scope in scopes:
        for name in BUDGET_NAMES:
            limit = scope.budget.limit(name)
            if limit is None:
                continue
            reached = scope.figure(name) + now.figure(name)
            if reached > limit:
                return name, limit, reached
    return None


def _charge(scopes: list[Scope], spent: Spent) -> None:
    for scope in scopes:
        scope.spent.add(spent)


def _exceeded(crossed: tuple[str, float, float], turn: Turn | None, *, native: bool = False) -> BudgetExceeded:
    err = BudgetExceeded(*crossed, turn=turn, native=native)
    if turn is not None:
        turn.status = "cancelled"
        turn.error = TurnError(type="BudgetExceeded", reason="budget", message=str(err))
    return err


def _native(exc: TurnFailed, scopes: list[Scope], now: Spent, request: TurnRequest) -> BudgetExceeded:
    """claude's own cap stopped the run: which one, from its message and the caps caw passed."""
    text = exc.detail.lower()
    by_turns = ("turn" in text and request.max_turns is not None) or request.max_budget_usd is None
    name = "turns" if by_turns else "cost_usd"
    limits = [(s.budget.limit(name), s.figure(name)) for s in scopes if s.budget.limit(name) is not None]
    limit, before = min(limits) if limits else (0.0, 0.0)
    reached = before + now.figure(name)
    return _exceeded((name, float(limit or 0.0), max(reached, float(limit or 0.0))), exc.turn, native=True)


__all__ = [
    "BUDGET_NAMES",
    "Budget",
    "BudgetLedger",
    "Scope",
    "Spent",
    "TurnMeter",
    "budget_runner",
    "check_cost_reported",
    "check_not_exhausted",
    "native_caps",
]
