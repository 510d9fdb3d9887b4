"""The pty bridge: copies bytes both ways, forwards resizes, pastes a long initial prompt, and stops the CLI
on every way out."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
import tty
import uuid
from dataclasses import dataclass
from typing import Any

from caw.errors import ProviderNotInstalled
from caw.interactive.commands import InteractiveCommand
from caw.interactive.terminal import TerminalModes, _SignalGuard, _write_all
from caw.transport import reaper

#: exit code of a cancelled picker (the shell's code for "stopped by Ctrl-C")
CANCELLED = 130

_READ_CHUNK = 1 << 16

# how long the UI must stay silent after enabling bracketed paste before caw pastes the prompt, and how
# long to wait for that at most (a UI that never enables it still gets the prompt, typed plainly)
_SETTLE_S = 0.5

_READY_TIMEOUT_S = 60.0

# after the paste: how long to wait for the UI to settle before pressing Enter, at most
_SUBMIT_TIMEOUT_S = 10.0

# without a pidfd or signal handlers (not the main thread) the loop wakes this often to look around
_POLL_S = 0.25

# the CLI gets this long to exit on its own after SIGTERM before everything it started is SIGKILLed
_STOP_GRACE_S = 1.5


@dataclass(frozen=True)
class InteractiveResult:
    """How an interactive session ended: the CLI's exit code (128+N when killed by signal N; 130 when
    the picker was cancelled) and the tail of what it printed (raw terminal bytes, ``capture_bytes``)."""

    exit_code: int
    output: bytes = b""


# ---- the initial prompt as a paste ---------------------------------------------------------------------
class _PasteFeeder:
    """Types the initial prompt into the UI once, then presses Enter.

    The paste goes out once the UI is ready: it switched bracketed-paste mode on, showed its ``ready``
    text when the CLI has one (opencode enables its input modes seconds before it can take input, and
    drops what arrives in between), and then drew nothing for ``_SETTLE_S``. Enter follows once the UI
    has taken the paste in (quiet again). A UI that never gets there gets the prompt anyway after
    ``_READY_TIMEOUT_S``.
    """

    def __init__(self, text: str, now: float, ready: bytes | None = None) -> None:
        self._data = text.encode("utf-8", "surrogatepass")
        self.state = "waiting"  # waiting -> pasted -> done
        self._started = now
        self._pasted_at = 0.0
        self._last_output = now
        self._saw_output = False
        self._ready = ready
        self._ready_seen = ready is None
        self._tail = b""

    def on_output(self, now: float, data: bytes = b"") -> None:
        self._last_output = now
        self._saw_output = True
        if not self._ready_seen and self._ready is not None:
            window = self._tail + data
            self._ready_seen = self._ready in window
            self._tail = window[-len(self._ready) :]

    def deadline(self) -> float | None:
        """When ``due`` should be asked next (None: never again)."""
        if self.state == "waiting":
            return min(self._last_output + _SETTLE_S, self._started + _READY_TIMEOUT_S)
        if self.state == "pasted":
            return min(self._last_output + _SETTLE_S, self._pasted_at + _SUBMIT_TIMEOUT_S)
        return None

    def due(self, now: float, modes: TerminalModes, input_pending: bool) -> bytes:
        """Bytes to send to the UI now (b"" if none yet)."""
        quiet = now - self._last_output >= _SETTLE_S
        if self.state == "waiting":
            ready = modes.bracketed_paste and self._ready_seen and self._saw_output and quiet
            if ready or now - self._started >= _READY_TIMEOUT_S:
                self.state = "pasted"
                self._pasted_at = self._last_output = now
                if modes.bracketed_paste:
                    return b"\x1b[200~" + self._data + b"\x1b[201~"
                return self._data
        elif self.state == "pasted" and not input_pending and (quiet or now - self._pasted_at >= _SUBMIT_TIMEOUT_S):
            self.state = "done"
            return b"\r"
        return b""


# ---- bridging ------------------------------------------------------------------------------------------
def _winsize(fd: int) -> bytes | None:
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols = struct.unpack("HHHH", packed)[:2]
    return packed if rows and cols else None


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


class _Bridge:
    """One interactive run: spawn on a pty, copy bytes both ways, clean up on every way out."""

    def __init__(
        self, command: InteractiveCommand, in_fd: int, out_fd: int, capture_bytes: int, guard: _SignalGuard
    ) -> None:
        self.command = command
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.capture_bytes = capture_bytes
        self.guard = guard
        self.run_id = uuid.uuid4().hex
        self.modes = TerminalModes()
        self.captured = bytearray()
        self.to_child = bytearray()
        self.proc: subprocess.Popen[bytes] | None = None
        self.master: int | None = None
        self.pidfd: int | None = None
        self._winsize: bytes | None = None

    # -- lifecycle --
    def run(self) -> InteractiveResult:
        saved = termios.tcgetattr(self.in_fd)
        try:
            self._spawn(saved)
            tty.setraw(self.in_fd, termios.TCSANOW)
            self._loop()
            returncode = self._finish()
        finally:
            self.guard.deferred = True
            self._stop()
            self._restore_terminal(saved)
        tail = self.captured[-self.capture_bytes :] if self.capture_bytes else self.captured
        return InteractiveResult(_exit_code(returncode), bytes(tail))

    def _spawn(self, attrs: list[Any]) -> None:
        reaper.enable_subreaper()
        master, slave = os.openpty()
        try:
            # the CLI starts with the user's own settings and window size, like in a plain terminal
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            self._winsize = _winsize(self.out_fd) or _winsize(self.in_fd)
            if self._winsize:
                fcntl.ioctl(slave, termios.TIOCSWINSZ, self._winsize)
            env = {**os.environ, **self.command.env}
            env[reaper.MARKER_VAR] = self.run_id
            parent = os.getpid()

            def child_setup() -> None:
                # a session of its own with the pty as controlling terminal: job control, ^C and SIGWINCH
                # reach the CLI's process group and not caw
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                reaper.die_with_parent(parent)

            try:
                self.proc = subprocess.Popen(
                    self.command.argv,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    cwd=self.command.cwd,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=child_setup,
                )
            except OSError as exc:  # found, but exec failed (bad interpreter, no permission, a missing cwd)
                hint = f"it cannot be started: {exc.strerror}"
                raise ProviderNotInstalled(self.command.provider, self.command.argv[0], hint) from exc
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the child has its copies; ours would keep the pty open after it exits
        self.master = master
        os.set_blocking(master, False)
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(self.proc.pid)

    def _finish(self) -> int | None:
        """After the loop: the CLI's exit status (it is given a moment when only its output ended)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            return None

    def _stop(self) -> None:
        """Stop the CLI if it still runs, then SIGKILL everything it started (found by the run marker)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
            self._drain_until_exit(proc, _STOP_GRACE_S)
        # by marker too: a signal may have cut _spawn short after the fork, before self.proc was set
        reaper.kill_tree(proc.pid if proc is not None else None, self.run_id)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        if self.master is not None:
            self._drain_output()
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None

    def _drain_until_exit(self, proc: subprocess.Popen[bytes], grace: float) -> None:
        # keep reading while the CLI shuts down: a CLI blocked on a full pty would never exit
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            if self.master is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                return
            with contextlib.suppress(InterruptedError):
                select.select([self.master], [], [], min(0.05, max(0.0, deadline - time.monotonic())))
            self._drain_output()

    def _restore_terminal(self, saved: list[Any]) -> None:
        # switch off what the CLI left on (it may have crashed mid-screen), then the exact saved settings
        with contextlib.suppress(OSError):
            reset = self.modes.reset_sequence()
            if reset:
                _write_all(self.out_fd, reset)
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self.in_fd, termios.TCSADRAIN, saved)

    # -- the loop --
    def _loop(self) -> None:
        assert self.master is not None and self.proc is not None
        master = self.master
        feeder = None
        if self.command.paste:
            feeder = _PasteFeeder(self.command.paste, time.monotonic(), self.command.ready)
        reading_input = True
        while True:
            now = time.monotonic()
            timeout: float | None = None
            if feeder is not None:
                deadline = feeder.deadline()
                if deadline is not None:
                    timeout = max(0.0, deadline - now)
            if self.pidfd is None or not self.guard.active:
                timeout = _POLL_S if timeout is None else min(timeout, _POLL_S)
            rlist = [master, self.guard.wake_r]
            if reading_input:
                rlist.append(self.in_fd)
            if self.pidfd is not None:
                rlist.append(self.pidfd)
            wlist = [master] if self.to_child else []
            try:
                readable, writable, _ = select.select(rlist, wlist, [], timeout)
            except InterruptedError:
                continue
            if self.guard.wake_r in readable:
                self.guard.drain()
            self._sync_winsize()
            if master in readable and not self._pump_output(feeder):
                return  # every writer closed the pty: the CLI is gone
            if reading_input and self.in_fd in readable:
                data = self._read_input()
                if data is None:
                    reading_input = False  # the terminal went away; SIGHUP follows
                else:
                    self.to_child += data
            if feeder is not None:
                self.to_child += feeder.due(time.monotonic(), self.modes, bool(self.to_child))
            if master in writable or (self.to_child and not wlist):
                self._pump_input()
            if self.proc.poll() is not None:
                self._drain_output()
                return

    def _read_input(self) -> bytes | None:
        try:
            data = os.read(self.in_fd, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None
        return data or None

    def _pump_output(self, feeder: _PasteFeeder | None) -> bool:
        assert self.master is not None
        try:
            data = os.read(self.master, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            if exc.errno == errno.EIO:  # Linux's EOF on a pty master
                return False
            raise
        if not data:
            return False
        self._emit(data)
        if feeder is not None:
            feeder.on_output(time.monotonic(), data)
        return True

    def _drain_output(self) -> None:
        if self.master is None:
            return
        for _ in range(64):  # bounded: a leftover process may keep printing
            try:
                data = os.read(self.master, _READ_CHUNK)
            except OSError:
                return
            if not data:
                return
            self._emit(data)

    def _emit(self, data: bytes) -> None:
        _write_all(self.out_fd, data)
        self.modes.feed(data)
        self.captured += data
        limit = self.capture_bytes
        if limit and len(self.captured) > 2 * limit:  # trimmed in steps, not on every read
            del self.captured[: len(self.captured) - limit]

    def _pump_input(self) -> None:
        assert self.master is not None
        try:
            n = os.write(self.master, self.to_child[:_READ_CHUNK])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                self.to_child.clear()
                return
            raise
        del self.to_child[:n]

    def _sync_winsize(self) -> None:
        """Copy the user's window size to the pty when it changed (the kernel then sends SIGWINCH to the
        CLI). Checked on every wake-up, so a resize is never lost even without a SIGWINCH handler."""
        size = _winsize(self.out_fd) or _winsize(self.in_fd)
        if size and size != self._winsize and self.master is not None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
            self._winsize = size
