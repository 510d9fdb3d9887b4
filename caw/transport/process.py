"""Runs one agent CLI: stdout on a pseudo-terminal, stdin a pipe, stderr a pipe; lines out, watchdogs on.

* stdout is a pty so the CLI sees a TTY and streams unbuffered;
* stdin is a pipe that receives the prompt (if any) and is then closed: every CLI hangs on an open
  stdin, claude refuses a TTY stdin, and argv strings are limited to 128 KiB;
* stderr is its own pipe, drained by a thread into a bounded tail so a chatty child never blocks.

The process runs in a session of its own, dies with caw (``PR_SET_PDEATHSIG``), and carries a run marker
in its environment so every process it starts can be found and killed (see ``reaper``).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from queue import SimpleQueue

from caw.transport import reaper
from caw.transport.framing import LineFramer

Clock = Callable[[], float]
#: a caller's watchdog: None, or (when it fires on the process's clock, its name, its seconds)
Deadline = Callable[[], "tuple[float, str, float] | None"]

_READ_CHUNK = 1 << 16
_STDERR_TAIL = 1 << 16
#: how often the read loop checks whether the CLI exited while something else still holds the pty open
_POLL_S = 0.25


@dataclass(frozen=True)
class ProcessSpec:
    argv: list[str]
    env: Mapping[str, str]
    cwd: str | None = None
    stdin_data: bytes | None = None


class StderrTail:
    """The last bytes a CLI wrote to stderr, drained by a thread so a chatty child never blocks on a full pipe."""

    def __init__(self, keep: int = _STDERR_TAIL) -> None:
        self._keep = keep
        self._buf = bytearray()
        self._lock = threading.Lock()

    def drain(self, fd: int) -> None:
        """Read ``fd`` until EOF, keeping at most about ``2 * keep`` bytes (run it on its own thread)."""
        while True:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                self._buf += chunk
                if len(self._buf) > 2 * self._keep:
                    del self._buf[: len(self._buf) - self._keep]

    def text(self, limit: int = 4000) -> str:
        with self._lock:
            data = bytes(self._buf[-limit:])
        return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class Watchdogs:
    """Seconds of silence/duration after which a run is stopped; None disables one."""

    first_output: float | None = None
    idle: float | None = None
    total: float | None = None


class SpawnError(OSError):
    """The binary could not be started (missing, not executable, argv too long...)."""


class WatchdogExpired(Exception):
    """A watchdog fired. ``which`` is "first_output", "idle", "total" or the name a caller's deadline gave."""

    def __init__(self, which: str, seconds: float) -> None:
        super().__init__(f"{which} watchdog expired after {seconds:g}s")
        self.which = which
        self.seconds = seconds


class _Spawner:
    """Starts processes from one long-lived thread.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, not the process: a CLI
    spawned from a short-lived worker thread (``asyncio.to_thread``, an executor) would be killed when that
    worker retires. A dedicated daemon thread lives as long as the interpreter.
    """

    def __init__(self) -> None:
        self._queue: SimpleQueue[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]]
        self._queue = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def spawn(self, fn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="caw-spawner", daemon=True)
                self._thread.start()
        fut: Future[subprocess.Popen[bytes]] = Future()
        self._queue.put((fn, fut))
        return fut.result()

    def _run(self) -> None:
        while True:
            fn, fut = self._queue.get()
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)


_spawner = _Spawner()
_live: weakref.WeakSet[AgentProcess] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for proc in list(_live):
        proc.stop(grace_s=0.5)


class AgentProcess:
    """One run of a CLI. Use ``start()``, iterate ``lines()``, then ``stop()`` (idempotent)."""

    def __init__(self, spec: ProcessSpec, *, clock: Clock = time.monotonic) -> None:
        self.spec = spec
        self.run_id = uuid.uuid4().hex
        self._clock = clock
        self._popen: subprocess.Popen[bytes] | None = None
        self._master: int | None = None
        self._stderr = StderrTail()
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self.started_at: float | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        reaper.enable_subreaper()
        master, slave = os.openpty()
        _configure_pty(slave)
        env = dict(self.spec.env)
        reaper.mark(env, self.run_id)
        parent = os.getpid()

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                self.spec.argv,
                stdin=subprocess.PIPE,
                stdout=slave,
                stderr=subprocess.PIPE,
                cwd=self.spec.cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
                preexec_fn=lambda: reaper.die_with_parent(parent),
            )

        try:
            self._popen = _spawner.spawn(popen)
        except OSError as exc:
            os.close(master)
            raise SpawnError(exc.errno, f"cannot start {self.spec.argv[0]!r}: {exc.strerror}") from exc
        finally:
            os.close(slave)  # the child has its copy; ours would keep the pty open forever
        self._master = master
        self.started_at = self._clock()
        _live.add(self)
        self._start_thread(self._drain_stderr, "caw-stderr")
        self._start_thread(self._feed_stdin, "caw-stdin")

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _feed_stdin(self) -> None:
        assert self._popen is not None and self._popen.stdin is not None
        stdin = self._popen.stdin
        try:
            if self.spec.stdin_data:
                stdin.write(self.spec.stdin_data)
        except OSError:
            pass  # the CLI exited before reading it all: its output (or exit code) tells what happened
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _drain_stderr(self) -> None:
        assert self._popen is not None and self._popen.stderr is not None
        self._stderr.drain(self._popen.stderr.fileno())

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def stderr_tail(self, limit: int = 4000) -> str:
        return self._stderr.text(limit)

    # ---- output ----------------------------------------------------------------------------------
    def lines(self, watchdogs: Watchdogs = Watchdogs(), deadline: Deadline | None = None) -> Iterator[str]:
        """Decoded stdout lines (``\\r`` stripped) until the CLI is gone. Raises ``WatchdogExpired``.

        ``deadline`` is the caller's own watchdog, asked again after every line it was handed: None, or
        ``(when, which, seconds)`` on this process's clock (the session's event-level watchdogs).
        """
        assert self._master is not None and self.started_at is not None, "start() first"
        fd = self._master
        framer = LineFramer()
        start = self.started_at
        last_output = start
        got_output = False
        exited_at: float | None = None
        while True:
            now = self._clock()
            due, which, limit = _next_deadline(watchdogs, start, last_output, got_output)
            extra = deadline() if deadline is not None else None
            if extra is not None and (due is None or extra[0] < due):
                due, which, limit = extra
            wait = _POLL_S if due is None else max(0.0, min(_POLL_S, due - now))
            if due is not None and now >= due:
                raise WatchdogExpired(which, limit)
            try:
                ready, _, _ = select.select([fd], [], [], wait)
            except InterruptedError:
                continue
            if not ready:
                if self._popen is not None and self._popen.poll() is not None:
                    # the CLI is gone but a leftover process still holds the pty: drain and stop
                    if exited_at is None:
                        exited_at = self._clock()
                    elif self._clock() - exited_at > _POLL_S:
                        break
                continue
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:  # EIO: every writer closed the pty (Linux's EOF on a pty master)
                break
            if not chunk:
                break
            last_output = self._clock()
            got_output = True
            yield from framer.feed(chunk)
        yield from framer.flush()

    def wait(self, timeout: float | None = None) -> int | None:
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    # ---- stopping --------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """SIGINT the CLI's process group: the CLIs stop their own tools on it."""
        if self._popen is not None and self._popen.poll() is None:
            try:
                os.killpg(self._popen.pid, signal.SIGINT)
            except OSError:
                pass

    def terminate(self, grace_s: float = 2.0) -> None:
        """SIGINT, up to ``grace_s`` for the CLI to exit, then SIGKILL the whole tree until none is left.

        Also sweeps what the CLI left behind after a normal exit. Thread-safe: ``Session.cancel`` calls it
        from another thread while the owner is blocked reading (the owner then sees EOF).
        """
        with self._stop_lock:
            if self._popen is None:
                return
            if self._popen.poll() is None and grace_s > 0:
                self.interrupt()
                self.wait(grace_s)
            reaper.kill_tree(self._popen.pid, self.run_id)
            self.wait(1.0)

    def kill(self) -> None:
        """SIGKILL the whole tree now, with no grace. Thread-safe: a ``terminate`` waiting out its grace in
        another thread then sees the CLI gone and returns."""
        popen = self._popen
        if popen is not None:
            reaper.kill_tree(popen.pid, self.run_id)

    def stop(self, grace_s: float = 2.0) -> None:
        """``terminate`` and release the pty and pipes. Idempotent; call it from the thread that reads."""
        self.terminate(grace_s)
        with self._stop_lock:
            if self._stopped.is_set() or self._popen is None:
                return
            self._stopped.set()
            for t in self._threads:
                t.join(timeout=1.0)
            if self._master is not None:
                try:
                    os.close(self._master)
                except OSError:
                    pass
                self._master = None
            for stream in (self._popen.stdin, self._popen.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            _live.discard(self)


def _next_deadline(
    wd: Watchdogs, start: float, last_output: float, got_output: bool
) -> tuple[float | None, str, float]:
    candidates: list[tuple[float, str, float]] = []
    if wd.total is not None:
        candidates.append((start + wd.total, "total", wd.total))
    if not got_output and wd.first_output is not None:
        candidates.append((start + wd.first_output, "first_output", wd.first_output))
    if got_output and wd.idle is not None:
        candidates.append((last_output + wd.idle, "idle", wd.idle))
    if not candidates:
        return None, "", 0.0
    return min(candidates)


def _configure_pty(fd: int) -> None:
    """A wide window and no output post-processing: the JSON lines arrive as written."""
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
        attrs = termios.tcgetattr(fd)
        attrs[1] &= ~termios.OPOST  # no \n -> \r\n (the framer copes either way)
        attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG)
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (OSError, termios.error):
        pass
