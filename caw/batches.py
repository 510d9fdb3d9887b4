"""Many prompts through one Agent: bounded concurrency, limits shared inside the batch, resumable results.

``batch(tasks, agent=..., concurrency=N, results=PATH)`` runs every task as a one-turn session of ``agent``
on at most N worker threads (so at most N agent CLIs alive at once) and yields a ``BatchResult`` per task
as tasks finish; ``abatch`` is its async twin. What the batch adds to the Agent (issue 20):

* **Limits shared inside the batch.** A usage limit one task sees (a rejected ``RateLimitEvent``, a
  ``LimitWaitEvent``, a ``rate_limited`` attempt, a ``UsageLimitError``) pauses new starts on that provider
  for all tasks: a task whose order has another provider starts there (the skip is recorded as a
  ``cooldown`` attempt), one with nowhere else to go waits for the reset when the Agent auto-waits (within
  its ``max_wait``), else fails with ``UsageLimitError`` without a request. A provider the batch has not
  heard answer yet (the start, or after a reset) takes one task at a time until it answers (a *probe*), so
  a limited provider costs one request, not N; after a reset, the starts that follow the probe are
  staggered (``stagger`` seconds apart plus jitter). The Agent's own cooldown ledger still applies across
  processes (a shared ledger just works: the batch runs everything through the Agent).
* **Resumable.** With ``results=PATH`` each result is appended as one JSON line (one ``write``, then
  ``fsync``); a torn last line is cut off on open. Re-running with the same file skips the tasks already
  there (keyed by the task's ``id``, else a hash of the task); ``retry_failed=True`` runs failed ones again.
* **Safe.** Leaving the loop, ``Batch.cancel()`` or Ctrl-C cancels the running turns (``Session.cancel``:
  no CLI or tool left behind) and keeps what finished; cancelled tasks are not written, so a re-run does them.

>>> tasks = ["Say hi", {"id": "two", "prompt": "Say ho"}]
>>> for r in caw.batch(tasks, agent=caw.Agent(), concurrency=2):  # doctest: +SKIP
...     print(r.id, r.ok, r.provider, r.result or r.error)
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from caw.agent import Agent
from caw.errors import (
    AllProvidersFailed,
    CawError,
    ConfigurationError,
    StorageError,
    TurnCancelled,
    TurnFailed,
    UsageLimitError,
)
from caw.events import (
    Event,
    LimitWaitEvent,
    RateLimitEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    UsageEvent,
)
from caw.models import Attempt, Trajectory
from caw.policy.autowait import Clock, LimitWaitPolicy, Sleeper
from caw.policy.fallback import failover_reason

__all__ = [
    "AsyncBatch",
    "Batch",
    "BatchError",
    "BatchProgress",
    "BatchResult",
    "BatchTask",
    "ResultsFile",
    "abatch",
    "batch",
]

#: a limit whose reset time nobody said pauses the provider this long (the first step of caw's retry schedule)
UNKNOWN_RESET_PAUSE = 60.0
#: seconds between the starts that follow a limit's reset (plus up to half of it as jitter)
DEFAULT_STAGGER = 2.0
#: a probe that has not answered (nor hit a limit) after this long lets the other tasks start anyway: a first
#: turn that thinks for minutes must not make the batch sequential
PROBE_PATIENCE = 20.0
#: task keys besides ``prompt`` and ``id``: per-task Agent overrides
#: task keys that are options of the send itself (structured output and the task's budget), not of the Agent
_CALL_KEYS = ("output", "max_cost_usd", "max_tokens", "max_turns", "max_duration")
_TASK_KEYS = frozenset(
    {"cwd", "model", "provider", "reasoning", "tools", "system_prompt", "timeout", "metadata", *_CALL_KEYS}
)
#: events that show the model answered (the CLI's own start-up lines do not)
_ANSWERED = (TextEvent, ThinkingEvent, ToolCallEvent, UsageEvent, ResultEvent)
_OFF = ("0", "false", "no", "off")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _real_sleeper(seconds: float, cancel: threading.Event) -> bool:
    return cancel.wait(max(0.0, seconds))


# ---- tasks ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchTask:
    """One task: a prompt and its per-task overrides (``cwd``, ``model``, ``provider``, ``output``, ...).

    ``key`` is what the results file knows it by: the task's ``id``, else ``sha256:`` and a hash of the task.

    >>> BatchTask.of("Say hi", 0).key
    'sha256:...'
    """

    key: str
    prompt: str
    id: str | None = None
    hash: str = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    index: int = 0

    @classmethod
    def of(cls, item: str | Mapping[str, Any] | BatchTask, index: int) -> BatchTask:
        """A task from a prompt string or a dict (``prompt`` required; ConfigurationError otherwise)."""
        if isinstance(item, BatchTask):
            return item
        if isinstance(item, str):
            item = {"prompt": item}
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"task {index + 1}: a task is a prompt string or a dict, not {item!r}")
        prompt = item.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigurationError(f"task {index + 1}: 'prompt' must be a non-empty string")
        unknown = set(item) - _TASK_KEYS - {"prompt", "id"}
        if unknown:
            raise ConfigurationError(
                f"task {index + 1}: unknown key(s) {', '.join(sorted(unknown))}; a task takes prompt, id, "
                + ", ".join(sorted(_TASK_KEYS))
            )
        task_id = item.get("id")
        if task_id is not None and not isinstance(task_id, (str, int)):
            raise ConfigurationError(f"task {index + 1}: 'id' must be a string or a number")
        digest = task_hash(item)
        key = str(task_id) if task_id is not None else f"sha256:{digest}"
        overrides = {k: v for k, v in item.items() if k in _TASK_KEYS and v is not None}
        return cls(key, prompt, None if task_id is None else str(task_id), digest, overrides, index)


def task_hash(item: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the task as canonical JSON (its ``id`` left out)."""
    body = {k: v for k, v in item.items() if k != "id"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_tasks(items: Iterable[str | Mapping[str, Any] | BatchTask]) -> list[BatchTask]:
    """Tasks with unique keys: a repeated ``id`` is a ConfigurationError; a repeated hash gets ``~2``, ``~3``."""
    out: list[BatchTask] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        task = BatchTask.of(item, index)
        if task.key in seen:
            if task.id is not None:
                raise ConfigurationError(f"task {index + 1}: id {task.id!r} is used twice (tasks need unique ids)")
            seen[task.key] += 1
            task = BatchTask(f"{task.key}~{seen[task.key]}", task.prompt, None, task.hash, task.overrides, index)
        seen.setdefault(task.key, 1)
        out.append(task)
    return out


# ---- results ----------------------------------------------------------------------------------------------
@dataclass
class BatchError:
    """Why a task failed: the exception's class and message, the failover class, what the CLI exits with."""

    type: str
    message: str
    #: ``caw.policy.fallback.failover_reason`` (rate_limited, auth, not_installed, crashed, timeout, unavailable),
    #: else ``cancelled``, ``configuration`` or ``error``
    reason: str = "error"
    provider: str = ""
    resets_at: datetime | None = None
    #: the exit code ``caw`` gives this failure (docs/ci.md), when the caller classified it (``caw batch`` does)
    exit_code: int | None = None
    exit_class: str | None = None

    @classmethod
    def of(cls, exc: BaseException) -> BatchError:
        reason = failover_reason(exc)
        if reason is None:
            if isinstance(exc, TurnCancelled | KeyboardInterrupt):
                reason = "cancelled"
            elif isinstance(exc, ConfigurationError):
                reason = "configuration"
            else:
                reason = "error"
        resets: datetime | None = getattr(exc, "resets_at", None)
        if isinstance(exc, AllProvidersFailed) and resets is None:
            found = [a.resets_at for a in exc.attempts if getattr(a, "resets_at", None) is not None]
            resets = min(found) if found else None
        return cls(type(exc).__name__, str(exc), reason, str(getattr(exc, "provider", "") or ""), resets)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "reason": self.reason,
            "provider": self.provider,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "exit_code": self.exit_code,
            "exit_class": self.exit_class,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchError:
        resets = data.get("resets_at")
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            reason=str(data.get("reason", "error")),
            provider=str(data.get("provider") or ""),
            resets_at=datetime.fromisoformat(resets) if isinstance(resets, str) else None,
            exit_code=data.get("exit_code") if isinstance(data.get("exit_code"), int) else None,
            exit_class=data.get("exit_class") if isinstance(data.get("exit_class"), str) else None,
        )


@dataclass
class BatchResult:
    """One finished task: ``ok`` with the ``trajectory`` and its ``result`` text, or the ``error``.

    ``attempts`` is the fallback record (a provider the batch skipped because of a limit is a ``cooldown``
    attempt); ``duration_s`` the task's wall time (waits included); ``cost_usd`` None when unknown.
    ``exception`` is the error itself (not written to the results file).
    """

    id: str
    ok: bool
    prompt: str = ""
    task_hash: str = ""
    provider: str | None = None
    result: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    duration_s: float = 0.0
    cost_usd: float | None = None
    trajectory: Trajectory | None = None
    error: BatchError | None = None
    #: the validated structured answer of a task with ``output`` (``Turn.parsed``)
    parsed: Any = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> Literal["ok", "failed"]:
        return "ok" if self.ok else "failed"

    def to_json(self) -> dict[str, Any]:
        """The results-file line (a JSON object; ``trajectory`` as ``Trajectory.to_dict()``)."""
        return {
            "id": self.id,
            "status": self.status,
            "task_hash": self.task_hash,
            "provider": self.provider,
            "result": self.result,
            "attempts": [a.model_dump(mode="json") for a in self.attempts],
            "duration_s": round(self.duration_s, 3),
            "cost_usd": self.cost_usd,
            "error": self.error.to_json() if self.error else None,
            "parsed": _jsonable(self.parsed),
            "prompt": self.prompt,
            "trajectory": self.trajectory.to_dict() if self.trajectory is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchResult:
        traj = data.get("trajectory")
        err = data.get("error")
        return cls(
            id=str(data["id"]),
            ok=data.get("status") == "ok",
            prompt=str(data.get("prompt") or ""),
            task_hash=str(data.get("task_hash") or ""),
            provider=data.get("provider"),
            result=data.get("result"),
            attempts=[Attempt.model_validate(a) for a in data.get("attempts") or []],
            duration_s=float(data.get("duration_s") or 0.0),
            cost_usd=data.get("cost_usd"),
            trajectory=Trajectory.from_dict(traj) if isinstance(traj, dict) else None,
            error=BatchError.from_json(err) if isinstance(err, dict) else None,
            parsed=data.get("parsed"),
        )


def _jsonable(value: Any) -> Any:
    """A parsed answer as JSON data (a pydantic model dumped, a dataclass as a dict, else as it is)."""
    if value is None:
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


class ResultsFile:
    """The append-only JSONL of results: one ``os.write`` per line (O_APPEND), ``fsync`` after each.

    Opening it takes an exclusive lock (a second batch on the same file is a ConfigurationError) and cuts a
    torn last line (a crash mid-write) off; lines that are not results are ignored (``damaged`` counts them).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.previous: dict[str, dict[str, Any]] = {}
        self.damaged = 0
        self.repaired = False
        self._fd: int | None = None
        self._lock = threading.Lock()

    def open(self) -> ResultsFile:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise StorageError.from_os_error(exc, "open", self.path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigurationError(f"{self.path} is in use by another batch (one batch per results file)") from None
        self._fd = fd
        data = b""
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            os.ftruncate(fd, keep)
            os.fsync(fd)
            data = data[:keep]
            self.repaired = True
        for raw in data.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                self.damaged += 1
                continue
            if isinstance(line, dict) and isinstance(line.get("id"), str) and line.get("status") in ("ok", "failed"):
                self.previous[line["id"]] = line  # a later line (a retry) wins
            else:
                self.damaged += 1
        return self

    def append(self, line: str) -> None:
        assert self._fd is not None, "open() first"
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        with self._lock:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write (a signal, a full pipe): finish the same line
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


# ---- progress ---------------------------------------------------------------------------------------------
@dataclass
class BatchProgress:
    """What the batch is doing now (``Batch.progress``; the CLI draws it). Times are ``time.monotonic``."""

    total: int = 0
    #: finished in an earlier run of the same results file (not run again)
    skipped: int = 0
    done: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    started: float = 0.0
    #: task key -> provider (or the order) it runs on
    running: dict[str, str] = field(default_factory=dict)
    #: task key -> when it may start (a provider's limit reset)
    waiting: dict[str, datetime] = field(default_factory=dict)
    #: provider -> until when the batch holds new starts on it
    limited: dict[str, datetime] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.skipped - self.finished)

    def eta_seconds(self, now: float) -> float | None:
        """Seconds left at the pace so far (None before the first task finished)."""
        if self.finished == 0 or now <= self.started:
            return None
        return (now - self.started) / self.finished * self.remaining

    def copy(self) -> BatchProgress:
        return BatchProgress(
            self.total, self.skipped, self.done, self.failed, self.cost_usd, self.cost_known, self.started,
            dict(self.running), dict(self.waiting), dict(self.limited),
        )  # fmt: skip


# ---- limits inside the batch ------------------------------------------------------------------------------
@dataclass
class _Gate:
    limited_until: datetime | None = None
    #: the batch has seen this provider answer since its last limit
    open: bool = False
    probing: str | None = None  # the task key probing it
    probe_started: float = 0.0  # time.monotonic() when the probe began
    #: after a reset: starts left to stagger, and when the next one may go
    stagger_left: int = 0
    next_start: datetime | None = None
    #: the pause comes from HTTP 429s the CLI is retrying, not from a limit: an answer lifts it
    soft: bool = False


class _Stopped(Exception):
    pass


class _Limits:
    """Per provider: limited until when, answered yet, who is probing; the admission of each task."""

    def __init__(self, *, clock: Clock, sleeper: Sleeper, stop: threading.Event, stagger: float,
                 rng: random.Random, concurrency: int, progress: BatchProgress, lock: threading.Lock,
                 notice: Callable[[str], None]) -> None:  # fmt: skip
        self.clock = clock
        self.sleeper = sleeper
        self.stop = stop
        self.stagger = stagger
        self.rng = rng
        self.concurrency = concurrency
        self.progress = progress
        self.cond = threading.Condition(lock)
        self.notice = notice
        self.gates: dict[str, _Gate] = {}
        self.probe_patience = PROBE_PATIENCE
        #: task key -> the staggered start it waits for
        self._slots: dict[str, datetime] = {}

    def _gate(self, name: str) -> _Gate:
        return self.gates.setdefault(name, _Gate())

    def limited(self, provider: str, resets_at: datetime | None) -> None:
        """A task saw ``provider`` limited: hold new starts on it until ``resets_at`` (unknown: a minute)."""
        if not provider:
            return
        until = resets_at or (self.clock() + timedelta(seconds=UNKNOWN_RESET_PAUSE))
        first = False
        with self.cond:
            gate = self._gate(provider)
            known = gate.limited_until
            gate.open = False
            gate.probing = None
            if known is None or until > known or gate.soft:
                gate.limited_until = until
                self.progress.limited[provider] = until
                first = known is None or gate.soft
            gate.soft = False
            self.cond.notify_all()
        if first:
            self.notice(f"{provider} is limited until {until.isoformat(timespec='seconds')}: no new task starts on it")

    def throttled(self, provider: str) -> None:
        """The CLI is retrying HTTP 429s on ``provider``: pause new starts on it (``UNKNOWN_RESET_PAUSE``) until
        it answers (a retry got through) or the pause ends; the task itself goes on."""
        with self.cond:
            gate = self._gate(provider)
            if gate.limited_until is not None:
                return
            until = self.clock() + timedelta(seconds=UNKNOWN_RESET_PAUSE)
            gate.limited_until, gate.soft, gate.open = until, True, False
            self.progress.limited[provider] = until
        self.notice(f"{provider} answers HTTP 429 (the CLI retries): no new task starts on it for now")

    def answered(self, provider: str) -> None:
        with self.cond:
            gate = self._gate(provider)
            if gate.soft and gate.limited_until is not None:
                gate.limited_until, gate.soft = None, False  # the 429s were passing
                self.progress.limited.pop(provider, None)
            if not gate.open and gate.limited_until is None:
                gate.open = True
                gate.probing = None
                self.cond.notify_all()

    def failed(self, provider: str, key: str) -> None:
        """The probe ``key`` held on ``provider`` failed for another reason than a limit: let the next task try."""
        with self.cond:
            gate = self._gate(provider)
            if gate.probing == key:
                gate.probing = None
                gate.open = gate.limited_until is None  # it is not limited: the others try it as they would alone
                self.cond.notify_all()

    def release_probe(self, key: str) -> None:
        """The task ``key`` ended: a probe it held, unanswered and unlimited, lets the next task try."""
        with self.cond:
            for gate in self.gates.values():
                if gate.probing == key:
                    gate.probing = None
                    self.cond.notify_all()

    def admit(
        self, key: str, order: tuple[str, ...], *, can_wait: bool, max_wait: float, buffer: float = 0.0
    ) -> tuple[list[str], list[Attempt]]:
        """The providers this task may start on (in order) and the skips to record; may wait.

        Raises ``UsageLimitError`` when every provider is limited and waiting is not allowed, ``_Stopped``
        when the batch is cancelled meanwhile.
        """
        with self.cond:
            try:
                return self._admit(key, order, can_wait=can_wait, max_wait=max_wait, buffer=buffer)
            finally:
                self._slots.pop(key, None)

    def _admit(
        self, key: str, order: tuple[str, ...], *, can_wait: bool, max_wait: float, buffer: float
    ) -> tuple[list[str], list[Attempt]]:
        # called with the lock held
        while True:
            if self.stop.is_set():
                raise _Stopped
            now = self.clock()
            usable: list[str] = []
            skips: list[Attempt] = []
            soonest: tuple[datetime, str] | None = None
            for name in order:
                gate = self._gate(name)
                if gate.limited_until is not None and gate.limited_until <= now:
                    gate.limited_until = None  # reset: probe it again, then stagger the starts
                    gate.open = gate.soft = False
                    gate.stagger_left = max(0, self.concurrency - 1) if self.stagger > 0 else 0
                    gate.next_start = None
                    self.progress.limited.pop(name, None)
                if gate.limited_until is not None:
                    until = gate.limited_until
                    why = f"limited in this batch until {until.isoformat(timespec='seconds')}"
                    skips.append(Attempt(provider=name, reason="cooldown", resets_at=until, error=why))
                    if soonest is None or until < soonest[0]:
                        soonest = (until, name)
                    continue
                usable.append(name)
            if usable:
                gate = self._gate(usable[0])
                if gate.open:
                    delay = self._stagger_delay(key, gate, now)
                    if delay <= 0:
                        return usable, skips
                    self._sleep(key, now + timedelta(seconds=delay))
                    continue
                if gate.probing is None:
                    gate.probing = key
                    gate.probe_started = time.monotonic()
                    if gate.stagger_left > 0:  # after a reset the probe is the first of the staggered starts
                        gate.next_start = now + timedelta(seconds=self._spacing())
                    return usable, skips
                patience = gate.probe_started + self.probe_patience - time.monotonic()
                if patience <= 0:
                    gate.open = True  # a slow first answer, not a limit: stop holding the others
                    continue
                self.cond.wait(patience)  # a probe is out: its answer (or limit) wakes us
                continue
            assert soonest is not None
            until, name = soonest
            if all(self._gate(n).soft for n in order):
                # only 429 back-pressure, no limit: hold the start (an answer elsewhere or the pause's end
                # wakes it), with or without auto-wait
                self.cond.wait(max(0.05, min((until - now).total_seconds(), 5.0)))
                continue
            if not can_wait or (until - now).total_seconds() > max_wait:
                why = f"{name} is limited in this batch until {until.isoformat(timespec='seconds')}"
                raise UsageLimitError(name, why, resets_at=until, kind="usage")
            self._sleep(key, until + timedelta(seconds=buffer))

    def _stagger_delay(self, key: str, gate: _Gate, now: datetime) -> float:
        """Seconds until ``key``'s staggered start: a slot is taken once and kept while it waits for it."""
        slot = self._slots.get(key)
        if slot is None:
            if gate.stagger_left <= 0:
                return 0.0
            slot = max(now, gate.next_start or now)
            gate.next_start = slot + timedelta(seconds=self._spacing())
            gate.stagger_left -= 1
            self._slots[key] = slot
        return max(0.0, (slot - now).total_seconds())

    def _spacing(self) -> float:
        return self.stagger + self.rng.uniform(0, self.stagger / 2)

    def _sleep(self, key: str, until: datetime) -> None:
        """Wait (the lock released) until ``until`` or a cancel."""
        self.progress.waiting[key] = until
        self.cond.release()
        try:
            seconds = (until - self.clock()).total_seconds()
            if seconds > 0:
                self.sleeper(seconds, self.stop)
        finally:
            self.cond.acquire()
            self.progress.waiting.pop(key, None)


# ---- the engine -------------------------------------------------------------------------------------------
Describe = Callable[[BaseException], tuple[int, str]]


class _Engine:
    """Worker threads over the pending tasks; ``deliver`` gets each result (after it is written)."""

    def __init__(self, tasks: list[BatchTask], agent: Agent, *, concurrency: int, results: ResultsFile | None,
                 deliver: Callable[[BatchResult | None], None], clock: Clock, sleeper: Sleeper, stagger: float,
                 rng: random.Random, describe: Describe | None, notice: Callable[[str], None],
                 progress: BatchProgress) -> None:  # fmt: skip
        self.tasks = tasks
        self.agent = agent
        self.concurrency = concurrency
        self.results = results
        self.deliver = deliver
        self.describe = describe
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.progress = progress
        self.limits = _Limits(clock=clock, sleeper=sleeper, stop=self.stop, stagger=stagger, rng=rng,
                              concurrency=concurrency, progress=progress, lock=self.lock, notice=notice)  # fmt: skip
        self._next = 0
        self._sessions: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []
        self._alive = 0
        options: dict[str, Any] = dict(getattr(agent, "_options", {}))
        auto_wait = options.get("auto_wait")
        if auto_wait is None:
            auto_wait = os.environ.get("CAW_AUTOWAIT", "1").strip().lower() not in _OFF
        policy = LimitWaitPolicy.from_options(max_wait=options.get("max_wait"), buffer=options.get("wait_buffer"))
        self.max_wait = policy.max_wait if auto_wait else 0.0
        self.wait_buffer = policy.buffer
        self.can_wait = bool(auto_wait) and self.max_wait > 0
        #: keys of tasks that were cancelled (not written: a re-run does them)
        self.cancelled: list[str] = []
        self.error: BaseException | None = None

    def _seed_from_ledger(self) -> None:
        """Limits an earlier run (or another machine) recorded in the Agent's cooldown ledger count from the start
        (read through the Agent's own session setup, so a shared ledger, ``state_url``, just works)."""
        try:
            until = self.agent._setup(None).cooldown_until
        except CawError:
            return  # the first task reports what is wrong with the setup
        names = dict.fromkeys(self.agent.order)
        for task in self.tasks:
            try:
                names.update(dict.fromkeys(self._order(task)))
            except CawError:
                continue
        now = self.limits.clock()
        for name in names:
            try:
                when = until(name)
            except Exception:  # the ledger is a memory: unreadable means nothing remembered
                continue
            if when is not None and when > now:
                self.limits.limited(name, when)

    def start(self) -> None:
        self.progress.started = time.monotonic()
        if self.tasks:
            self._seed_from_ledger()
        count = min(self.concurrency, len(self.tasks))
        self._alive = count
        if count == 0:
            self.deliver(None)
            return
        for n in range(count):
            t = threading.Thread(target=self._work, name=f"caw-batch-{n + 1}", daemon=True)
            self._threads.append(t)
            t.start()

    def cancel(self, *, now: bool = False) -> None:
        """Stop starting tasks and cancel the running turns (returns when their CLIs are gone)."""
        self.stop.set()
        with self.lock:
            self.limits.cond.notify_all()
            sessions = list(self._sessions.values())
        for session in sessions:
            try:
                session.cancel(now=now)
            except Exception:  # one session that cannot cancel must not keep the others running
                pass

    def join(self) -> None:
        for t in self._threads:
            t.join()

    def _take(self) -> BatchTask | None:
        with self.lock:
            if self.stop.is_set() or self._next >= len(self.tasks):
                return None
            task = self.tasks[self._next]
            self._next += 1
            return task

    def _work(self) -> None:
        try:
            while True:
                task = self._take()
                if task is None:
                    return
                result = self._run(task)
                if result is None:
                    continue
                self._finish(result)
        except BaseException as exc:  # a bug here must end the batch, not hang the consumer
            self.error = exc
            self.stop.set()
        finally:
            with self.lock:
                self._alive -= 1
                last = self._alive == 0
            if last:
                self.deliver(None)

    def _finish(self, result: BatchResult) -> None:
        if result.exception is not None and self.describe is not None and result.error is not None:
            code, name = self.describe(result.exception)
            result.error.exit_code, result.error.exit_class = code, name
        if self.results is not None:
            redact = self.agent.redactor()
            self.results.append(redact(json.dumps(result.to_json(), ensure_ascii=False, default=str)))
        with self.lock:
            p = self.progress
            if result.ok:
                p.done += 1
            else:
                p.failed += 1
            if result.cost_usd is not None:
                p.cost_usd += result.cost_usd
            elif result.ok:
                p.cost_known = False
        self.deliver(result)

    def _order(self, task: BatchTask) -> tuple[str, ...]:
        provider = task.overrides.get("provider")
        if provider is None:
            return self.agent.order
        from caw.providers.order import resolve_order

        return resolve_order(provider)

    def _overrides(self, task: BatchTask, order: tuple[str, ...], usable: list[str]) -> dict[str, Any]:
        kw = {k: v for k, v in task.overrides.items() if k not in (*_CALL_KEYS, "provider")}
        if tuple(usable) != order:
            # the skipped providers leave the order: keep each remaining provider's own model and flags
            base = self.agent._with({k: v for k, v in kw.items() if k in ("model",)} | {"provider": list(order)})
            models = {c.provider.name: c.config.model for c in base._candidates()}
            kw["models"] = {n: models.get(n) for n in usable}
            kw.pop("model", None)
            if usable[0] != order[0]:
                kw["extra_args"] = ()
        if tuple(usable) != self.agent.order or "provider" in task.overrides:
            kw["provider"] = list(usable)
        if "cwd" in kw:
            cwd = Path(str(kw["cwd"])).expanduser()
            if not cwd.is_dir():
                raise ConfigurationError(f"task cwd {str(cwd)!r} is not a directory")
            kw["cwd"] = str(cwd.resolve())
        return kw

    def _run(self, task: BatchTask) -> BatchResult | None:
        started = time.monotonic()
        skips: list[Attempt] = []
        session: Any = None
        try:
            call = {k: task.overrides[k] for k in _CALL_KEYS if k in task.overrides}
            order = self._order(task)
            with self.lock:
                self.progress.waiting.pop(task.key, None)
            usable, skips = self.limits.admit(
                task.key, order, can_wait=self.can_wait, max_wait=self.max_wait, buffer=self.wait_buffer
            )
            session = self.agent.start_session(one_turn=True, **self._overrides(task, order, usable))
            with self.lock:
                if self.stop.is_set():
                    raise _Stopped
                self._sessions[task.key] = session
                self.progress.running[task.key] = usable[0] if len(usable) == 1 else ",".join(usable)
            with session.stream(task.prompt, **call) as stream:
                for ev in stream:
                    self._observe(task.key, session, ev)
                turn = stream.turn
            if turn.status != "completed":
                raise TurnFailed(turn.provider, f"the turn ended as {turn.status}", turn=turn)
            traj = session.end()
            self._learn(traj.attempts, None)
            result = self._result(task, started, skips, traj, None)
            result.parsed = getattr(turn, "parsed", None)
            return result
        except _Stopped:
            if session is not None:
                session.end()  # it never started a turn: nothing runs, but it is closed like any other
            self._cancelled(task)
            return None
        except BaseException as exc:
            traj = session.end() if session is not None else None
            self._learn(traj.attempts if traj is not None else [], exc)
            if self.stop.is_set() and isinstance(exc, TurnCancelled | KeyboardInterrupt):
                self._cancelled(task)
                return None
            if not isinstance(exc, Exception):
                raise
            return self._result(task, started, skips, traj, exc)
        finally:
            self.limits.release_probe(task.key)
            with self.lock:
                self._sessions.pop(task.key, None)
                self.progress.running.pop(task.key, None)
                self.progress.waiting.pop(task.key, None)

    def _cancelled(self, task: BatchTask) -> None:
        with self.lock:
            self.cancelled.append(task.key)

    def _observe(self, key: str, session: Any, ev: Event) -> None:
        if isinstance(ev, SessionStarted) and ev.provider:
            with self.lock:
                if key in self.progress.running:
                    self.progress.running[key] = ev.provider  # the provider it really runs on now
        elif isinstance(ev, RateLimitEvent):
            if ev.status == "rejected" and ev.waitable:
                self.limits.limited(ev.provider, ev.resets_at)
        elif isinstance(ev, RetryEvent):
            if ev.status == 429 and ev.provider:
                self.limits.throttled(ev.provider)
        elif isinstance(ev, LimitWaitEvent):
            self.limits.limited(ev.provider, ev.resets_at)
            with self.lock:
                self.progress.waiting[key] = ev.wake_at  # its own session waits (the Agent's auto-wait)
        elif isinstance(ev, _ANSWERED) and ev.provider:
            if key in self.progress.waiting:
                with self.lock:
                    self.progress.waiting.pop(key, None)
            # the attempts before this answer failed over: learn their limits before opening this provider
            for a in session.trajectory.attempts:
                if a.reason in ("rate_limited", "cooldown"):
                    self.limits.limited(a.provider, a.resets_at)
                elif a.reason != "answered":
                    self.limits.failed(a.provider, key)
            self.limits.answered(ev.provider)

    def _learn(self, attempts: list[Attempt], exc: BaseException | None) -> None:
        for a in attempts:
            if a.reason in ("rate_limited", "cooldown"):
                self.limits.limited(a.provider, a.resets_at)
        errors = exc.errors if isinstance(exc, AllProvidersFailed) else [exc]
        for e in errors:
            if isinstance(e, UsageLimitError) and e.waitable and "in this batch" not in e.detail:
                self.limits.limited(e.provider, e.resets_at)

    def _result(self, task: BatchTask, started: float, skips: list[Attempt], traj: Trajectory | None,
                exc: BaseException | None) -> BatchResult:  # fmt: skip
        attempts = [*skips, *(traj.attempts if traj is not None else [])]
        if traj is not None and skips:
            traj.attempts[:0] = skips
        provider = (traj.agent or None) if traj is not None else None
        if exc is not None and (traj is None or not traj.turns):
            provider = getattr(exc, "provider", None) or None
        return BatchResult(
            id=task.key,
            ok=exc is None,
            prompt=task.prompt,
            task_hash=task.hash,
            provider=provider,
            result=traj.result if traj is not None and exc is None else None,
            attempts=attempts,
            duration_s=time.monotonic() - started,
            cost_usd=traj.usage.cost_usd if traj is not None and traj.turns else None,
            trajectory=traj,
            error=BatchError.of(exc) if exc is not None else None,
            exception=exc,
        )


# ---- the public API ---------------------------------------------------------------------------------------
class Batch:
    """The sync batch: iterate it for results as tasks finish (see ``caw.batch``).

    ``progress`` is a live ``BatchProgress``; ``previous`` the results an earlier run left in the results
    file (tasks not run again); ``cancelled`` the keys of tasks cancelled by ``cancel()``/Ctrl-C.
    """

    def __init__(self, tasks: Iterable[str | Mapping[str, Any] | BatchTask], *, agent: Agent | None = None,
                 concurrency: int = 4, results: str | Path | None = None, retry_failed: bool = False,
                 clock: Clock | None = None, sleeper: Sleeper | None = None, stagger: float = DEFAULT_STAGGER,
                 seed: int | None = None, describe: Describe | None = None,
                 on_notice: Callable[[str], None] | None = None) -> None:  # fmt: skip
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive integer, not {concurrency!r}")
        if stagger < 0:
            raise ConfigurationError("stagger must be >= 0 seconds")
        self.agent = agent if agent is not None else Agent()
        self.tasks = load_tasks(tasks)
        self.results_file = ResultsFile(results).open() if results is not None else None
        self.previous: list[BatchResult] = []
        pending: list[BatchTask] = []
        for task in self.tasks:
            line = self.results_file.previous.get(task.key) if self.results_file is not None else None
            if line is not None and (line.get("status") == "ok" or not retry_failed):
                self.previous.append(BatchResult.from_json(line))
            else:
                pending.append(task)
        self.pending = pending
        self.progress = BatchProgress(total=len(self.tasks), skipped=len(self.previous))
        options: dict[str, Any] = dict(getattr(self.agent, "_options", {}))
        self._queue: Any = None
        self._engine = _Engine(
            pending, self.agent, concurrency=concurrency, results=self.results_file, deliver=self._deliver,
            clock=clock or options.get("clock") or _utcnow, sleeper=sleeper or options.get("sleeper") or _real_sleeper,
            stagger=stagger, rng=random.Random(seed), describe=describe, notice=on_notice or (lambda line: None),
            progress=self.progress,
        )  # fmt: skip
        self._deliver_to: Callable[[BatchResult | None], None] | None = None
        self._started = False
        self._closed = False

    @property
    def cancelled(self) -> list[str]:
        return list(self._engine.cancelled)

    @property
    def stopped(self) -> bool:
        """``cancel()`` was called (or the consumer left early)."""
        return self._engine.stop.is_set()

    def snapshot(self) -> BatchProgress:
        """A consistent copy of ``progress``."""
        with self._engine.lock:
            return self.progress.copy()

    def _deliver(self, result: BatchResult | None) -> None:
        assert self._deliver_to is not None
        self._deliver_to(result)

    def _start(self, deliver: Callable[[BatchResult | None], None]) -> None:
        if self._started:
            raise CawError("a Batch can be iterated once")
        self._started = True
        self._deliver_to = deliver
        self._engine.start()

    def cancel(self, *, now: bool = False) -> None:
        """Cancel the running turns and start nothing more; returns when their CLIs are gone. Thread-safe.

        ``now=True`` kills the CLIs' process trees without their grace period (a second Ctrl-C).
        """
        self._engine.cancel(now=now)

    def close(self) -> None:
        """Cancel what runs, wait for the workers, release the results file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            with self._engine.lock:
                unfinished = self._engine._alive > 0
            if unfinished:
                self._engine.cancel()
            self._engine.join()
        if self.results_file is not None:
            self.results_file.close()

    def __iter__(self) -> Iterator[BatchResult]:
        import queue

        q: queue.Queue[BatchResult | None] = queue.Queue()
        self._start(q.put)
        try:
            while True:
                item = q.get()
                if item is None:
                    break
                yield item
            if self._engine.error is not None:
                raise self._engine.error
        finally:
            self.close()

    def __del__(self) -> None:
        # a Batch built but never iterated still holds its results file's lock: release it with the object
        results: ResultsFile | None = getattr(self, "results_file", None)  # None: __init__ failed before it
        if results is not None and not getattr(self, "_started", False):
            results.close()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncBatch:
    """The async batch (``caw.abatch``): ``async for result in caw.abatch(...)``; the event loop never blocks."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    @property
    def progress(self) -> BatchProgress:
        return self.batch.progress

    def __aiter__(self) -> AsyncIterator[BatchResult]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[BatchResult]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[BatchResult | None] = asyncio.Queue()

        def deliver(result: BatchResult | None) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, result)
            except RuntimeError:  # the loop is closed: nobody listens any more
                pass

        self.batch._start(deliver)
        try:
            while True:
                item = await q.get()
                if item is None:
                    break
                yield item
            if self.batch._engine.error is not None:
                raise self.batch._engine.error
        finally:
            await loop.run_in_executor(None, self.batch.close)

    async def aclose(self) -> None:
        """Cancel what runs and wait for it (also what leaving ``async for`` early does)."""
        await asyncio.get_running_loop().run_in_executor(None, self.batch.close)


def batch(tasks: Iterable[str | Mapping[str, Any] | BatchTask], *, agent: Agent | None = None, concurrency: int = 4,
          results: str | Path | None = None, retry_failed: bool = False, **options: Any) -> Batch:  # fmt: skip
    """Run ``tasks`` through ``agent`` (default ``Agent()``) at most ``concurrency`` at a time; iterate the
    returned ``Batch`` for a ``BatchResult`` per task, in the order they finish.

    A task is a prompt string or a dict: ``prompt`` (required), ``id`` (the results-file key; else a hash of
    the task), and per-task ``cwd``, ``model``, ``provider``, ``reasoning``, ``tools``, ``system_prompt``,
    ``timeout``, ``metadata``, and the send's own ``output`` (a schema: ``BatchResult.parsed``) and budget
    (``max_cost_usd``, ``max_tokens``, ``max_turns``, ``max_duration``). ``results=PATH`` appends each
    result to a JSONL file and skips the tasks it already holds on a re-run (``retry_failed=True`` runs the
    failed ones again). ``options``: ``clock`` and
    ``sleeper`` (the limit waits, as ``Agent(clock=, sleeper=)``), ``stagger`` (seconds between starts after
    a limit resets), ``seed`` (the jitter), ``describe`` (exception -> (exit code, class name)), ``on_notice``
    (a ``str -> None`` for the batch's own notices, e.g. a provider paused).

    >>> agent = caw.Agent(provider=["claude", "codex"], auto_wait=False)          # doctest: +SKIP
    >>> for r in caw.batch(["Fix a.py", "Fix b.py"], agent=agent, concurrency=2, results="out.jsonl"):  # doctest: +SKIP
    ...     print(r.id, r.status, r.provider, r.cost_usd)
    """
    return Batch(tasks, agent=agent, concurrency=concurrency, results=results, retry_failed=retry_failed, **options)


def abatch(tasks: Iterable[str | Mapping[str, Any] | BatchTask], *, agent: Agent | None = None, concurrency: int = 4,
           results: str | Path | None = None, retry_failed: bool = False, **options: Any) -> AsyncBatch:  # fmt: skip
    """The async twin of ``batch``: ``async for r in caw.abatch(tasks, agent=agent, concurrency=3): ...``.

    Leaving the loop early cancels the running turns and waits for them (``aclose()``).
    """
    return AsyncBatch(batch(tasks, agent=agent, concurrency=concurrency, results=results, retry_failed=retry_failed,
                            **options))  # fmt: skip
