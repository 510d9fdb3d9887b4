"""A conversation: turns in order on one provider, persisted as they happen.

The first send may try several providers (the fallback order); once a turn is produced the session is
committed to that provider. A turn that hits a usage limit is waited out (auto-wait) and the same
conversation continues. Every turn, also a partial or failed one, lands on the trajectory and, with a
``data_dir``, on disk.

The decisions (which provider next, when to wait and retry) belong to the policies,
``caw.policy.fallback.first_answer`` and ``caw.policy.autowait.wait_and_retry``. The session hands them its
attempts and keeps the conversation: FIFO sends, streaming, cancel, commit, bookkeeping, persistence.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from caw.errors import (
    CawError,
    CawTimeoutError,
    ConversationNotFound,
    ProviderError,
    SessionStateError,
    StorageError,
    StructuredOutputError,
    TurnCancelled,
    TurnFailed,
    UsageLimitError,
)
from caw.events import Event, SessionStarted, WarningEvent, event_summary
from caw.models import Attempt, MCPServer, Trajectory, Turn, TurnError, utcnow
from caw.policy.autowait import LimitWaiter, wait_and_retry
from caw.policy.fallback import first_answer
from caw.providers.base import RunConfig, TurnRequest
from caw.redact import NO_REDACTION
from caw.session.budget import Budget
from caw.session.call import CallOptions, check_call, ledger_for, native_failure, prepare, runner_for
from caw.session.candidate import Candidate
from caw.session.runner import TurnRunner
from caw.session.turn import TurnControl, TurnOptions, run_turn
from caw.state.store import SessionStore, load_trajectory_file, save_trajectory_file

if TYPE_CHECKING:
    # imported where used: a run that needs no async stream and no permission tool loads neither (issue 18)
    import asyncio

    from caw.session.warm import WarmRunner
    from caw.tools.endpoint import ToolEndpoint
    from caw.tools.executor import ToolExecutor
    from caw.tools.permissions import PermissionCallback
    from caw.tools.subagents import SubagentLog
    from caw.tools.toolkit import ToolServer

_T = TypeVar("_T")


class Logger(Protocol):
    """What ``Agent(logger=...)`` takes: any object with these methods (a ``logging.Logger`` works).

    It gets a one-line summary per event (``info``), and caw's warnings (``warn``, or ``warning``).
    """

    def info(self, msg: str, /) -> Any: ...
    def warn(self, msg: str, /) -> Any: ...
    def error(self, msg: str, /) -> Any: ...


class _FifoLock:
    """A lock granted in the order tickets were taken (overlapping ``send_async`` calls run in order)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def ticket(self) -> int:
        with self._cond:
            t = self._next_ticket
            self._next_ticket += 1
            return t

    def acquire(self, ticket: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._serving == ticket)

    def release(self) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()

    def if_serving(self, ticket: int, fn: Callable[[], _T]) -> _T | None:
        """``fn()`` under the lock when ``ticket`` holds it, so no later ticket can start meanwhile."""
        with self._cond:
            return fn() if self._serving == ticket else None


class TurnStream:
    """Iterate to receive events as they arrive; ``turn`` holds the finished Turn afterwards.

    Breaking out of the loop (or ``close()``) cancels the turn; the partial turn is kept.
    """

    def __init__(self, gen: Generator[Event, None, Turn]) -> None:
        self._gen = gen
        self._turn: Turn | None = None

    def __iter__(self) -> Iterator[Event]:
        self._turn = yield from self._gen
        return None

    @property
    def turn(self) -> Turn:
        """The finished turn (``SessionStateError`` until iteration has finished)."""
        if self._turn is None:
            raise SessionStateError("the turn has not finished yet: iterate the stream first")
        return self._turn

    def close(self) -> None:
        """Stop early: the turn is cancelled and the partial turn kept. Nothing happens if it never started."""
        self._gen.close()

    def __enter__(self) -> TurnStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTurnStream:
    """``async for`` over the events of one turn, as they arrive; ``turn`` holds the finished Turn afterwards.

    The async twin of ``TurnStream`` (``Session.astream``). The turn runs on a worker thread, which fetches
    the next event only when the loop asks for it, so the event loop never blocks. Leaving early (``break``,
    ``aclose()``, the consuming task cancelled) cancels the turn; the partial turn is kept, as cancelled.
    After a ``break`` the cancel finishes in the background; ``await stream.aclose()`` waits for it. Driven
    with ``anext(stream)`` instead of ``async for``, call ``aclose()`` when you stop early.
    """

    def __init__(self, session: Session, message: str, call: CallOptions | None = None) -> None:
        self._session = session
        self._message = message
        self._call = call  # output= and a per-call budget (issue 16)
        self._turn: Turn | None = None
        self._started = False
        self._finished = False  # the worker delivered the turn or an error
        self._closed_unstarted = False
        self._ticket = -1
        self._control: TurnControl | None = None
        self._asked = threading.Semaphore(0)  # one release per event asked for (and one to wake it to stop)
        self._abandoned = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._exited: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._direct: AsyncGenerator[Event, None] | None = None

    def __aiter__(self) -> AsyncIterator[Event]:
        # a fresh async generator: after ``break`` nothing else holds it, so asyncio closes it (and the turn)
        return self._iterate()

    async def __anext__(self) -> Event:
        if self._direct is None:
            self._direct = self._iterate()
        return await self._direct.__anext__()

    @property
    def turn(self) -> Turn:
        """The finished turn; after an early exit, the partial turn kept as cancelled (if one was built)."""
        if self._turn is None:
            raise SessionStateError("the turn has not finished yet: iterate the stream first")
        return self._turn

    async def aclose(self) -> None:
        """Stop early: cancel the turn, keep the partial turn, return when nothing runs any more. Idempotent."""
        if not self._started:
            self._started = self._finished = self._closed_unstarted = True  # nothing was sent, nothing will be
            return
        import asyncio

        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def __aenter__(self) -> AsyncTurnStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- the loop side ---------------------------------------------------------------------------------
    async def _iterate(self) -> AsyncGenerator[Event, None]:
        if self._closed_unstarted:
            return
        if self._started:
            raise SessionStateError("an AsyncTurnStream can be iterated once")
        self._start()
        assert self._queue is not None
        try:
            while True:
                self._asked.release()
                kind, value = await self._queue.get()
                if kind == "event":
                    yield value
                    continue
                self._finished = True
                if kind == "turn":
                    self._turn = value
                    return
                raise value
        finally:
            if not self._finished:  # break (asyncio closes the generator), aclose(), or the task cancelled
                await self.aclose()

    def _start(self) -> None:
        import asyncio

        self._started = True
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._exited = self._loop.create_future()
        self._ticket = self._session._fifo.ticket()  # the place in line is taken when iteration starts
        threading.Thread(target=self._work, name="caw-astream", daemon=True).start()

    async def _shutdown(self) -> None:
        import asyncio

        assert self._queue is not None and self._exited is not None
        self._abandoned.set()
        self._asked.release()  # wake a worker waiting to be asked
        await asyncio.get_running_loop().run_in_executor(None, self._cancel_running)
        await asyncio.shield(self._exited)
        while not self._queue.empty():  # what the worker delivered after the consumer stopped listening
            kind, value = self._queue.get_nowait()
            if kind == "turn":
                self._turn = value
        self._finished = True

    # ---- the worker side -------------------------------------------------------------------------------
    def _cancel_running(self) -> None:
        """Cancel this stream's turn if it is the one running (``TurnControl.cancel`` blocks until the CLI is gone)."""
        session = self._session

        def raise_flags() -> TurnControl | None:
            session._cancel_wait.set()  # also ends a limit wait of this turn
            control = session._control
            if control is not None:
                control.cancelled.set()
            return control

        control = session._fifo.if_serving(self._ticket, raise_flags)
        if control is not None:
            control.cancel()

    def _work(self) -> None:
        session = self._session
        try:
            # wait in line here, not inside the generator: a stream abandoned in line sends nothing
            session._fifo.acquire(self._ticket)
            gen = session._ticketed_events(self._ticket, self._message, self._call)  # its acquire returns at once
            running = False
            while True:
                self._asked.acquire()
                if self._abandoned.is_set():
                    break
                running = True
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    self._post("turn", stop.value)
                    return
                except BaseException as exc:
                    if self._abandoned.is_set():  # cancelled by aclose(): the error carries the partial turn
                        self._turn = getattr(exc, "turn", None)
                    self._post("error", exc)
                    return
                self._control = session._control  # this turn's: the generator is paused inside its attempt
                self._post("event", ev)
            if running:
                gen.close()  # the partial turn is recorded as cancelled (Session._keep_abandoned)
                control = self._control
                self._turn = control.turn if control is not None else None
            else:
                session._fifo.release()
        finally:
            self._post("exited", None)

    def _post(self, kind: str, value: Any) -> None:
        loop, queue, exited = self._loop, self._queue, self._exited
        assert loop is not None and queue is not None and exited is not None

        def deliver() -> None:
            if kind == "exited":
                if not exited.done():
                    exited.set_result(None)
            else:
                queue.put_nowait((kind, value))

        try:
            loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass


@dataclass
class SessionSetup:
    """Everything a session needs besides its candidates (built by ``Agent``)."""

    base_env: dict[str, str] = field(default_factory=dict)
    options: TurnOptions = field(default_factory=TurnOptions)
    store: SessionStore | None = None
    logger: Logger | None = None
    limit_waiter: LimitWaiter | None = None
    clock: Callable[[], float] = time.monotonic
    #: providers to skip without trying (cooldown memory); name -> reason text
    skip: Callable[[str], str | None] = lambda name: None
    #: when a skipped provider's cooldown ends (to wait for it when no provider is left)
    cooldown_until: Callable[[str], datetime | None] = lambda name: None
    #: called when a provider reports a usage limit with a reset time (cooldown memory)
    on_limit: Callable[[UsageLimitError], None] = lambda err: None
    #: also write the trajectory here after every turn
    traj_path: Path | None = None
    #: resuming a conversation the CLI no longer has: "raise" ConversationNotFound, or start "fresh"
    on_missing: str = "raise"
    #: runs one turn (``caw.session.turn.run_turn``); ``Agent(runner=...)`` substitutes a scripted one
    runner: TurnRunner = run_turn
    #: ``Agent(can_use_tool=...)``: asked before each tool use the CLI would prompt for (claude)
    permission_callback: PermissionCallback | None = None
    #: masks secrets in what the session writes (trajectory, turns, --save) and logs; the Turn keeps them
    redact: Callable[[str], str] = NO_REDACTION
    #: the session's budget (``Agent(max_cost_usd=..., max_tokens=..., ...)``): every run counts (issue 16)
    budget: Budget | None = None
    #: Python tools served on the session's endpoint (``stateless_tools``, ToolKits, subagents; docs/tools.md)
    tool_servers: list[ToolServer] = field(default_factory=list)
    #: a tool call's deadline in seconds (None: none) and how many sync tools run at once
    tool_timeout: float | None = 600.0
    tool_workers: int = 8
    #: the runs of this session's subagent tools, linked to the turn's ToolUse blocks
    subagent_log: SubagentLog | None = None
    #: keep one CLI process per provider across turns (``caw.session.warm.WarmRunner``; issue 14), used when
    #: ``runner`` is the default ``run_turn``
    warm: bool = False
    #: seconds a warm CLI may sit unused before it is stopped (None: never); the next send starts it again
    warm_idle_timeout: float | None = 600.0  # caw.session.warm.DEFAULT_WARM_IDLE_TIMEOUT
    #: a one-turn session (``completion()``): only CLIs whose ``warm_single_turn`` says so go warm
    warm_one_turn: bool = False
    #: wraps the runner the session uses, warm or cold (the fleet's shared limit ledger; issue 19)
    gate: Callable[[TurnRunner], TurnRunner] | None = None


class Session:
    """One conversation. Create it with ``Agent.start_session()`` (or ``resume_session``)."""

    def __init__(
        self,
        candidates: list[Candidate],
        setup: SessionSetup,
        trajectory: Trajectory | None = None,
        *,
        resume_key: str | None = None,
        read_only: bool = False,
    ) -> None:
        if not candidates and not read_only:
            raise SessionStateError("a session needs at least one provider")
        self._candidates = list(candidates)
        self._setup = setup
        self._committed: Candidate | None = candidates[0] if (resume_key and candidates) else None
        self._resume_key = resume_key
        self._read_only = read_only
        self._fifo = _FifoLock()
        self._control: TurnControl | None = None
        self._cancel_wait = threading.Event()
        self._ended = False
        self._endpoint: ToolEndpoint | None = None
        self._executor: ToolExecutor | None = None
        self._tool_urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._runner: TurnRunner = setup.runner
        self._warm: WarmRunner | None = None
        if setup.warm and setup.runner is run_turn and not read_only:
            from caw.session.warm import WarmRunner

            self._warm = self._runner = WarmRunner(idle_timeout=setup.warm_idle_timeout, one_turn=setup.warm_one_turn)
        if setup.gate is not None:
            self._runner = setup.gate(self._runner)
        self.trajectory = trajectory or Trajectory(session_id=uuid.uuid4().hex[:16])
        self._call: CallOptions | None = None  # the running send's output= and budget (issue 16)
        self._ledger = ledger_for(setup.budget, self.trajectory)
        if setup.subagent_log is not None:
            setup.subagent_log.parent_dir = self.session_dir  # subagents save their trajectories under it
        if self._committed is not None and not self.trajectory.agent:
            self.trajectory.agent = self._committed.provider.name
        if self._committed is not None:
            self._note_kept_system_prompt(self._committed)

    def _config_for(self, cand: Candidate) -> RunConfig:
        """The candidate's configuration for this turn: caw's tool servers (one endpoint for the session) added,
        and its permission tool when a callback is set."""
        callback = self._setup.permission_callback
        wants_guard = callback is not None and cand.provider.supports_permission_callback
        if not self._setup.tool_servers and not wants_guard:
            return cand.config
        from caw.tools.permissions import PROMPT_TOOL
        from caw.tools.permissions import SERVER_NAME as PERMISSION_SERVER

        urls = self._start_tools()
        # the CLI waits a little longer than caw's own per-call deadline, so the model gets caw's timeout message
        wait = None if self._setup.tool_timeout is None else self._setup.tool_timeout + 30
        servers = [MCPServer(name=s.name, url=urls[s.name], tool_timeout=wait) for s in self._setup.tool_servers]
        config = replace(cand.config, mcp_servers=(*cand.config.mcp_servers, *servers))
        if not wants_guard:
            return config
        guard = MCPServer(name=PERMISSION_SERVER, url=urls[PERMISSION_SERVER])
        return replace(config, mcp_servers=(*config.mcp_servers, guard), permission_prompt_tool=PROMPT_TOOL)

    def _start_tools(self) -> dict[str, str]:
        """Start the session's endpoint (once): every tool server and the permission tool on one port."""
        if self._endpoint is not None:
            return self._tool_urls
        from caw.tools.endpoint import Tool, ToolEndpoint
        from caw.tools.executor import ToolExecutor
        from caw.tools.permissions import SERVER_NAME as PERMISSION_SERVER
        from caw.tools.permissions import permission_tool

        setup = self._setup
        executor = ToolExecutor(max_workers=setup.tool_workers, timeout=setup.tool_timeout)
        endpoint = ToolEndpoint()
        for server in setup.tool_servers:
            endpoint.mount(
                server.name,
                [Tool(t.name, t.description, t.input_schema, functools.partial(executor.run, t)) for t in server.tools],
            )
        if setup.permission_callback is not None:
            endpoint.mount(PERMISSION_SERVER, [permission_tool(setup.permission_callback)])
        endpoint.start()
        self._executor, self._endpoint = executor, endpoint
        names = [s.name for s in setup.tool_servers] + ([PERMISSION_SERVER] if setup.permission_callback else [])
        self._tool_urls = {name: endpoint.url_for(name) for name in names}
        return self._tool_urls

    def _note_kept_system_prompt(self, cand: Candidate) -> None:
        """A resumed claude conversation keeps its first system prompt: say so rather than pretend."""
        before, now = self.trajectory.system_prompt, cand.config.system_prompt
        if cand.provider.keeps_first_system_prompt and now is not None and before is not None and now != before:
            note = (
                f"{cand.provider.name} keeps this conversation's first system prompt on resume; "
                "the new system prompt is not applied (start a new conversation to change it)"
            )
            self.trajectory.notes.append(note)
            self._log("warn", note)

    # ---- public API ------------------------------------------------------------------------------
    def send(self, message: str, **options: Any) -> Turn:
        """Send one message and return the finished turn. Raises a ``caw.errors`` error on failure.

        ``options`` (issue 16; docs/structured-output.md): ``output=`` (a pydantic model class, a dataclass, a
        TypedDict or a JSON schema dict: the turn's ``parsed`` is the validated answer; one repair turn, then
        ``StructuredOutputError``) and this call's budget, ``max_cost_usd``, ``max_tokens``, ``max_turns``,
        ``max_duration`` (crossing one stops the turn: ``BudgetExceeded``). The same for every send method.
        """
        call = CallOptions.build(**options)
        ticket = self._fifo.ticket()
        return self._run_ticketed(ticket, message, call)

    def send_async(self, message: str, **options: Any) -> asyncio.Future[Turn]:
        """Awaitable ``send`` (call it inside a running event loop).

        Overlapping calls run one after another in the order they were made: the place in line is taken
        when ``send_async`` is called, not when the result is awaited.
        """
        import asyncio

        call = CallOptions.build(**options)
        loop = asyncio.get_running_loop()
        ticket = self._fifo.ticket()
        return loop.run_in_executor(None, self._run_ticketed, ticket, message, call)

    def stream(self, message: str, **options: Any) -> TurnStream:
        """Yield events as they arrive; the finished Turn is ``stream.turn`` after iteration.

        The turn starts (and takes its place in line) when iteration starts: a stream that is never
        iterated sends nothing and holds up nobody.
        """
        return TurnStream(self._ticketed_events(None, message, CallOptions.build(**options)))

    def astream(self, message: str, **options: Any) -> AsyncTurnStream:
        """``async for`` twin of ``stream``: the same events, and the event loop is never blocked.

        >>> async def watch(session):                            # doctest: +SKIP
        ...     stream = session.astream("List the files here.")
        ...     async for event in stream:
        ...         print(event_summary(event))
        ...     return stream.turn

        Like ``stream``, the turn takes its place in line (after earlier ``send``/``send_async``/``stream``
        calls) when iteration starts. Leaving the loop early (``break``, ``aclose()``, the task cancelled)
        cancels the turn and keeps the partial turn.
        """
        return AsyncTurnStream(self, message, CallOptions.build(**options))

    def cancel(self, *, now: bool = False) -> None:
        """Stop the running turn (or a limit wait). Returns when the CLI and its tools are gone.

        ``now=True`` skips the CLI's grace period and kills its process tree at once (a second Ctrl-C); it
        also hurries a ``cancel()`` already waiting in another thread.
        """
        self._cancel_wait.set()
        control = self._control
        if control is not None:
            control.cancel(now=now)
        if self._executor is not None:
            self._executor.cancel_all()  # running async tool calls are cancelled, queued ones dropped

    def end(self) -> Trajectory:
        """Finish the session: stop anything running, stamp ``completed_at``, persist. Idempotent."""
        if not self._ended:
            self.cancel()
            self._ended = True
            if self._warm is not None:
                self._warm.close()  # the warm CLIs and everything they started
            if self._endpoint is not None:
                self._endpoint.stop()  # nothing the session opened is left listening
                self._endpoint = None
            if self._executor is not None:
                self._executor.close()
                self._executor = None
            if not self._read_only:
                self.trajectory.completed_at = utcnow()
                self._persist()
        return self.trajectory

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    @property
    def provider(self) -> str | None:
        """The provider the session is committed to (None before the first turn of a fallback order)."""
        return self._committed.provider.name if self._committed else None

    @property
    def resume_key(self) -> str | None:
        """The provider's own conversation id."""
        return self._resume_key

    @property
    def resume_handle(self) -> str:
        """An opaque string that resumes this conversation in another process (see ``caw.state.handle``)."""
        if self._committed is None or self._resume_key is None:
            raise SessionStateError("no resume handle yet: the conversation starts with the first turn")
        return self._make_handle()

    def redact(self, text: str) -> str:
        """``text`` with this session's secrets masked, as caw writes it (``Agent(redact=False)``: unchanged)."""
        return self._setup.redact(text)

    @property
    def session_dir(self) -> Path | None:
        """Where the session is saved (``<data_dir>/sessions/<session_id>``), or None without a ``data_dir``."""
        store = self._setup.store
        return store.session_dir(self.trajectory.session_id) if store else None

    def save_trajectory(self, path: str | Path) -> Path:
        """Write the trajectory as JSON (atomically) to ``path``."""
        target = Path(path)
        save_trajectory_file(self.trajectory, target, redact=self._setup.redact)
        return target

    @classmethod
    def load_trajectory(cls, path: str | Path) -> Session:
        """A read-only session over a saved trajectory (``send`` raises)."""
        traj = load_trajectory_file(Path(path))
        return cls([], SessionSetup(), traj, read_only=True)

    # ---- turn orchestration ----------------------------------------------------------------------
    def _run_ticketed(self, ticket: int, message: str, call: CallOptions | None = None) -> Turn:
        gen = self._ticketed_events(ticket, message, call)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            turn: Turn = stop.value
            return turn

    def _ticketed_events(
        self, ticket: int | None, message: str, call: CallOptions | None = None
    ) -> Generator[Event, None, Turn]:
        if ticket is None:
            ticket = self._fifo.ticket()
        self._fifo.acquire(ticket)
        try:
            self._check_can_send(message)
            self._cancel_wait.clear()
            self._call = call
            check_call(self._ledger, call, [c.provider for c in self._candidates], self.trajectory)  # issue 16
            turn = yield from self._send_one(message)
            if call is not None and call.errors:
                turn = yield from self._repair(call)
            return turn
        finally:
            self._call = None
            self._fifo.release()

    def _send_one(self, message: str) -> Generator[Event, None, Turn]:
        try:
            if self._committed is None:
                return (yield from self._first_send(message))
            return (yield from self._committed_send(self._committed, message))
        except TurnFailed as exc:  # claude gave up on its own schema retries (issue 16)
            if self._call is None or exc.kind != "structured_output":
                raise
            raise native_failure(self._call, exc) from exc

    def _repair(self, call: CallOptions) -> Generator[Event, None, Turn]:
        """``output=``'s one repair turn with the validation errors; invalid again: ``StructuredOutputError``."""
        assert self._committed is not None and call.output is not None
        turn = yield from self._committed_send(self._committed, call.output.repair_prompt(call.errors or []))
        if call.errors:
            raise StructuredOutputError(call.raw, call.errors, turn=turn, schema=call.output.schema)
        return turn

    def _check_can_send(self, message: str) -> None:
        if self._read_only:
            raise SessionStateError("this session was loaded from a file and is read-only")
        if self._ended:
            raise SessionStateError("this session has ended")
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, not {type(message).__name__}")

    def _first_send(self, message: str) -> Generator[Event, None, Turn]:
        """Try candidates in order until one produces a turn (the decisions: ``caw.policy.fallback``)."""
        setup = self._setup
        single = len(self._candidates) == 1

        def attempt(cand: Candidate) -> Generator[Event, None, Turn]:
            return self._attempt(cand, message, keep_failed=single)

        def wait(cand: Candidate, exc: UsageLimitError) -> Generator[Event, None, Turn]:
            return self._wait_and_retry(cand, message, exc)

        return (
            yield from first_answer(
                self._candidates,
                attempt,
                name=lambda cand: cand.provider.name,
                wait=wait if setup.limit_waiter is not None else None,
                forget=self._reset_for,
                skip=setup.skip,
                cooldown_until=setup.cooldown_until,
                on_limit=setup.on_limit,
                record=self._record_attempt,
                clock=setup.clock,
            )
        )

    def _committed_send(self, cand: Candidate, message: str) -> Generator[Event, None, Turn]:
        try:
            return (yield from self._attempt(cand, message, keep_failed=True))
        except ConversationNotFound:
            if self._setup.on_missing != "fresh" or not self._resume_key:
                raise
            note = f"{cand.provider.name} no longer has conversation {self._resume_key}; started a fresh one"
            self._log("warn", note)
            self.trajectory.notes.append(note)
            self.trajectory.metadata["resumed_fresh"] = True
            self._resume_key = None
            self.trajectory.provider_session_id = None
            return (yield from self._committed_send(cand, message))
        except UsageLimitError as exc:
            self._setup.on_limit(exc)
            if not self._can_wait(exc):
                raise
            return (yield from self._wait_and_retry(cand, message, exc))

    def _wait_and_retry(self, cand: Candidate, message: str, exc: UsageLimitError) -> Generator[Event, None, Turn]:
        """Commit to ``cand``, wait out the limit, continue the same conversation (``caw.policy.autowait``)."""
        waiter = self._setup.limit_waiter
        assert waiter is not None
        self._commit(cand)

        def before_wait() -> None:
            self.trajectory.usage_limited = True
            self.trajectory.pending_message = message
            self._persist()

        def retry() -> Generator[Event, None, Turn]:
            # the CLI kept the limited prompt in its history when the conversation exists: don't send it twice
            prompt = cand.provider.continuation_prompt(message) if self._resume_key else message
            return self._attempt(cand, prompt, keep_failed=True, record_input=message)

        turn = yield from wait_and_retry(
            exc,
            retry,
            waiter,
            cancel=self._cancel_wait,
            handle=self._handle_or_none,
            before_wait=before_wait,
            on_limit=self._setup.on_limit,
            on_wait_event=lambda ev: self._log("info", event_summary(ev)),
        )
        self.trajectory.pending_message = None
        self._persist()
        return turn

    def _can_wait(self, exc: UsageLimitError) -> bool:
        return self._setup.limit_waiter is not None and exc.waitable

    def _attempt(
        self, cand: Candidate, prompt: str, *, keep_failed: bool, record_input: str | None = None
    ) -> Generator[Event, None, Turn]:
        """One run of the CLI. Successful and cancelled turns are recorded; failed ones when ``keep_failed``."""
        request = TurnRequest(
            prompt=prompt,
            resume_key=self._resume_key,
            new_key=None if self._resume_key else str(uuid.uuid4()),
        )
        # issue 16: output='s schema (or the JSON instruction) and claude's native caps; the runner metered
        request, record_input = prepare(self._call, self._ledger, cand.provider, request, record_input)
        control = TurnControl()
        self._control = control
        if self._cancel_wait.is_set():
            control.cancelled.set()
        binary = cand.binary()
        gen = runner_for(self._call, self._ledger, self._runner, self._setup.clock)(
            cand.provider,
            binary,
            self._config_for(cand),
            request,
            base_env=self._setup.base_env,
            options=self._setup.options,
            control=control,
            clock=self._setup.clock,
        )
        started = self._setup.clock()
        try:
            while True:
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    turn: Turn = stop.value
                    break
                if isinstance(ev, SessionStarted) and ev.session_id:
                    self._on_session_started(cand, ev)
                elif isinstance(ev, WarningEvent) and ev.code and ev.message not in self.trajectory.notes:
                    self.trajectory.notes.append(ev.message)  # e.g. session_writes_lost: resume may miss turns
                if self._setup.logger is not None:
                    self._log("info", event_summary(ev))
                yield ev
        except (ProviderError, CawTimeoutError, TurnCancelled) as exc:
            failed = getattr(exc, "turn", None)
            if failed is not None and record_input is not None:
                failed.input = record_input
            if isinstance(exc, UsageLimitError):
                self.trajectory.usage_limited = True  # also when nobody waits (auto_wait=False, the CI case)
            # a cancel ends the send (no other provider is tried), so its partial turn is kept on a first send too
            if (keep_failed or isinstance(exc, TurnCancelled)) and failed is not None:
                self._commit(cand)
                self._record_turn(failed)
            if isinstance(exc, UsageLimitError):
                exc.resume_handle = self._handle_or_none()
            raise
        except GeneratorExit:
            # the consumer stopped iterating (break, stream.close(), leaving ``with session.stream(...)``)
            gen.close()
            self._keep_abandoned(cand, control.turn, record_input, started)
            raise
        finally:
            self._control = None
        if record_input is not None:
            turn.input = record_input
        self._commit(cand)
        self._record_turn(turn)
        return turn

    def _keep_abandoned(self, cand: Candidate, turn: Turn | None, record_input: str | None, started: float) -> None:
        """Record the partial turn of a stream its consumer closed early, as cancelled (issue 12)."""
        if turn is None:  # the runner never published one (``TurnControl.turn``)
            return
        turn.status = "cancelled"
        if turn.error is None:
            turn.error = TurnError(
                type="TurnCancelled", reason="cancelled", message="the stream was closed before the turn finished"
            )
        turn.duration_ms = turn.duration_ms or max(0, int((self._setup.clock() - started) * 1000))
        if record_input is not None:
            turn.input = record_input
        self._commit(cand)
        self._record_turn(turn)

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _on_session_started(self, cand: Candidate, ev: SessionStarted) -> None:
        self._resume_key = ev.session_id
        self.trajectory.provider_session_id = ev.session_id
        if ev.cli_version:
            self.trajectory.metadata.setdefault("cli_version", ev.cli_version)
        cand.cli_version = cand.cli_version or ev.cli_version

    def _commit(self, cand: Candidate) -> None:
        if self._committed is None:
            self._committed = cand
        t = self.trajectory
        t.agent = cand.provider.name
        t.model = t.model or cand.config.model
        t.reasoning = t.reasoning or cand.config.reasoning
        t.system_prompt = t.system_prompt or cand.config.system_prompt
        t.cwd = cand.config.cwd

    def _reset_for(self, cand: Candidate) -> None:
        """Forget a conversation id left by another provider's failed attempt."""
        self._resume_key = None
        self.trajectory.provider_session_id = None

    def _record_turn(self, turn: Turn) -> None:
        if self._setup.subagent_log is not None:
            self._setup.subagent_log.link(turn)  # ToolUse.subagent: the subagent's trajectory
        with self._lock:
            self.trajectory.turns.append(turn)
            # issue 12: with no model configured, the one the CLI reported (claude's init) names the trajectory's
            self.trajectory.model = self.trajectory.model or turn.model
            self.trajectory.resume_handle = self._handle_or_none()
            store = self._setup.store
            if store is not None:
                try:
                    store.append_turn(self.trajectory.session_id, turn, redact=self._setup.redact)
                except StorageError as exc:  # the turn's real outcome matters more than its copy on disk
                    self._storage_failed("data_dir", exc)
        self._persist()

    def _record_attempt(self, attempt: Attempt) -> None:
        self.trajectory.attempts.append(attempt)
        if attempt.reason != "answered":
            self._log("warn", f"fallback: {attempt.provider} skipped ({attempt.reason}) {attempt.error}".rstrip())

    #: where saving has failed ("data_dir", "traj_path"): each is warned about once
    _unsaved: frozenset[str] = frozenset()

    def _persist(self) -> None:
        """Save the trajectory; a StorageError is warned about, never raised (it would replace the turn)."""
        if self._read_only:
            return
        store = self._setup.store
        if store is not None:
            try:
                store.save(self.trajectory, redact=self._setup.redact)
            except StorageError as exc:
                self._storage_failed("data_dir", exc)
        if self._setup.traj_path is not None:
            try:
                save_trajectory_file(self.trajectory, self._setup.traj_path, redact=self._setup.redact)
            except StorageError as exc:
                self._storage_failed("traj_path", exc)

    def _storage_failed(self, where: str, exc: StorageError) -> None:
        if where in self._unsaved:
            return
        self._unsaved |= {where}
        note = f"not saved: {exc}"
        self.trajectory.notes.append(note)
        self._log("warn", f"{exc}; the session goes on, but is not saved there")

    def _handle_or_none(self) -> str | None:
        if self._committed is None or self._resume_key is None:
            return None
        try:
            return self._make_handle()
        except CawError:
            return None

    def _make_handle(self) -> str:
        from caw.state.handle import ResumeHandle, encode

        cand = self._committed
        assert cand is not None and self._resume_key is not None
        env = {**self._setup.base_env, **cand.config.env}
        return encode(
            ResumeHandle(
                provider=cand.provider.name,
                session_id=self.trajectory.session_id,
                resume_key=self._resume_key,
                cwd=str(Path(cand.config.cwd).resolve()),
                config_home=cand.provider.config_home(env),
                model=cand.config.model,
                reasoning=cand.config.reasoning,
                cli_version=cand.cli_version,
            )
        )

    def _log(self, level: str, msg: str) -> None:
        logger = self._setup.logger
        if logger is None or not msg:
            return
        fn = getattr(logger, level, None) or getattr(logger, "warning", None)
        if fn is not None:
            try:
                fn(self._setup.redact(msg))
            except Exception:  # a broken logger must not break the turn
                pass


__all__ = ["AsyncTurnStream", "Logger", "Session", "SessionSetup", "TurnStream"]
