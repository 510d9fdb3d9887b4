"""Pluggable state: the two small interfaces (``Ledger``, ``SessionBackend``), the embedded default (files
under the data dir, as before) and the shared backend for fleets (Redis, chosen by ``CAW_STATE_URL`` or
``Agent(state_url=...)``).

The shared backend never replaces the local files, it sits on top of them:

* the ledger records every limit in the local file *and* in Redis, and reads both (the later reset
  wins), so a worker sees a limit any other worker recorded;
* the session store writes the trajectory locally as before and, after each turn, one portable record
  (``caw.state.record``: trajectory + the CLI's own conversation record) to Redis, which another machine
  restores before resuming.

Faults: Redis unreachable at start or lost mid-run is warned about once (per Redis, per process); caw
then works from the local files, retries Redis every ``RETRY_S`` seconds, and writes again (the records
it could not write first) once it answers. Nothing here raises into a turn.

>>> ledger = open_ledger(None)          # no CAW_STATE_URL: the cooldown file, as before
>>> type(ledger).__name__
'CooldownStore'
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from caw.errors import ConfigurationError, StorageError, UsageLimitError
from caw.models import Trajectory, Turn
from caw.state.handle import ResumeHandle, decode
from caw.state.ledger import Cooldown, CooldownStore
from caw.state.record import Record, RecordFile, pack, unpack
from caw.state.store import SessionInfo, SessionStore, default_data_dir, make_dirs, storage_errors

if TYPE_CHECKING:
    from caw.state.redis_backend import RedisState

#: seconds between tries of a Redis that did not answer
RETRY_S = 5.0
#: a cold fleet's first request: how long a worker waits for it, how long the lease lasts, how often others look,
#: and how long "it answered" lets every worker send without waiting
PROBE_WAIT_S = 60.0
PROBE_LEASE_S = 60.0
PROBE_POLL_S = 0.1
ANSWERED_TTL_S = 600
#: how long the fleet skips a provider whose limit came without a reset time (caw's first retry step)
UNKNOWN_RESET_S = 60.0
#: default spread of wake-ups after a shared reset, seconds (``CAW_WAKE_JITTER`` / ``Agent(wake_jitter=)``)
DEFAULT_WAKE_JITTER = 30.0
RECORD_FILE = "record.cawrec"

Warn = Callable[[str], object]
#: the CLI's own conversation record for a handle: files relative to the CLI's home for them
Capture = Callable[[ResumeHandle], list[RecordFile]]


@runtime_checkable
class Ledger(Protocol):
    """The cooldown ledger: which providers reported a usage limit, until when. ``CooldownStore`` is one."""

    def active(self) -> dict[str, Cooldown]: ...
    def until(self, provider: str) -> datetime | None: ...
    def skip_reason(self, provider: str) -> str | None: ...
    def set(self, provider: str, until: datetime, *, kind: str = "", message: str = "") -> None: ...
    def record(self, error: UsageLimitError) -> bool: ...
    def recorder(self, warn: Callable[[str], object] | None = None) -> Callable[[UsageLimitError], None]: ...


@runtime_checkable
class SessionBackend(Protocol):
    """The session store: trajectories, turns and portable records by caw session id."""

    def check_writable(self) -> None: ...
    def save(self, traj: Trajectory, *, redact: Callable[[str], str] | None = None) -> Path: ...
    def append_turn(self, session_id: str, turn: Turn, *, redact: Callable[[str], str] | None = None) -> None: ...
    def exists(self, session_id: str) -> bool: ...
    def load(self, session_id: str) -> Trajectory: ...
    def list(self) -> list[SessionInfo]: ...
    def get_record(self, session_id: str) -> Record | None: ...
    def put_record(self, record: Record) -> None: ...


def stderr_warn(message: str) -> None:
    print(f"caw: warning: {message}", file=sys.stderr, flush=True)


def state_url(explicit: str | None = None) -> str | None:
    """The shared state's URL: ``explicit`` (Agent(state_url=)), else ``$CAW_STATE_URL``; None: local files."""
    url = (explicit if explicit is not None else os.environ.get("CAW_STATE_URL", "")).strip()
    if not url or url.lower() in ("file", "local", "none", "off"):
        return None
    return url


def wake_jitter(explicit: float | None = None, *, rng: Callable[[], float] | None = None) -> float:
    """Seconds this worker adds to a wait for a reset: uniform over the jitter window, so workers waiting for
    the same reset wake spread out instead of all at once (window: ``explicit``, ``$CAW_WAKE_JITTER``, 30 s;
    applied only with a shared state URL, where many workers wait on one reset).

    >>> wake_jitter(10.0, rng=lambda: 0.5)
    5.0
    """
    window = explicit
    if window is None:
        text = os.environ.get("CAW_WAKE_JITTER", "").strip()
        try:
            window = float(text) if text else DEFAULT_WAKE_JITTER
        except ValueError:
            raise ConfigurationError(f"CAW_WAKE_JITTER={text!r} is not a number of seconds") from None
    if window < 0:
        raise ConfigurationError(f"wake_jitter must be >= 0 seconds, not {window}")
    if rng is None:
        import random  # here: `caw run` does not load it unless a fleet waits

        rng = random.random
    return float(window) * rng()


# ---- the link: one Redis, its health, warn once --------------------------------------------------------
class Link:
    """A Redis and whether it answers. Calls fail fast (no retry for ``retry_s``) once it did not."""

    def __init__(self, redis: RedisState, *, warn: Warn | None = None, clock: Callable[[], float] = time.monotonic,
                 retry_s: float | None = None) -> None:  # fmt: skip
        self.redis = redis
        self.warn = warn or stderr_warn
        self._clock = clock
        if retry_s is None:
            text = os.environ.get("CAW_STATE_RETRY", "").strip()
            try:
                retry_s = float(text) if text else RETRY_S
            except ValueError:
                raise ConfigurationError(f"CAW_STATE_RETRY={text!r} is not a number of seconds") from None
        self._retry_s = retry_s
        self._down_until: float | None = None
        self._warned = False
        self._lock = threading.Lock()
        #: session records that could not be written, written when Redis answers again
        self.pending: dict[str, bytes] = {}
        self.last_error: str | None = None

    @property
    def display(self) -> str:
        return self.redis.config.display

    @property
    def up(self) -> bool:
        return self._down_until is None

    def call(self, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """(True, result), or (False, None) when Redis did not answer (warned about once)."""
        from caw.state.redis_backend import RedisUnavailable

        if self._down_until is not None and self._clock() < self._down_until:
            return False, None
        try:
            value = fn(*args)
        except RedisUnavailable as exc:
            self._failed(str(exc))
            return False, None
        self._down_until = None
        if self.pending:
            self._flush()
        return True, value

    def _failed(self, why: str) -> None:
        self._down_until = self._clock() + self._retry_s
        self.last_error = why
        with self._lock:
            if self._warned:
                return
            self._warned = True
        try:
            self.warn(
                f"shared state {self.display} is unreachable ({why}); using the local files until it is back "
                "(turns go on; limits and sessions are shared again once it answers)"
            )
        except Exception:
            pass

    def _flush(self) -> None:
        from caw.state.redis_backend import RedisUnavailable

        for session_id, blob in list(self.pending.items()):
            try:
                self.redis.put_record(session_id, blob)
            except RedisUnavailable as exc:
                self._failed(str(exc))
                return
            if self.pending.get(session_id) is blob:
                del self.pending[session_id]


_LINKS: dict[tuple[str, str | None], Link] = {}
_LINKS_LOCK = threading.Lock()


def open_link(url: str, *, warn: Warn | None = None) -> Link:
    """The process's one ``Link`` to ``url`` (shared, so "unreachable" is warned about once per process)."""
    prefix = os.environ.get("CAW_STATE_PREFIX") or None
    with _LINKS_LOCK:
        link = _LINKS.get((url, prefix))
        if link is None:
            from caw.state.redis_backend import RedisState, parse_url

            link = Link(RedisState(parse_url(url, prefix=prefix)), warn=warn)
            _LINKS[(url, prefix)] = link
        elif warn is not None and link.warn is stderr_warn:
            link.warn = warn
        return link


# ---- the ledger --------------------------------------------------------------------------------------
class SharedLedger(CooldownStore):
    """The cooldown file plus Redis: records go to both, reads merge both (the later reset wins).

    ``scope(provider)`` names the account a limit belongs to ("" when it cannot be told apart): workers on
    another key or login of the same provider are not stopped by this account's limit.
    """

    def __init__(self, link: Link, *, directory: Path | None = None, scope: Callable[[str], str] | None = None,
                 now: Callable[[], datetime] | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep, probe_wait: float | None = None) -> None:  # fmt: skip
        super().__init__(directory or default_data_dir(), **({"now": now} if now else {}))
        self.link = link
        self._scope = scope or (lambda provider: "")
        self._clock = clock
        self._sleep = sleep
        if probe_wait is None:
            text = os.environ.get("CAW_PROBE_WAIT", "").strip()
            try:
                probe_wait = float(text) if text else PROBE_WAIT_S
            except ValueError:
                raise ConfigurationError(f"CAW_PROBE_WAIT={text!r} is not a number of seconds") from None
        #: how long a worker of a cold fleet waits for the one probing request before sending its own
        self.probe_wait = probe_wait

    def admit(self, provider: str) -> str | None:
        """Before a request to ``provider``: when no worker saw it answer lately (a cold fleet), one worker sends
        first and the others wait until it answered or hit a limit. Returns the probe token when this worker is
        the one to send (hand it to ``settle``), else None (go ahead, or check the ledger: a limit came in).

        A worker waits at most ``probe_wait`` seconds (``CAW_PROBE_WAIT``, 0 turns the wait off); an unreachable
        Redis admits at once.
        """
        if self.probe_wait <= 0:
            return None
        entry = self.entry_name(provider)
        redis = self.link.redis
        token = os.urandom(8).hex()
        deadline = self._clock() + self.probe_wait
        while True:
            ok, state = self.link.call(redis.probe_state, entry)
            if not ok:
                return None
            answered, probing, limited = state
            if answered or limited:
                return None
            if not probing:
                got, mine = self.link.call(redis.acquire_probe, entry, token, int(PROBE_LEASE_S * 1000))
                if not got or mine:
                    return token if got and mine else None
            if self._clock() >= deadline:
                return None
            import random

            self._sleep(PROBE_POLL_S * (1 + random.random()))

    def settle(self, provider: str, token: str | None, *, answered: bool) -> None:
        """After the request ``admit`` let through: mark the provider answered (others go) and end the probe."""
        entry = self.entry_name(provider)
        if answered:
            self.link.call(self.link.redis.mark_answered, entry, ANSWERED_TTL_S)
        if token is not None:
            self.link.call(self.link.redis.release_probe, entry, token)

    def entry_name(self, provider: str) -> str:
        scope = self._scope(provider)
        return f"{provider}@{scope}" if scope else provider

    def shared_entries(self) -> dict[str, Cooldown] | None:
        """Every entry in Redis (all accounts), or None when it does not answer."""
        ok, rows = self.link.call(self.link.redis.limits)
        if not ok:
            return None
        now = self._now()
        return {name: Cooldown(name, until, kind, message) for name, (until, kind, message) in rows.items()
                if until > now}  # fmt: skip

    def active(self) -> dict[str, Cooldown]:
        local = super().active()
        shared = self.shared_entries() or {}
        out = dict(local)
        for name, entry in shared.items():
            provider = name.partition("@")[0]
            if self.entry_name(provider) != name:
                continue  # another account's limit
            mine = Cooldown(provider, entry.until, entry.kind, entry.message)
            if provider not in out or out[provider].until < entry.until:
                out[provider] = mine
        return out

    def record(self, error: UsageLimitError) -> bool:
        """As the file's ``record``, and a limit whose reset time the CLI did not say is shared too, for
        ``UNKNOWN_RESET_S``: the fleet would otherwise spend one request per worker to find it again."""
        if error.resets_at is None and error.provider:
            stand_in = UsageLimitError(
                error.provider,
                error.detail or "usage limit (reset time unknown)",
                resets_at=self._now() + timedelta(seconds=UNKNOWN_RESET_S),
                kind=error.kind,
            )
            return super().record(stand_in)
        return super().record(error)

    def set(self, provider: str, until: datetime, *, kind: str = "", message: str = "") -> None:
        if until.tzinfo is None:
            until = until.replace(tzinfo=timezone.utc)
        self.link.call(self.link.redis.record_limit, self.entry_name(provider), until, kind, message)
        super().set(provider, until, kind=kind, message=message)


def open_ledger(url: str | None = None, *, scope: Callable[[str], str] | None = None, warn: Warn | None = None,
                directory: Path | None = None) -> CooldownStore:  # fmt: skip
    """The ledger for ``url`` (``state_url()``): the cooldown file alone, or with Redis on top."""
    if url is None:
        return CooldownStore(directory) if directory is not None else CooldownStore.default()
    return SharedLedger(open_link(url, warn=warn), directory=directory, scope=scope)


def gate_runner(runner: Any, ledger: CooldownStore) -> Any:
    """``runner`` (a ``TurnRunner``) behind the ledger: a provider another worker saw limited raises that limit
    (a ``UsageLimitError`` with its reset) before any process starts or request is sent, also when it is the
    only provider; the session then fails over, waits (auto-wait, jittered) or raises as for a real limit."""

    def check(name: str) -> None:
        entry = ledger.active().get(name)
        if entry is not None:
            raise UsageLimitError(
                name,
                f"{entry.message or 'usage limit'} (from the shared limit ledger; skipped without a request)",
                resets_at=entry.until,
                kind=entry.kind or "usage",
            )

    def gated(provider: Any, binary: Any, config: Any, request: Any, **kw: Any) -> Any:
        check(provider.name)
        if not isinstance(ledger, SharedLedger):
            return (yield from runner(provider, binary, config, request, **kw))
        token = ledger.admit(provider.name)  # a cold fleet: one request first, the others wait for its outcome
        if token is None:
            check(provider.name)
        answered = False
        try:
            turn = yield from runner(provider, binary, config, request, **kw)
            answered = True
            return turn
        except UsageLimitError as exc:
            ledger.record(exc)  # before the lease ends: the waiting workers see the limit, not a free provider
            raise
        finally:
            ledger.settle(provider.name, token, answered=answered)

    gated.inner = runner  # type: ignore[attr-defined]
    return gated


def default_ledger() -> CooldownStore:
    """The ledger every caw process of this user shares: ``$CAW_STATE_URL``'s, else the cooldown file."""
    return open_ledger(state_url())


# ---- the session store -------------------------------------------------------------------------------
class FileSessionStore(SessionStore):
    """The embedded session store (files under the data dir) with portable records (``record.cawrec``)."""

    def record_path(self, session_id: str) -> Path:
        return self.session_dir(session_id) / RECORD_FILE

    def get_record(self, session_id: str) -> Record | None:
        """The record imported for ``session_id`` (SessionRecordCorrupt when it fails its checksum)."""
        try:
            path = self.record_path(session_id)
        except ValueError:
            return None
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError.from_os_error(exc, "read", path) from exc
        return unpack(blob, source=str(path))

    def put_record(self, record: Record) -> None:
        """Keep ``record`` here (``caw session import``), and its trajectory unless one is saved already."""
        blob = pack(record)
        write_bytes(self.record_path(record.session_id), blob)
        if record.trajectory is not None and not SessionStore.exists(self, record.session_id):
            self.save(Trajectory.from_dict(record.trajectory))

    def exists(self, session_id: str) -> bool:
        if super().exists(session_id):
            return True
        try:
            return self.record_path(session_id).is_file()
        except ValueError:
            return False

    def load(self, session_id: str) -> Trajectory:
        try:
            return super().load(session_id)
        except FileNotFoundError:
            record = self.get_record(session_id)
            if record is None or record.trajectory is None:
                raise
            return Trajectory.from_dict(record.trajectory)


class SharedSessionStore(FileSessionStore):
    """The local files plus a portable record per session in Redis, written after each turn."""

    def __init__(self, data_dir: Path | str, link: Link, *, capture: Capture | None = None) -> None:
        super().__init__(data_dir)
        self.link = link
        self.capture = capture
        self._captured: dict[str, tuple[int, str]] = {}
        self._capture_warned = False

    def save(self, traj: Trajectory, *, redact: Callable[[str], str] | None = None) -> Path:
        path = super().save(traj, redact=redact)
        try:
            self._share(traj, redact)
        except Exception as exc:  # the shared copy must never fail the turn that is being saved
            self._warn_capture(f"the session record of {traj.session_id} was not shared: {exc}")
        return path

    def _share(self, traj: Trajectory, redact: Callable[[str], str] | None) -> None:
        if not traj.resume_handle or not traj.turns:
            return
        marker = (len(traj.turns), traj.resume_handle)
        if self._captured.get(traj.session_id) == marker and traj.session_id not in self.link.pending:
            return
        record = make_record(traj, self.capture, redact)
        blob = pack(record)
        self._captured[traj.session_id] = marker
        self.link.pending[traj.session_id] = blob
        self.link.call(self.link.redis.ping)  # answers: the pending record is written (Link._flush)

    def _warn_capture(self, message: str) -> None:
        if self._capture_warned:
            return
        self._capture_warned = True
        try:
            self.link.warn(message)
        except Exception:
            pass

    def get_record(self, session_id: str) -> Record | None:
        record = super().get_record(session_id)
        if record is not None:
            return record
        ok, blob = self.link.call(self.link.redis.get_record, session_id)
        if not ok or blob is None:
            return None
        return unpack(blob, source=self.link.redis.record_source(session_id))

    def exists(self, session_id: str) -> bool:
        if super().exists(session_id):
            return True
        ok, blob = self.link.call(self.link.redis.get_record, session_id)
        return bool(ok and blob is not None)

    def load(self, session_id: str) -> Trajectory:
        try:
            return super().load(session_id)
        except FileNotFoundError:
            record = self.get_record(session_id)
            if record is None or record.trajectory is None:
                raise
            return Trajectory.from_dict(record.trajectory)


def make_record(traj: Trajectory, capture: Capture | None, redact: Callable[[str], str] | None = None) -> Record:
    """The portable record of a saved session: its trajectory and (with ``capture``) the CLI's own record."""
    if not traj.resume_handle:
        raise ConfigurationError(f"session {traj.session_id} has no resume handle yet (no completed turn)")
    handle = decode(traj.resume_handle)
    files = capture(handle) if capture is not None else []
    if redact is not None:
        files = [RecordFile(f.path, redact_bytes(f.data, redact), f.role) for f in files]
    text = json.dumps(traj.to_dict(), ensure_ascii=False)
    doc = json.loads(redact(text)) if redact is not None else json.loads(text)
    return Record(traj.resume_handle, handle.provider, traj.session_id, files, doc, handle.cwd)


def write_bytes(path: Path, blob: bytes) -> None:
    """Write ``blob`` atomically (temp file, fsync, rename), mode 0600; StorageError when it cannot."""
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with storage_errors("write", path):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def redact_bytes(data: bytes, redact: Callable[[str], str]) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    masked = redact(text)
    return data if masked == text else masked.encode("utf-8", "surrogateescape")


def open_store(data_dir: Path | str | None, url: str | None, *, capture: Capture | None = None,
               warn: Warn | None = None) -> FileSessionStore | None:  # fmt: skip
    """The session store: ``data_dir``'s files (None without one and without a URL); with a URL, Redis on top
    (then the local files live in ``data_dir`` or caw's data dir)."""
    if url is None:
        return FileSessionStore(data_dir) if data_dir is not None else None
    return SharedSessionStore(data_dir if data_dir is not None else default_data_dir(), open_link(url, warn=warn),
                              capture=capture)  # fmt: skip
