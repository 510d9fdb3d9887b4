"""The user's terminal: the signal guard, and the terminal modes a TUI switches on (so that caw can switch off
what a crashed one left on)."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


# ---- signals -------------------------------------------------------------------------------------------
class _Terminated(BaseException):
    """Raised by caw's temporary SIGTERM/SIGHUP handler so every ``finally`` on the way out runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_Handler = Callable[[int, FrameType | None], Any] | int | None


class _SignalGuard:
    """While installed: SIGTERM/SIGHUP unwind caw (raising ``_Terminated`` once) instead of killing it with
    the terminal raw, and SIGWINCH wakes the bridge through a pipe. Inactive outside the main thread
    (Python allows handlers only there); the bridge then polls the window size instead."""

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.received: int | None = None
        #: set while cleaning up: a signal is then only recorded, so it cannot cut the cleanup short
        self.deferred = False
        self._previous: dict[int, _Handler] = {}

    def install(self) -> None:
        if not self.active:
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._on_terminate)
        self._previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._on_winch)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        for fd in (self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.wake_r, 512):
                pass

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"x")

    def _on_winch(self, signum: int, frame: FrameType | None) -> None:
        self._wake()

    def _on_terminate(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signum
        self._wake()
        if first and not self.deferred:
            raise _Terminated(signum)


class _FdWriter:
    """A tiny text writer on a file descriptor (the picker draws on the terminal caw bridges)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        _write_all(self.fd, text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        return None


# ---- terminal modes ------------------------------------------------------------------------------------
_DEC_MODE = re.compile(rb"\x1b\[\?([0-9;]+)([hl])")
_KITTY_PUSH = re.compile(rb"\x1b\[>[0-9]*u")
_KITTY_POP = re.compile(rb"\x1b\[<([0-9]*)u")
_MODIFY_KEYS = re.compile(rb"\x1b\[>4(?:;([0-9]+))?m")
_CSI_END = re.compile(rb"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
# DEC private modes a TUI switches on and must switch off again: alt screen, mouse, focus, paste...
_TRACKED = {1, 47, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 1016, 1047, 1049, 2004, 2027, 2031}
_ALT_SCREENS = (1049, 1047, 47)


class TerminalModes:
    """Follows the terminal modes the CLI switches in its output, so caw can switch off what a crashed
    CLI left on (alternate screen, mouse reporting, bracketed paste, hidden cursor, keyboard protocols).

    >>> m = TerminalModes(); m.feed(b"\\x1b[?1049h\\x1b[?25l"); m.reset_sequence()
    b'\\x1b[?1049l\\x1b[?25h'
    """

    def __init__(self) -> None:
        self.modes: dict[int, bool] = {}
        self.cursor_hidden = False
        self.kitty_depth = 0
        self.modify_keys = False
        self._tail = b""

    @property
    def bracketed_paste(self) -> bool:
        return self.modes.get(2004, False)

    def feed(self, data: bytes) -> None:
        buf = self._tail + data
        cut = buf.rfind(b"\x1b")
        if cut != -1 and len(buf) - cut < 32 and not _complete_escape(buf[cut:]):
            buf, self._tail = buf[:cut], buf[cut:]  # a sequence split across reads: finish it next time
        else:
            self._tail = b""
        for match in _DEC_MODE.finditer(buf):
            on = match.group(2) == b"h"
            for part in match.group(1).split(b";"):
                if not part.isdigit():
                    continue
                mode = int(part)
                if mode == 25:
                    self.cursor_hidden = not on
                elif mode in _TRACKED:
                    self.modes[mode] = on
        self.kitty_depth += len(_KITTY_PUSH.findall(buf))
        for match in _KITTY_POP.finditer(buf):
            self.kitty_depth = max(0, self.kitty_depth - int(match.group(1) or b"1"))
        for match in _MODIFY_KEYS.finditer(buf):
            self.modify_keys = bool(match.group(1)) and match.group(1) != b"0"

    def reset_sequence(self) -> bytes:
        out = b""
        for mode in _ALT_SCREENS:  # leave the alternate screen first: the rest applies to the main one
            if self.modes.get(mode):
                out += b"\x1b[?%dl" % mode
        for mode, on in sorted(self.modes.items()):
            if on and mode not in _ALT_SCREENS:
                out += b"\x1b[?%dl" % mode
        if self.kitty_depth:
            out += b"\x1b[<%du" % self.kitty_depth
        if self.modify_keys:
            out += b"\x1b[>4m"
        if self.cursor_hidden:
            out += b"\x1b[?25h"
        return out


def _complete_escape(seq: bytes) -> bool:
    if len(seq) < 2:
        return False
    if seq[1:2] != b"[":
        return True  # not a CSI: nothing caw tracks
    return _CSI_END.match(seq) is not None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        except InterruptedError:
            continue
        view = view[n:]
