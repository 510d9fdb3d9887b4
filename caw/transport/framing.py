"""Turns the raw bytes a CLI writes to its pty into lines.

Handles what a pseudo-terminal and the CLIs do to a JSON stream: ``\\r\\n`` endings (tty ONLCR), ANSI
sequences (claude appends a terminal reset with no newline at exit), partial lines split across reads,
invalid UTF-8 (replaced, never an exception) and lines of any size (scanning only new bytes for the
newline, so a 10 MB line costs O(n), not O(n²)).
"""

from __future__ import annotations

from caw.text import strip_ansi


class LineFramer:
    """Incremental splitter: ``feed`` bytes, get complete decoded lines; ``flush`` returns the rest."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        if b"\n" not in data:
            self._buf += data
            return []
        parts = data.split(b"\n")
        rest = parts.pop()
        lines: list[str] = []
        if self._buf:
            # a line that spans reads: decode straight from the buffer (no bytes copy of a huge line) and
            # let the buffer go before the next line is decoded, so one line is never held three times
            self._buf += parts[0]
            lines.append(_decode(self._buf))
            self._buf = bytearray()
            del parts[0]
        lines.extend(_decode(p) for p in parts)
        self._buf = bytearray(rest)
        return lines

    def flush(self) -> list[str]:
        if not self._buf:
            return []
        rest = _decode(self._buf)
        self._buf = bytearray()
        return [rest]


def _decode(raw: bytes | bytearray) -> str:
    line = raw.decode("utf-8", "replace")
    if line.endswith("\r"):
        line = line.rstrip("\r")
    return line


def clean_line(line: str) -> str:
    """A line as it should be parsed: JSON lines untouched, anything else without terminal noise."""
    if line.startswith("{"):
        return line
    return strip_ansi(line).strip()
