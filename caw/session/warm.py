"""Warm sessions (issue 14): one long-lived CLI process per provider for one Session.

``WarmRunner`` is a ``TurnRunner`` (the shape of ``caw.session.turn.run_turn``). On each call it reuses the
provider's live ``WarmClient`` (or makes one with ``provider.warm_client`` and starts it, resuming
``request.resume_key``), sends the message (``begin``) and polls the turn's events through the same
``TurnAssembler``, ``TurnProgress`` and error mapping as a cold turn. The watchdogs run per turn: first
output and retry runs (``TurnProgress``), idle (``client.last_activity``) and the whole turn.

What stays as it is with a cold turn: the events, the ``Turn``, the errors and the resume key (a warm
conversation is the CLI's ordinary conversation, so a handle minted warm resumes cold and back).

What is new:

* cancel (``TurnControl.cancel``) interrupts through the CLI's protocol (``client.interrupt``), waits for the
  turn's end (at most the grace), then kills the tools the turn started (``kill_tools_since``); the turn ends
  ``cancelled`` with its partial output and the client takes the next message;
* a client that dies (``WarmClosed``) mid-turn fails that turn with ``ProviderCrashed`` carrying the partial
  turn; the next call starts the CLI again, resumes the conversation and says so with a ``WarningEvent``
  (code ``warm_restarted``), which the Session records in the trajectory's notes;
* a client idle for longer than ``idle_timeout`` is stopped (a timer) and started again on the next call;
  one whose configuration differs from the turn's is restarted; ``close()`` stops them all (``Session.end``;
  ``caw.transport.longlived`` stops what is left at interpreter exit);
* a provider without a warm mode (``warm_client`` returns None) runs its turns cold (``run_turn``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from caw.errors import CawError, CawTimeoutError, ProviderCrashed, ProviderError, TurnCancelled
from caw.events import Event, ResultEvent, WarningEvent
from caw.models import Turn, TurnError
from caw.providers.base import Provider, RunConfig, TurnRequest, WarmClient, WarmClosed
from caw.session.runner import TurnRunner
from caw.session.turn import (
    TurnAssembler,
    TurnControl,
    TurnOptions,
    TurnProgress,
    cancelled_event,
    fatal_error,
    not_installed_error,
    run_turn,
    spawn_error,
    watchdog_error,
)
from caw.transport import SpawnError, WatchdogExpired

#: a warm CLI idle for longer than this is stopped, and started again on the next send (seconds)
DEFAULT_WARM_IDLE_TIMEOUT = 10 * 60.0
#: the trajectory note's code when caw had to start a warm CLI again (it died)
RESTARTED = "warm_restarted"
#: the warning code when a CLI would not start its long-lived mode and the session runs it cold
WARM_UNAVAILABLE = "warm_unavailable"
#: the longest single wait for events: how soon a cancel flag raised without ``cancel()`` is seen
_POLL_S = 0.1
#: how long a cancelled turn may take to end once the grace is over, before its CLI is stopped
_SETTLE_S = 1.0
_DEFAULT_OPTIONS = TurnOptions()


@dataclass
class _Slot:
    """One provider's live client and what it was started with."""

    client: WarmClient
    binary: str
    config: RunConfig
    env: dict[str, str]
    last_used: float
    busy: bool = False
    timer: threading.Timer | None = None


class _WarmTurn:
    """What ``TurnControl.cancel`` calls while a warm turn runs (``caw.session.turn.WarmTarget``)."""

    def __init__(self, client: WarmClient, grace_s: float) -> None:
        self.client = client
        self.grace_s = grace_s
        self.finished = threading.Event()  # the runner is done with the turn (its tools are gone)
        self.interrupted = False
        self._lock = threading.Lock()
        #: the thread that iterates the turn: a cancel from it (inside its own `for ev in stream` loop) cannot
        #: wait for the end, the runner only moves on once that loop asks for the next event
        self.owner = threading.get_ident()

    def interrupt(self) -> None:
        """Ask the CLI to stop the turn, once."""
        with self._lock:
            if self.interrupted:
                return
            self.interrupted = True
        try:
            self.client.interrupt()
        except (WarmClosed, OSError):
            pass  # it is gone already: the runner sees that in poll

    def cancel(self, *, now: bool = False) -> None:
        """Interrupt; return once the runner has ended the turn. A turn that does not end in time (or
        ``now``) costs the CLI: it is stopped, and the next send starts it again.

        Called from the thread iterating the turn, it only interrupts (``now``: stops the CLI) and returns: the
        runner ends the turn at the consumer's next step (waiting here would stall it for the whole grace)."""
        self.interrupt()
        if threading.get_ident() == self.owner:
            if now:
                self.client.close(0.0)
            return
        if not self.finished.wait(0.5 if now else self.grace_s + _SETTLE_S):
            self.client.close(0.0 if now else self.grace_s)
            self.finished.wait(_SETTLE_S + 1.0)


class _Starting:
    """What ``TurnControl.cancel`` calls while a client starts: there is no turn to interrupt yet."""

    def __init__(self, client: WarmClient) -> None:
        self.client = client

    def cancel(self, *, now: bool = False) -> None:
        self.client.close(0.0)


class WarmRunner:
    """A ``TurnRunner`` that keeps one warm client per provider for one Session (see the module doc).

    ``idle_timeout``: seconds a client may sit unused before it is stopped (None: never).
    ``cold``: the runner for providers without a warm mode.
    ``one_turn``: the session has one turn (``completion()``): only providers whose ``warm_single_turn``
    is set go warm, the others run cold (a warm start costs more than one cold turn there).
    """

    def __init__(
        self,
        *,
        idle_timeout: float | None = DEFAULT_WARM_IDLE_TIMEOUT,
        cold: TurnRunner = run_turn,
        one_turn: bool = False,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.cold = cold
        self.one_turn = one_turn
        self._slots: dict[str, _Slot] = {}
        #: providers whose client died: the next start says so on the trajectory
        self._crashed: dict[str, str] = {}
        #: providers whose CLI would not start its long-lived mode: their turns run cold (name -> why)
        self._cold_only: dict[str, str] = {}
        self._lock = threading.Lock()

    # ---- the TurnRunner ----------------------------------------------------------------------------------
    def __call__(
        self,
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        base_env: dict[str, str],
        options: TurnOptions = _DEFAULT_OPTIONS,
        control: TurnControl | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Generator[Event, None, Turn]:
        """Run one turn on the provider's warm client; yield events; return the Turn or raise (see module doc)."""
        control = control or TurnControl()
        control.grace_s = options.stop_grace_s
        if binary is None:
            turn = Turn(input=request.prompt, provider=provider.name, model=config.model)
            control.turn = turn
            raise not_installed_error(provider, {**base_env, **config.env}, turn)
        env = {**base_env, **config.env, "PWD": os.path.abspath(config.cwd)}
        if (self.one_turn and not provider.warm_single_turn) or provider.name in self._cold_only:
            client: WarmClient | None = None
            reuse = None
        elif _per_turn_flags(request, provider.warm_request_fields):
            # options the CLI takes on its command line (a schema, its own caps): a warm process was started
            # with another command line, so this turn runs cold, and the warm process, whose history would
            # now lag behind the conversation on disk, is stopped (the next warm turn resumes it)
            with self._lock:
                stale = self._slots.get(provider.name)
            if stale is not None:
                self._discard(provider.name, stale)
            client = None
            reuse = None
        else:
            reuse = self._reusable(provider.name, binary, config, env, request, clock)
            client = reuse.client if reuse is not None else provider.warm_client(binary, config, env)
        if client is None:  # no warm mode (or a turn it cannot take): this turn runs cold
            return (
                yield from self.cold(
                    provider, binary, config, request, base_env=base_env, options=options, control=control, clock=clock
                )
            )
        turn = Turn(input=request.prompt, provider=provider.name, model=config.model)
        control.turn = turn
        asm = TurnAssembler(turn)
        started = clock()
        slot = reuse
        note = self._crashed.pop(provider.name, None)
        begun = False
        if slot is None:
            args = (binary, config, env, request, options, turn, clock, control)
            try:
                slot = yield from self._starting(provider, client, *args)
            except ProviderCrashed as exc:
                if control.cancelled.is_set():
                    raise
                # the CLI exited before its long-lived mode answered the handshake (a version or a wrapper
                # that only knows one-shot runs): this session's turns on it run cold, as they would with
                # warm=False; a CLI that is really broken fails the cold turn with its own error
                why = f"{provider.name} did not start its long-lived mode ({exc.detail or exc}); its turns run cold"
                self._cold_only[provider.name] = why
                yield WarningEvent(provider=provider.name, code=WARM_UNAVAILABLE, message=why)
                return (
                    yield from self.cold(
                        provider, binary, config, request, base_env=base_env, options=options, control=control,
                        clock=clock,
                    )
                )  # fmt: skip
        elif not control.cancelled.is_set():
            try:
                slot.client.begin(request)
                begun = True
            except WarmClosed as exc:  # it died between turns, before it saw this message: start it again
                self._discard(provider.name, slot)
                note = note or _died(exc)
                fresh = provider.warm_client(binary, config, env)
                if fresh is None:
                    raise self._crash(provider.name, exc, turn) from None
                args = (binary, config, env, request, options, turn, clock, control)
                slot = yield from self._starting(provider, fresh, *args)
        return (yield from self._run(provider, slot, request, options, control, asm, started, clock, note, begun))

    def close(self) -> None:
        """Stop every client (and everything each started). Idempotent; later calls start new clients."""
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._stop(slot)

    # ---- clients -----------------------------------------------------------------------------------------
    def _reusable(
        self,
        name: str,
        binary: str,
        config: RunConfig,
        env: dict[str, str],
        request: TurnRequest,
        clock: Callable[[], float],
    ) -> _Slot | None:
        """The live client for this turn, or None after stopping one that does not fit it."""
        with self._lock:
            slot = self._slots.get(name)
            if slot is not None:
                slot.busy = True  # the idle timer leaves it alone from here on
        if slot is None:
            return None
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        client = slot.client
        if not client.alive:
            self._crashed.setdefault(name, f"{name}'s warm process had exited")
        elif (slot.binary, slot.config, slot.env) != (binary, config, env):
            pass  # another configuration: a fresh CLI with it continues the conversation
        elif self.idle_timeout is not None and clock() - slot.last_used > self.idle_timeout:
            pass  # idle too long: stopped, and started again (quietly; nothing was lost)
        elif client.resume_key != request.resume_key:
            pass  # the session moved to another (or a fresh) conversation
        else:
            return slot
        self._discard(name, slot)
        return None

    def _starting(self, provider: Provider, *args: Any) -> Generator[Event, None, _Slot]:
        """``_start``; a cancel meanwhile is told to the stream (the non-fatal ``cancelled`` event), as cold."""
        try:
            return self._start(provider, *args)
        except TurnCancelled as exc:
            if exc.turn is not None:
                yield cancelled_event(provider.name, exc.turn)
            raise

    def _start(
        self,
        provider: Provider,
        client: WarmClient,
        binary: str,
        config: RunConfig,
        env: dict[str, str],
        request: TurnRequest,
        options: TurnOptions,
        turn: Turn,
        clock: Callable[[], float],
        control: TurnControl,
    ) -> _Slot:
        """Start ``client`` (resuming ``request.resume_key``) and keep it; errors carry ``turn``.

        A cancel meanwhile (a slow handshake: MCP servers start inside it) stops the client at once, and
        the turn ends cancelled."""
        lock = provider.first_start_lock(env)
        control.attach_warm(_Starting(client))
        try:
            if control.cancelled.is_set():
                raise WarmClosed("cancelled before it started")
            if lock is not None:
                lock.acquire()
            client.start(request, timeout=options.first_output_timeout)
            if lock is not None:
                lock.release(started=True)
                lock = None
        except SpawnError as exc:
            client.close(0.0)
            _raise_if_cancelled(control, provider.name, turn)
            raise spawn_error(provider.name, binary, str(exc), turn) from exc
        except WarmClosed as exc:
            client.close(0.0)
            _raise_if_cancelled(control, provider.name, turn)
            raise self._crash(provider.name, exc, turn) from None
        except CawError as exc:
            client.close(0.0)
            _raise_if_cancelled(control, provider.name, turn)
            _fail(turn, exc)
            if isinstance(exc, ProviderError | CawTimeoutError) and exc.turn is None:
                exc.turn = turn
            raise
        except BaseException:
            client.close(0.0)
            raise
        finally:
            control.attach_warm(None)
            if lock is not None:
                lock.release(started=False)
        slot = _Slot(client, binary, config, env, last_used=clock(), busy=True)
        with self._lock:
            self._slots[provider.name] = slot
        return slot

    def _retire_others(self, name: str) -> None:
        """``name`` answered: a session stays with the provider that answered, so the warm processes of
        providers that failed before it in a fallback order are stopped."""
        with self._lock:
            others = [(n, s) for n, s in self._slots.items() if n != name and not s.busy]
        for other, slot in others:
            self._discard(other, slot)

    def _discard(self, name: str, slot: _Slot) -> None:
        with self._lock:
            if self._slots.get(name) is slot:
                del self._slots[name]
        self._stop(slot)

    def _stop(self, slot: _Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        slot.client.close()

    def _park(self, name: str, slot: _Slot, clock: Callable[[], float]) -> None:
        """The turn is over: the client waits for the next one, at most ``idle_timeout``."""
        slot.busy = False
        slot.last_used = clock()
        if self.idle_timeout is None:
            return
        timer = threading.Timer(self.idle_timeout, self._expire, (name, slot))
        timer.daemon = True
        slot.timer = timer
        timer.start()

    def _expire(self, name: str, slot: _Slot) -> None:
        with self._lock:
            if self._slots.get(name) is not slot or slot.busy:
                return
            del self._slots[name]
        slot.timer = None
        slot.client.close()

    def _crash(self, name: str, exc: WarmClosed, turn: Turn) -> ProviderCrashed:
        """A dead client mid-turn: the turn fails, the next start resumes and says so."""
        self._crashed[name] = _died(exc)
        message = f"the warm {name} process stopped during the turn ({exc})"
        turn.status = "failed"
        err = ProviderCrashed(name, message, exit_code=exc.exit_code, stderr_tail=exc.stderr_tail[-2000:], turn=turn)
        turn.error = TurnError(type=type(err).__name__, reason=err.reason, message=err.detail)
        return err

    # ---- one turn ----------------------------------------------------------------------------------------
    def _run(
        self,
        provider: Provider,
        slot: _Slot,
        request: TurnRequest,
        options: TurnOptions,
        control: TurnControl,
        asm: TurnAssembler,
        started: float,
        clock: Callable[[], float],
        note: str | None,
        begun: bool,
    ) -> Generator[Event, None, Turn]:
        name, client, turn = provider.name, slot.client, asm.turn
        target = _WarmTurn(client, options.stop_grace_s)
        control.attach_warm(target)
        before = client.tool_pids()
        progress = TurnProgress(options, started)
        try:
            if note is not None:
                yield WarningEvent(provider=name, code=RESTARTED, message=_restarted(name, note, request))
            if control.cancelled.is_set():
                turn.duration_ms = _ms(clock() - started)
                yield cancelled_event(name, turn)
                raise TurnCancelled(turn=turn)
            if not begun:
                client.begin(request)
            answered = False
            stop_at: float | None = None  # the cancel's grace ends (the turn was interrupted)
            last_seen = started
            while not client.turn_done:
                target.owner = threading.get_ident()
                now = clock()
                if control.cancelled.is_set() and stop_at is None:
                    target.interrupt()
                    stop_at = now + options.stop_grace_s
                if stop_at is not None and now >= stop_at:
                    break
                due = None if stop_at is not None else _deadline(options, progress, client, started, last_seen)
                if due is not None and now >= due[0]:
                    raise WatchdogExpired(due[1], due[2])
                wait = _POLL_S
                if due is not None:
                    wait = min(wait, due[0] - now)
                if stop_at is not None:
                    wait = min(wait, stop_at - now)
                events = client.poll(max(0.0, wait))
                if events:
                    last_seen = clock()
                for raw in events:
                    for ev in asm.feed(raw):
                        answered = answered or isinstance(ev, ResultEvent)
                        progress.see(ev, clock())
                        yield ev
            if control.cancelled.is_set():
                self._end_interrupted(name, slot, before)
                turn.duration_ms = _ms(clock() - started)
                yield cancelled_event(name, turn)
                raise TurnCancelled(turn=turn)
            if asm.fatal is None and not answered:
                for ev in asm.feed(ResultEvent(provider=name)):
                    yield ev
            turn.duration_ms = _ms(clock() - started)
            if asm.fatal is not None:
                raise fatal_error(asm, None, client.stderr_tail())
            turn.status = "completed"
            self._retire_others(name)
            return turn
        except WatchdogExpired as exc:
            self._settle(name, slot, target, asm, options.stop_grace_s, before, clock)
            turn.duration_ms = _ms(clock() - started)
            raise watchdog_error(name, exc, progress, asm, client.stderr_tail()) from None
        except WarmClosed as exc:
            self._discard(name, slot)
            turn.duration_ms = _ms(clock() - started)
            if control.cancelled.is_set():  # stopped by the cancel (its grace ran out): still a cancel
                self._crashed.pop(name, None)
                yield cancelled_event(name, turn)
                raise TurnCancelled(turn=turn) from None
            raise self._crash(name, exc, turn) from None
        except GeneratorExit:
            # the consumer stopped iterating (break / close): this counts as a cancel
            turn.status = "cancelled"
            self._settle(name, slot, target, asm, options.stop_grace_s, before, clock)
            raise
        finally:
            asm.flush()
            control.attach_warm(None)
            target.finished.set()
            with self._lock:
                kept = self._slots.get(name) is slot
            if kept:
                self._park(name, slot, clock)

    def _end_interrupted(self, name: str, slot: _Slot, before: set[int]) -> None:
        """After a cancel: the tools the turn started go; a turn that did not end costs the CLI."""
        if slot.client.turn_done and slot.client.alive:
            slot.client.kill_tools_since(before)
        else:
            self._discard(name, slot)

    def _settle(
        self,
        name: str,
        slot: _Slot,
        target: _WarmTurn,
        asm: TurnAssembler,
        grace_s: float,
        before: set[int],
        clock: Callable[[], float],
    ) -> None:
        """Interrupt the turn and wait (at most ``grace_s``) for its end, keeping what arrives meanwhile."""
        target.interrupt()
        client = slot.client
        stop_at = clock() + grace_s
        try:
            while not client.turn_done and clock() < stop_at:
                for raw in client.poll(min(_POLL_S, max(0.0, stop_at - clock()))):
                    asm.feed(raw)
        except WarmClosed:
            pass
        self._end_interrupted(name, slot, before)


#: the TurnRequest fields a warm process takes per message; any other set field is a command-line option
_PER_MESSAGE = frozenset({"prompt", "resume_key", "new_key"})


def _per_turn_flags(request: TurnRequest, taken: frozenset[str] = frozenset()) -> bool:
    """Whether ``request`` sets an option beyond the message itself that the warm client does not take."""
    for f in dataclasses.fields(request):
        if f.name in _PER_MESSAGE or f.name in taken or f.default is dataclasses.MISSING:
            continue
        if getattr(request, f.name) != f.default:
            return True
    return False


def _deadline(
    options: TurnOptions, progress: TurnProgress, client: WarmClient, started: float, last_seen: float
) -> tuple[float, str, float] | None:
    """The turn's next watchdog deadline: (when, which, seconds)."""
    due: list[tuple[float, str, float]] = []
    event_level = progress.deadline()
    if event_level is not None:
        due.append(event_level)
    if options.timeout is not None:
        due.append((started + options.timeout, "total", options.timeout))
    if options.idle_timeout is not None:
        activity = client.last_activity
        ref = max(started, last_seen if activity is None else max(activity, last_seen))
        due.append((ref + options.idle_timeout, "idle", options.idle_timeout))
    return min(due) if due else None


def _died(exc: WarmClosed) -> str:
    code = f" (exit code {exc.exit_code})" if exc.exit_code is not None else ""
    return f"{exc}{code}"


def _restarted(name: str, why: str, request: TurnRequest) -> str:
    what = "resumed the conversation" if request.resume_key else "started a new conversation"
    return f"{name}'s warm process had stopped ({why}); caw started it again and {what}"


def _raise_if_cancelled(control: TurnControl, name: str, turn: Turn) -> None:
    """A start that failed because the turn was cancelled meanwhile: the turn ends cancelled."""
    if control.cancelled.is_set():
        cancelled_event(name, turn)
        raise TurnCancelled(turn=turn) from None


def _fail(turn: Turn, exc: CawError) -> None:
    turn.status = "failed"
    reason = getattr(exc, "reason", "error")
    turn.error = TurnError(type=type(exc).__name__, reason=str(reason), message=str(exc))


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


__all__ = ["DEFAULT_WARM_IDLE_TIMEOUT", "RESTARTED", "WarmRunner"]
