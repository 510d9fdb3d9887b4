"""The provider menu of ``caw chat --pick`` / ``Agent.interactive(select_provider=True)``.

Drawn with plain ANSI on the terminal caw is about to hand to the chosen CLI, a few lines, no alternate
screen. One row per installed provider in the configured order, each with its version and a health hint
(a remembered usage limit, or no sign of a login). Everything shown is local and cheap: versions come from
``<cli> --version`` run in parallel while the menu is already up; nothing touches the network.

Keys: Up/Down or k/j move, Enter starts the highlighted CLI, Esc, q or Ctrl-C cancel (``None``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import termios
import threading
import tty
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from caw.errors import ConfigurationError, ProviderNotInstalled
from caw.session.candidate import Candidate
from caw.state.ledger import Cooldown, CooldownStore

# after a lone ESC, how long to wait for the rest of an arrow key's escape sequence
_ESC_WAIT_S = 0.05
# while versions are still coming in, how often the menu looks at them
_REFRESH_S = 0.05

UP, DOWN, ENTER, CANCEL = "up", "down", "enter", "cancel"
_KEYS: dict[bytes, str] = {
    b"\x1b[A": UP,
    b"\x1bOA": UP,
    b"k": UP,
    b"\x1b[B": DOWN,
    b"\x1bOB": DOWN,
    b"j": DOWN,
    b"\r": ENTER,
    b"\n": ENTER,
    b"\x1b": CANCEL,
    b"q": CANCEL,
    b"\x03": CANCEL,  # Ctrl-C arrives as a byte: the terminal is raw
    b"\x04": CANCEL,
}


class Output(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


@dataclass
class _Row:
    candidate: Candidate
    hint: str
    version: Future[str | None] | None = None
    shown_version: str = field(default="…")

    @property
    def name(self) -> str:
        return self.candidate.provider.name


def health_hint(candidate: Candidate, cooldowns: Mapping[str, Cooldown], now: datetime | None = None) -> str:
    """A few words on whether the provider looks usable: a remembered usage limit, or no sign of a login.

    >>> from caw.providers import get_provider
    >>> from caw.providers.base import RunConfig
    >>> health_hint(Candidate(get_provider("claude"), RunConfig(env={"ANTHROPIC_API_KEY": "x"})), {})
    'ready'
    """
    name = candidate.provider.name
    cooldown = cooldowns.get(name)
    if cooldown is not None:
        local = cooldown.until.astimezone()
        today = (now or datetime.now().astimezone()).date()
        when = local.strftime("%H:%M") if local.date() == today else local.strftime("%b %d %H:%M")
        return f"cooling down until {when}"
    if candidate.provider.credential_signal({**os.environ, **candidate.config.env}) is None:
        return "no credentials found"
    return "ready"


def read_keys(fd: int) -> list[str]:
    """The menu keys in what the terminal sent (unknown keys dropped). Blocks until something arrives."""
    data = os.read(fd, 256)
    if data == b"\x1b" and select.select([fd], [], [], _ESC_WAIT_S)[0]:
        data += os.read(fd, 256)  # the rest of an arrow key's escape sequence, split across reads
    return parse_keys(data)


def parse_keys(data: bytes) -> list[str]:
    """``parse_keys(b"\\x1b[Bj\\r") == ["down", "down", "enter"]``; a lone ESC cancels."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data[i : i + 1] == b"\x1b" and i + 1 < len(data) and data[i + 1 : i + 2] in (b"[", b"O"):
            end = i + 2
            while end < len(data) and not 0x40 <= data[end] <= 0x7E:
                end += 1
            seq = data[i : end + 1]
            i = end + 1
        else:
            seq = data[i : i + 1]
            i += 1
        key = _KEYS.get(seq)
        if key is not None:
            keys.append(key)
    return keys


def pick_provider(candidates: Sequence[Candidate], *, input_fd: int, output: Output) -> Candidate | None:
    """Show the menu and return the chosen candidate, or None when the user cancelled.

    Only installed candidates are listed, in the given order. Raises ``ConfigurationError`` when
    ``input_fd`` is not a terminal and ``ProviderNotInstalled`` when none is installed.
    """
    if not os.isatty(input_fd):
        raise ConfigurationError("the provider menu needs a terminal, and its input is not one")
    installed = [c for c in candidates if c.installed()]
    if not installed:
        first = candidates[0].provider if candidates else None
        raise ProviderNotInstalled(first.name if first else "caw", first.binary_name if first else "any agent CLI")
    try:
        cooldowns = CooldownStore.default().active()
    except OSError:
        cooldowns = {}
    rows = [_Row(c, health_hint(c, cooldowns)) for c in installed]
    menu = _Menu(rows, output, _columns(input_fd))
    saved = termios.tcgetattr(input_fd)
    try:
        for row in rows:
            binary = row.candidate.binary()
            if binary is not None:
                row.version = _probe_version(row.candidate, binary)
        tty.setraw(input_fd, termios.TCSANOW)
        menu.draw()
        while True:
            waiting = any(r.version is not None and r.shown_version == "…" for r in rows)
            try:
                ready, _, _ = select.select([input_fd], [], [], _REFRESH_S if waiting else None)
            except InterruptedError:
                continue
            if waiting and menu.refresh_versions():
                menu.draw()
            if not ready:
                continue
            for key in read_keys(input_fd):
                if key == CANCEL:
                    return None
                if key == ENTER:
                    return rows[menu.selected].candidate
                menu.move(-1 if key == UP else 1)
            menu.draw()
    finally:
        menu.erase()
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(input_fd, termios.TCSADRAIN, saved)


def _probe_version(candidate: Candidate, binary: str) -> Future[str | None]:
    """``<cli> --version`` on a daemon thread. Not a ThreadPoolExecutor: Python joins its workers at exit, so
    Esc would wait for the slowest CLI to answer (seconds for a cold npm install) before caw could exit."""
    future: Future[str | None] = Future()
    env = {**os.environ, **candidate.config.env}

    def probe() -> None:
        try:
            future.set_result(candidate.provider.version(binary, env))
        except Exception as exc:
            future.set_exception(exc)

    threading.Thread(target=probe, name="caw-version", daemon=True).start()
    return future


def _columns(fd: int) -> int:
    try:
        cols = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[1]
    except OSError:
        cols = 0
    return cols or 80


class _Menu:
    """Draws the rows in place: each redraw goes back up over the previous one and clears below."""

    TITLE = "caw: choose an agent   ↑/↓ move · Enter start · Esc cancel"

    def __init__(self, rows: list[_Row], output: Output, columns: int) -> None:
        self.rows = rows
        self.output = output
        self.columns = columns
        self.selected = 0
        self._drawn = 0
        self._cursor_hidden = False

    def move(self, step: int) -> None:
        self.selected = (self.selected + step) % len(self.rows)

    def refresh_versions(self) -> bool:
        changed = False
        for row in self.rows:
            if row.version is not None and row.version.done() and row.shown_version == "…":
                try:
                    row.shown_version = row.version.result() or "version unknown"
                except Exception:
                    row.shown_version = "version unknown"
                changed = True
        return changed

    def lines(self) -> list[str]:
        name_w = max(len(r.name) for r in self.rows)
        version_w = max(len(r.shown_version) for r in self.rows)
        out = [self._fit(self.TITLE, "\x1b[1m")]
        for index, row in enumerate(self.rows):
            text = f"{'>' if index == self.selected else ' '} {row.name:<{name_w}}  "
            text += f"{row.shown_version:<{version_w}}  {row.hint}"
            out.append(self._fit(text, "\x1b[7m" if index == self.selected else ""))
        return out

    def _fit(self, text: str, style: str) -> str:
        # never wider than the terminal: a wrapped line would break the redraw arithmetic
        text = text[: max(1, self.columns - 1)]
        return f"{style}{text}\x1b[0m" if style else text

    def draw(self) -> None:
        lines = self.lines()
        # raw mode: no output post-processing, so every line ends in an explicit \r\n
        text = self._back() + ("" if self._cursor_hidden else "\x1b[?25l")
        text += "".join(line + "\x1b[K\r\n" for line in lines)
        # recorded before writing: a signal may cut the write short, and erase() must still clean up
        self._cursor_hidden = True
        self._drawn = len(lines)
        self.output.write(text)
        self.output.flush()

    def erase(self) -> None:
        if self._drawn or self._cursor_hidden:
            self.output.write(self._back() + "\x1b[?25h")
            self.output.flush()
            self._drawn = 0
            self._cursor_hidden = False

    def _back(self) -> str:
        return f"\x1b[{self._drawn}A\r\x1b[J" if self._drawn else ""


__all__ = ["health_hint", "parse_keys", "pick_provider"]
