"""The pty bridge: copies bytes both ways, forwards resizes, pastes a long initial prompt, and stops the CLI
on every way out.

ptyprocess owns the child's pty (fork onto a new pty in a session of its own, window size, exit status);
caw reads and writes its ``fd`` in one ``select`` loop, because relaying a UI needs both directions at once
with no buffering delay. pexpect's searcher finds the ``ready`` text of a UI in that output stream.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import termios
import time
import tty
import uuid
from dataclasses import dataclass
from typing import Any

import ptyprocess  # type: ignore[import-untyped]
from pexpect.expect import searcher_string  # type: ignore[import-untyped]

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

# the CLI gets this long to exit on its own after SIGTERM before its process group is SIGKILLed
_STOP_GRACE_S = 1.5

# waiting for an exit without a pidfd (kernels before 5.3): how often to look
_EXIT_POLL_S = 0.05

# the window size a CLI gets when the user's terminal reports none (ptyprocess's default too)
_DEFAULT_SIZE = (24, 80)


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
        # pexpect's incremental search (what its expect() runs on every read): the fresh bytes plus the
        # end of the previous read, so a ready text split across reads is found; None once it was seen
        self._ready: Any = searcher_string([ready]) if ready else None
        self._lookback = b""

    def on_output(self, now: float, data: bytes = b"") -> None:
        self._last_output = now
        self._saw_output = True
        if self._ready is not None and data:
            window = self._lookback + data
            if self._ready.search(window, len(data)) >= 0:
                self._ready = None
            else:
                self._lookback = window[-self._ready.longest_string :]

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
            ready = modes.bracketed_paste and self._ready is None and self._saw_output and quiet
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
def _window_size(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the user's terminal, None when ``fd`` reports no size."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return (size.lines, size.columns) if size.lines and size.columns else None


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
        #: the CLI (a ptyprocess.PtyProcess); caw reads its ``fd`` itself and never calls its read(), after
        #: which ptyprocess's isalive() would block in waitpid
        self.proc: Any = None
        self.pidfd: int | None = None
        self._eof = False  # every writer closed the pty
        self._winsize: tuple[int, int] | None = None

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
        env = {**os.environ, **self.command.env}
        reaper.mark(env, self.run_id)
        cwd = self.command.cwd
        parent = os.getpid()

        def child_setup() -> None:
            # on the new pty, which ptyprocess made the controlling terminal of a session of its own (job
            # control, ^C and SIGWINCH reach the CLI's process group and not caw), just before exec
            # SIGPIPE and SIGXFSZ: Python ignores them and exec keeps that (subprocess's restore_signals undid
            # it); the others: caw's own handlers, for the moment before exec
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH):
                signal.signal(sig, signal.SIG_DFL)
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSANOW, attrs)  # the user's own settings, as in a plain terminal
            if cwd:
                os.chdir(cwd)  # here, not spawn(cwd=): ptyprocess's chdir fails outside its error pipe
            reaper.die_with_parent(parent)

        self._winsize = _window_size(self.out_fd) or _window_size(self.in_fd)
        try:
            self.proc = ptyprocess.PtyProcess.spawn(
                list(self.command.argv), env=env, dimensions=self._winsize or _DEFAULT_SIZE, preexec_fn=child_setup
            )
        except OSError as exc:  # found, but exec failed (bad interpreter, no permission, a missing cwd)
            reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
            hint = f"it cannot be started: {reason}"
            raise ProviderNotInstalled(self.command.provider, self.command.argv[0], hint) from exc
        os.set_blocking(self.proc.fd, False)
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(self.proc.pid)

    def _alive(self) -> bool:
        try:
            return bool(self.proc.isalive())
        except ptyprocess.PtyProcessError:  # reaped elsewhere (kill_tree reaps what it kills)
            return False

    def _returncode(self) -> int | None:
        """Like subprocess's: the exit status, -N when killed by signal N, None while it runs."""
        if self._alive():
            return None
        if self.proc.signalstatus is not None:
            return -int(self.proc.signalstatus)
        status = self.proc.exitstatus
        return None if status is None else int(status)

    def _finish(self) -> int | None:
        """After the loop: the CLI's exit status (it is given a moment when only its output ended)."""
        return self._returncode() if self._wait_exit(_STOP_GRACE_S) else None

    def _wait_exit(self, timeout: float) -> bool:
        """Whether the CLI exited within ``timeout``. Reads its output meanwhile: a CLI blocked on a full pty
        would never exit."""
        deadline = time.monotonic() + timeout
        while self._alive():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            rlist = [] if self._eof else [self.proc.fd]
            if self.pidfd is not None:
                rlist.append(self.pidfd)
            else:
                left = min(left, _EXIT_POLL_S)
            try:
                readable, _, _ = select.select(rlist, [], [], left)
            except InterruptedError:
                continue
            if self.proc.fd in readable and not self._pump_output(None):
                self._eof = True
        return True

    def _stop(self) -> None:
        """Stop the CLI if it still runs (SIGTERM, SIGKILL after a grace), then SIGKILL everything it started
        (found by the run marker)."""
        proc = self.proc
        if proc is not None and self._alive():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
            if not self._wait_exit(_STOP_GRACE_S):
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                self._wait_exit(1.0)  # reaped here, so that ptyprocess keeps its exit status
        # by marker too: a signal may have cut _spawn short after the fork, before self.proc was set
        reaper.kill_tree(proc.pid if proc is not None else None, self.run_id)
        if proc is not None:
            self._drain_output()
            proc.delayafterclose = 0.0  # ptyprocess sleeps this long before it looks at the child again
            with contextlib.suppress(OSError, ptyprocess.PtyProcessError):
                proc.close(force=True)
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None

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
        assert self.proc is not None
        master = self.proc.fd
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
                self._eof = True
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
            if (self.pidfd is None or self.pidfd in readable) and not self._alive():
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
        try:
            data = os.read(self.proc.fd, _READ_CHUNK)
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
        if self._eof:
            return
        for _ in range(64):  # bounded: a leftover process may keep printing
            try:
                data = os.read(self.proc.fd, _READ_CHUNK)
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
        try:
            n = os.write(self.proc.fd, self.to_child[:_READ_CHUNK])
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
        size = _window_size(self.out_fd) or _window_size(self.in_fd)
        if size and size != self._winsize:
            with contextlib.suppress(OSError):
                self.proc.setwinsize(*size)
            self._winsize = size
