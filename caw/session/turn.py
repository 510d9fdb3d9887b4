"""Runs one turn on one provider: process in, typed events out, a ``Turn`` at the end.

``run_turn`` is a generator: it yields each event as the CLI prints it and returns the finished ``Turn``
(``StopIteration.value``), or raises a ``caw.errors`` error that carries the partial turn. It owns the
process for the turn's lifetime, so every exit path (success, error, watchdog, cancel, the consumer
abandoning the generator) stops the process tree and deletes the invocation's temp files.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

from caw.errors import (
    AuthenticationError,
    CawTimeoutError,
    ContextOverflowError,
    ConversationNotFound,
    FirstOutputTimeout,
    IdleTimeout,
    ProviderCrashed,
    ProviderError,
    ProviderNotInstalled,
    ProviderUnavailable,
    TurnCancelled,
    TurnFailed,
    TurnTimeout,
    UsageLimitError,
)
from caw.events import (
    ErrorEvent,
    Event,
    RateLimitEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolDeniedEvent,
    ToolResultEvent,
    UsageEvent,
)
from caw.models import LimitInfo, TextBlock, ThinkingBlock, ToolUse, Turn, TurnError
from caw.providers.base import Invocation, Provider, RunConfig, TurnParser, TurnRequest
from caw.transport import AgentProcess, ProcessSpec, SpawnError, WatchdogExpired, Watchdogs, clean_line

_MAX_DIAGNOSTICS = 50
_MAX_DIAGNOSTIC_LEN = 2000


#: the deadlines every turn gets unless the Agent says otherwise (seconds; docs/python-api.md "Deadlines")
DEFAULT_TIMEOUT = 30 * 60.0
DEFAULT_FIRST_OUTPUT_TIMEOUT = 5 * 60.0
DEFAULT_TRANSIENT_TIMEOUT = 90.0


@dataclass(frozen=True)
class TurnOptions:
    """Watchdogs and stop behaviour for a turn (seconds; None disables a watchdog).

    ``idle_timeout`` and ``timeout`` count bytes and wall time. ``first_output_timeout`` and
    ``transient_timeout`` count events (``TurnProgress``): a CLI that keeps printing its own start-up lines or
    retry notices has not answered yet.
    """

    first_output_timeout: float | None = None
    idle_timeout: float | None = None
    timeout: float | None = None
    transient_timeout: float | None = None
    stop_grace_s: float = 2.0

    def watchdogs(self) -> Watchdogs:
        return Watchdogs(idle=self.idle_timeout, total=self.timeout)


#: what the CLI says about its own retrying: a run of these and nothing else is what transient_timeout counts
_NOTICES = (RetryEvent,)
#: what the model produced: it ends the wait for the first answer and any run of retry notices
_ANSWERS = (TextEvent, ThinkingEvent, ToolCallEvent, ToolResultEvent, ToolDeniedEvent, UsageEvent, ResultEvent)


class TurnProgress:
    """The event-level watchdogs of one turn: the first answer, and runs of retry notices (issues 12, 17).

    * ``first_output``: no answer (text, thinking, a tool, usage, a result, a fatal error) within
      ``first_output_timeout`` of the start. What a CLI prints about itself (its session start, retry
      notices, warnings, lines caw does not know) is no answer: claude and codex print their start-up line
      at once, also to a model server that never answers.
    * ``transient``: at least two retry notices (``RetryEvent``, a non-fatal ``ErrorEvent``) and nothing
      from the model since the first of them, for ``transient_timeout``. Offline codex prints "Reconnecting...
      waiting for network" forever and claude retries a 529 for minutes, so the idle watchdog never fires.
      Two, because one reconnect followed by a model thinking in silence is a CLI that recovered.
    """

    def __init__(self, options: TurnOptions, started: float) -> None:
        self._first = options.first_output_timeout
        self._transient = options.transient_timeout
        self._started = started
        self.answered = False
        self.run_started: float | None = None
        self.run_notices = 0
        self.last_notice = ""

    def see(self, ev: Event, now: float) -> None:
        if isinstance(ev, _NOTICES) or (isinstance(ev, ErrorEvent) and not ev.fatal):
            if self.run_started is None:
                self.run_started = now
            self.run_notices += 1
            self.last_notice = ev.message
        elif isinstance(ev, (*_ANSWERS, ErrorEvent)):
            self.answered = True
            self.run_started = None
            self.run_notices = 0

    def deadline(self) -> tuple[float, str, float] | None:
        """The next event-level deadline, in the form ``AgentProcess.lines`` takes."""
        due: list[tuple[float, str, float]] = []
        if not self.answered and self._first is not None:
            due.append((self._started + self._first, "first_output", self._first))
        if self._transient is not None and self.run_started is not None and self.run_notices >= 2:
            due.append((self.run_started + self._transient, "transient", self._transient))
        return min(due) if due else None


class WarmTarget(Protocol):
    """What ``TurnControl.cancel`` calls for a warm turn: interrupt it, return once its tools are gone."""

    def cancel(self, *, now: bool = False) -> None: ...


class TurnControl:
    """Shared between the thread running a turn and one that cancels it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: AgentProcess | None = None
        #: a warm turn's canceller (``caw.session.warm``): its ``cancel(now=)`` interrupts through the protocol
        self._warm: WarmTarget | None = None
        self.cancelled = threading.Event()
        self.grace_s = 2.0
        #: the turn being built, so a consumer that stops iterating early can keep the partial turn
        self.turn: Turn | None = None

    def attach(self, process: AgentProcess | None) -> None:
        with self._lock:
            self._process = process

    def attach_warm(self, target: WarmTarget | None) -> None:
        """Route ``cancel`` to a warm turn (an object with ``cancel(*, now)``) instead of a process."""
        with self._lock:
            self._warm = target

    def cancel(self, *, now: bool = False) -> None:
        """Stop the running turn (SIGINT, grace, then the whole tree). Blocks until the tree is gone.

        A warm turn (``attach_warm``) is interrupted through the CLI's protocol instead, and this returns once
        the turn has ended and its tools are gone; the warm CLI lives on (``caw.session.warm``).

        ``now=True``: kill the tree at once, without the grace (also ending a grace another thread waits out).
        """
        self.cancelled.set()
        with self._lock:
            process = self._process
            warm = self._warm
        if warm is not None:
            warm.cancel(now=now)
        elif process is not None and now:
            process.kill()
        elif process is not None:
            process.terminate(self.grace_s)


class TurnAssembler:
    """Folds events into a Turn: blocks of one message merge, tool results join their calls.

    ``feed`` also makes every provider's stream the same shape (docs/providers.md, "Events"), so one consumer
    reads all three: ``session_started`` names the model, every ``tool_result`` follows a ``tool_call`` and
    carries its name and arguments, one ``usage`` is ``final``, and ``result.text`` is never None.
    """

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self._tools: dict[str, ToolUse] = {}
        self._last_message: str | None = None
        # text of the block being merged, joined once (repeated += on a growing str is quadratic)
        self._parts: list[str] = []
        self.limit_event: RateLimitEvent | None = None
        self.fatal: ErrorEvent | None = None
        self._final_usage = False

    def feed(self, ev: Event) -> list[Event]:
        """Normalise one parser event into the events to emit, each already applied to the turn."""
        out: list[Event] = []
        if isinstance(ev, SessionStarted) and not ev.model and self.turn.model:
            ev = ev.model_copy(update={"model": self.turn.model})  # the model caw asked for
        elif isinstance(ev, ToolResultEvent):
            call = self._tools.get(ev.id)
            if call is None:
                # codex's web search and opencode's tools report the call and its result together
                name, arguments = ev.name or "", ev.arguments or {}
                out.append(ToolCallEvent(provider=ev.provider, id=ev.id, name=name, arguments=arguments))
            else:
                ev = ev.model_copy(
                    update={"name": ev.name or call.name, "arguments": dict(ev.arguments or call.arguments)}
                )
        elif isinstance(ev, UsageEvent):
            if ev.final:
                self._final_usage = True
        elif isinstance(ev, ResultEvent):
            if not self._final_usage:
                # opencode reports usage per model call only: the turn's total closes the turn
                out.append(UsageEvent(provider=ev.provider, usage=self.turn.usage, final=True))
            if ev.text is None:
                self.flush()
                ev = ev.model_copy(update={"text": self.turn.result})
        out.append(ev)
        for item in out:
            self.apply(item)
        return out

    def flush(self) -> None:
        """Write merged text into the last block. Call before reading the turn."""
        if len(self._parts) > 1:
            last = self.turn.output[-1]
            if isinstance(last, TextBlock | ThinkingBlock):
                last.text = "".join(self._parts)
            self._parts = [last.text] if isinstance(last, TextBlock | ThinkingBlock) else []

    def apply(self, ev: Event) -> None:
        out = self.turn.output
        if isinstance(ev, TextEvent | ThinkingEvent):
            block_type = TextBlock if isinstance(ev, TextEvent) else ThinkingBlock
            last = out[-1] if out else None
            if isinstance(last, block_type) and ev.message_id is not None and ev.message_id == self._last_message:
                self._parts.append(ev.text)
            else:
                self.flush()
                out.append(block_type(text=ev.text))
                self._parts = [ev.text]
            self._last_message = ev.message_id
            return
        self.flush()
        self._parts = []
        self._last_message = None
        if isinstance(ev, ToolCallEvent):
            call = ToolUse(id=ev.id, name=ev.name, arguments=dict(ev.arguments))
            self._tools[ev.id] = call
            out.append(call)
        elif isinstance(ev, ToolResultEvent):
            use = self._tools.get(ev.id)
            if use is None:
                use = ToolUse(id=ev.id, name=ev.name or "", arguments=dict(ev.arguments or {}))
                self._tools[ev.id] = use
                out.append(use)
            else:
                if ev.name and not use.name:
                    use.name = ev.name
                if ev.arguments and not use.arguments:
                    use.arguments = dict(ev.arguments)
            use.output = ev.output
            use.is_error = ev.is_error
        elif isinstance(ev, UsageEvent):
            self.turn.usage = ev.usage if ev.final else self.turn.usage + ev.usage
        elif isinstance(ev, RateLimitEvent):
            if ev.status == "rejected":
                self.limit_event = ev
        elif isinstance(ev, RetryEvent):
            self.turn.retries += 1
        elif isinstance(ev, ToolDeniedEvent):
            self.turn.denied_tools.append(ev.name)
        elif isinstance(ev, SessionStarted):
            if ev.model and not self.turn.model:
                self.turn.model = ev.model
        elif isinstance(ev, ErrorEvent) and ev.fatal:
            self.fatal = ev

    def note(self, line: str) -> None:
        if len(self.turn.diagnostics) < _MAX_DIAGNOSTICS and line:
            self.turn.diagnostics.append(line[:_MAX_DIAGNOSTIC_LEN])


def run_turn(
    provider: Provider,
    binary: str | None,
    config: RunConfig,
    request: TurnRequest,
    *,
    base_env: dict[str, str],
    options: TurnOptions = TurnOptions(),
    control: TurnControl | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[Event, None, Turn]:
    """Run one turn; yield events; return the Turn or raise an error carrying it (see module doc)."""
    control = control or TurnControl()
    control.grace_s = options.stop_grace_s
    turn = Turn(input=request.prompt, provider=provider.name, model=config.model)
    control.turn = turn
    if binary is None:
        raise not_installed_error(provider, {**base_env, **config.env}, turn)
    asm = TurnAssembler(turn)
    parser = provider.parser(config, request)
    inv: Invocation = provider.build(binary, config, request)
    cwd = inv.cwd or config.cwd
    # issue 12: opencode takes its project directory from $PWD, so the child's PWD must name its cwd
    env = {**base_env, **config.env, **inv.env, "PWD": os.path.abspath(cwd)}
    process = AgentProcess(ProcessSpec(inv.argv, env, cwd, inv.stdin), clock=clock)
    # held from the spawn to the CLI's first line, only while the provider says a first start is due
    start_lock = provider.first_start_lock(env)
    started = clock()
    try:
        if start_lock is not None:
            start_lock.acquire()
        try:
            process.start()
        except SpawnError as exc:
            raise spawn_error(provider.name, binary, str(exc), turn) from exc
        control.attach(process)
        if control.cancelled.is_set():
            process.terminate(options.stop_grace_s)
        progress = TurnProgress(options, process.started_at if process.started_at is not None else started)
        try:
            for line in process.lines(options.watchdogs(), progress.deadline):
                if start_lock is not None:
                    start_lock.release(started=True)
                    start_lock = None
                for parsed in parse_line(parser, asm, line):
                    for ev in asm.feed(parsed):
                        progress.see(ev, clock())
                        yield ev
        except WatchdogExpired as exc:
            process.terminate(options.stop_grace_s)
            turn.duration_ms = _ms(clock() - started)
            raise watchdog_error(provider.name, exc, progress, asm, process.stderr_tail()) from None
        exit_code = process.wait(timeout=options.stop_grace_s + 5)
        if control.cancelled.is_set():
            turn.duration_ms = _ms(clock() - started)
            # issue 12: a stream's consumer learns that the turn was interrupted, not that it crashed
            yield cancelled_event(provider.name, turn)
            raise TurnCancelled(turn=turn)
        for parsed in parser.finish(exit_code, process.stderr_tail()):
            for ev in asm.feed(parsed):
                yield ev
        turn.duration_ms = _ms(clock() - started)
        if asm.fatal is not None:
            raise fatal_error(asm, exit_code, process.stderr_tail())
        turn.status = "completed"
        return turn
    except GeneratorExit:
        # the consumer stopped iterating (break / close): this counts as a cancel
        turn.status = "cancelled"
        raise
    finally:
        if start_lock is not None:
            start_lock.release(started=False)
        asm.flush()
        control.attach(None)
        process.stop(options.stop_grace_s)
        inv.cleanup()


_STOPPED = "caw stopped the turn; the partial turn is kept"


# ---- the pieces of a turn's end that run_turn and the warm runner (caw.session.warm) share ------------------
def not_installed_error(provider: Provider, env: dict[str, str], turn: Turn) -> ProviderNotInstalled:
    """No binary: the failed turn records why."""
    turn.status = "failed"
    err = provider.not_installed(env)
    turn.error = TurnError(type=type(err).__name__, reason="not_installed", message=str(err))
    return err


def spawn_error(provider: str, binary: str, message: str, turn: Turn) -> ProviderNotInstalled:
    """The binary would not start."""
    turn.status = "failed"
    err = ProviderNotInstalled(provider, binary, message)
    turn.error = TurnError(type=type(err).__name__, reason="not_installed", message=str(err))
    return err


def cancelled_event(provider: str, turn: Turn) -> ErrorEvent:
    """Mark ``turn`` cancelled; the non-fatal event that tells a stream's consumer so."""
    turn.status = "cancelled"
    turn.error = TurnError(type="TurnCancelled", reason="cancelled", message="the turn was cancelled")
    return ErrorEvent(provider=provider, kind="cancelled", message=_STOPPED, fatal=False)


def watchdog_error(
    provider: str, exc: WatchdogExpired, progress: TurnProgress, asm: TurnAssembler, stderr: str
) -> ProviderError | CawTimeoutError:
    """The error a fired watchdog ends the turn with (the turn is ``asm.turn``, updated)."""
    turn = asm.turn
    if exc.which == "transient" and asm.limit_event is not None:
        # it was waiting out a limit the CLI reported (claude retries a 429 on its own): that limit is
        # the news, and caw's own wait policy or the next provider handles it
        return _limit_error(provider, asm.limit_event, turn, stderr)
    if exc.which == "transient":
        return _unavailable_error(provider, exc, progress, turn, stderr)
    turn.status = "timeout"
    return _timeout_error(provider, exc, turn)


def fatal_error(asm: TurnAssembler, exit_code: int | None, stderr: str) -> ProviderError:
    """The error for the fatal event the turn ended with (``asm.fatal``); the turn records it."""
    assert asm.fatal is not None
    turn = asm.turn
    err = error_from_event(asm.fatal, asm.limit_event, turn, exit_code, stderr)
    turn.status = "rate_limited" if isinstance(err, UsageLimitError) else "failed"
    turn.error = TurnError(type=type(err).__name__, reason=err.reason, message=err.detail, status=err.status)
    return err


def parse_line(parser: TurnParser, asm: TurnAssembler, line: str) -> list[Event]:
    """One stdout line -> the parser's events: a JSON object is parsed, anything else is kept as a diagnostic."""
    text = clean_line(line)
    if not text:
        return []
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return parser.feed(obj)
    asm.note(text)
    return []


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


def _timeout_error(provider: str, exc: WatchdogExpired, turn: Turn) -> CawTimeoutError:
    cls: type[CawTimeoutError] = {
        "first_output": FirstOutputTimeout,
        "idle": IdleTimeout,
        "total": TurnTimeout,
    }.get(exc.which, TurnTimeout)
    what = {
        "first_output": f"gave no answer within {exc.seconds:g}s of starting",
        "idle": f"printed nothing for {exc.seconds:g}s",
        "total": f"did not finish the turn within {exc.seconds:g}s",
    }.get(exc.which, str(exc))
    turn.error = TurnError(type=cls.__name__, reason="timeout", message=f"{provider} {what}")
    return cls(f"{provider} {what}", provider=provider, seconds=exc.seconds, turn=turn)


def _limit_error(provider: str, limit: RateLimitEvent, turn: Turn, stderr: str) -> ProviderError:
    message = limit.message or f"{provider} reported a {limit.kind} limit and kept retrying"
    err = error_from_event(ErrorEvent(provider=provider, kind="rate_limit", message=message), limit, turn, None, stderr)
    turn.status = "rate_limited"
    turn.error = TurnError(type=type(err).__name__, reason=err.reason, message=err.detail, status=err.status)
    return err


def _unavailable_error(
    provider: str, exc: WatchdogExpired, progress: TurnProgress, turn: Turn, stderr: str
) -> ProviderUnavailable:
    last = f" (last: {progress.last_notice[:300]})" if progress.last_notice else ""
    message = f"only retried for {exc.seconds:g}s ({progress.run_notices} retry notices, no answer){last}"
    turn.status = "failed"
    turn.error = TurnError(type="ProviderUnavailable", reason="unavailable", message=message)
    return ProviderUnavailable(
        provider, message, seconds=exc.seconds, retries=progress.run_notices, stderr_tail=stderr[-2000:], turn=turn
    )


def error_from_event(
    ev: ErrorEvent, limit: RateLimitEvent | None, turn: Turn, exit_code: int | None, stderr: str
) -> ProviderError:
    """Map a fatal ErrorEvent (and a rejected rate-limit event, if any) onto caw's error classes."""
    common: dict[str, Any] = {"exit_code": exit_code, "stderr_tail": stderr[-2000:], "status": ev.status, "turn": turn}
    name = ev.provider or turn.provider
    if ev.kind in ("rate_limit", "billing"):
        info = _limit_info(ev, limit)
        turn.limit = info
        return UsageLimitError(
            name, ev.message, resets_at=info.resets_at, kind=info.kind, waitable=info.waitable, **common
        )
    if ev.kind == "auth":
        return AuthenticationError(name, ev.message, **common)
    if ev.kind == "context_overflow":
        return ContextOverflowError(name, ev.message, **common)
    if ev.kind == "not_found":
        return ConversationNotFound(name, ev.message, **common)
    if ev.kind == "cli":
        return ProviderCrashed(name, ev.message, **common)
    return TurnFailed(name, ev.message, kind=ev.kind, **common)


def _limit_info(ev: ErrorEvent, limit: RateLimitEvent | None) -> LimitInfo:
    """Structured signal first (the CLI's rate-limit event), the message text second."""
    from caw.limits import detect_limit

    if limit is not None and (limit.resets_at is not None or ev.kind != "billing"):
        waitable = limit.waitable and ev.kind != "billing"
        resets_at = limit.resets_at
        kind = limit.kind if waitable else "credits"
        if resets_at is None:
            found = detect_limit(ev.message)
            if found is not None:
                resets_at = found.resets_at
        return LimitInfo(kind=kind, resets_at=resets_at, waitable=waitable, message=limit.message or ev.message)
    found = detect_limit(ev.message)
    if ev.kind == "billing":
        return LimitInfo(kind="credits", resets_at=None, waitable=False, message=ev.message)
    if found is not None:
        return LimitInfo(kind=found.kind, resets_at=found.resets_at, waitable=found.waitable, message=ev.message)
    return LimitInfo(kind="rate", resets_at=None, waitable=True, message=ev.message)
