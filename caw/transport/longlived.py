"""A CLI that lives across turns (issue 14): stdin, stdout and stderr are pipes; lines in, lines out.

The warm modes speak line-delimited JSON both ways (claude's stream-json input, codex's app-server), or
print one "listening" line and then serve HTTP (opencode serve). A pty would mangle long input lines (the
line discipline caps a canonical line at 4 KiB), and none of the warm modes needs a TTY, so this uses
plain pipes. Everything else is as for a one-turn ``AgentProcess``: a session of its own, death with caw
(``PR_SET_PDEATHSIG``), and the run marker in the environment so every process it starts can be found.

A reader thread frames stdout into lines and queues them; ``read_line(timeout)`` takes the next one, so
the caller owns its watchdogs. ``new_descendants`` / ``kill_new_descendants`` let a cancelled turn kill the
tools that turn started while the CLI itself (and the MCP servers it started before the turn) live on.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
import weakref
from collections.abc import Callable

from caw.transport import reaper
from caw.transport.framing import LineFramer
from caw.transport.process import ProcessSpec, SpawnError, StderrTail, _spawner

_READ_CHUNK = 1 << 16

_live: weakref.WeakSet[LongLivedProcess] = weakref.WeakSet()

#: what ``read_line`` returns once stdout is closed and every line before it was read
EOF = None


class LongLivedProcess:
    """One long-lived CLI process. ``start()``, ``write_line()``/``read_line()``, then ``stop()`` (idempotent)."""

    def __init__(self, spec: ProcessSpec, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.run_id = uuid.uuid4().hex
        self._clock = clock
        self._popen: subprocess.Popen[bytes] | None = None
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._eof = False
        self._stderr = StderrTail()
        self._write_lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.started_at: float | None = None
        #: clock time of the last byte on stdout (the idle watchdog's reference)
        self.last_output_at: float | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        reaper.enable_subreaper()
        env = dict(self.spec.env)
        reaper.mark(env, self.run_id)
        parent = os.getpid()

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                self.spec.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.spec.cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
                bufsize=0,
                preexec_fn=lambda: reaper.die_with_parent(parent),
            )

        try:
            self._popen = _spawner.spawn(popen)
        except OSError as exc:
            raise SpawnError(exc.errno, f"cannot start {self.spec.argv[0]!r}: {exc.strerror}") from exc
        self.started_at = self._clock()
        _live.add(self)
        self._start_thread(self._read_stdout, "caw-warm-stdout")
        self._start_thread(self._drain_stderr, "caw-warm-stderr")
        if self.spec.stdin_data:
            self.write(self.spec.stdin_data)

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _read_stdout(self) -> None:
        assert self._popen is not None and self._popen.stdout is not None
        fd = self._popen.stdout.fileno()
        framer = LineFramer()
        try:
            while True:
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except OSError:
                    break
                if not chunk:
                    break
                self.last_output_at = self._clock()
                for line in framer.feed(chunk):
                    self._lines.put(line)
            for line in framer.flush():
                self._lines.put(line)
        finally:
            self._lines.put(EOF)

    def _drain_stderr(self) -> None:
        assert self._popen is not None and self._popen.stderr is not None
        self._stderr.drain(self._popen.stderr.fileno())

    # ---- state -----------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None and not self._eof

    def stderr_tail(self, limit: int = 4000) -> str:
        return self._stderr.text(limit)

    # ---- I/O -------------------------------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Write to the CLI's stdin; False if it is closed (the CLI exited). Thread-safe."""
        popen = self._popen
        if popen is None or popen.stdin is None:
            return False
        with self._write_lock:
            try:
                popen.stdin.write(data)
                popen.stdin.flush()
                return True
            except (OSError, ValueError):
                return False

    def write_line(self, line: str) -> bool:
        """One line of text (no newline inside; JSON from ``json.dumps`` never has one)."""
        return self.write(line.encode("utf-8") + b"\n")

    def read_line(self, timeout: float | None) -> str | None:
        """The next stdout line, ``""`` if none came within ``timeout`` seconds, ``EOF`` (None) when stdout closed.

        The empty string is never a line (the framer drops empty lines), so it safely means "nothing yet".
        """
        if self._eof:
            return EOF
        try:
            line = self._lines.get(timeout=timeout) if timeout is None or timeout > 0 else self._lines.get_nowait()
        except queue.Empty:
            return ""
        if line is EOF:
            self._eof = True
        return line

    # ---- the tools of one turn -------------------------------------------------------------------
    def descendants(self) -> set[int]:
        """Every process of this run except the CLI itself (by marker and by parentage)."""
        pid = self.pid
        return {p for p in reaper.find_tree(pid, self.run_id) if p != pid}

    def kill_new_descendants(self, before: set[int], *, settle_s: float = 2.0) -> list[int]:
        """SIGKILL what the CLI started since ``before`` was taken (a cancelled turn's tools), until none is left."""
        killed: list[int] = []
        deadline = self._clock() + settle_s
        while True:
            new = self.descendants() - before
            if not new:
                break
            for p in new:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    os.waitpid(p, os.WNOHANG)
                except (ChildProcessError, OSError):
                    pass
            killed.extend(p for p in new if p not in killed)
            if self._clock() > deadline:
                break
            time.sleep(0.02)
        return killed

    # ---- stopping --------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> int | None:
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the whole tree now (the CLI, its MCP servers, every tool). Thread-safe."""
        if self._popen is not None:
            reaper.kill_tree(self._popen.pid, self.run_id)

    def stop(self, grace_s: float = 2.0) -> None:
        """Close stdin (the polite "we are done"), SIGTERM, up to ``grace_s``, then kill the tree. Idempotent."""
        with self._stop_lock:
            popen = self._popen
            if popen is None:
                return
            if popen.stdin is not None:
                try:
                    popen.stdin.close()
                except OSError:
                    pass
            if popen.poll() is None and grace_s > 0:
                try:
                    os.killpg(popen.pid, signal.SIGTERM)
                except OSError:
                    pass
                self.wait(grace_s)
            reaper.kill_tree(popen.pid, self.run_id)
            self.wait(1.0)
            for t in self._threads:
                t.join(timeout=1.0)
            for stream in (popen.stdout, popen.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            _live.discard(self)


@atexit.register
def stop_all(grace_s: float = 0.5) -> None:
    """Stop every long-lived process still running (interpreter exit)."""
    for proc in list(_live):
        proc.stop(grace_s)


__all__ = ["EOF", "LongLivedProcess", "stop_all"]
