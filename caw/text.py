"""Text helpers every layer may use (standard library only): terminal-noise stripping and one-line clipping."""

from __future__ import annotations

import re

# CSI ... final byte; OSC ... BEL/ST; charset selection ESC ( B; two-byte ESC sequences; C0 controls but \t
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[()*+][0-~]"
    r"|\x1b[ -/]*[0-~]"
    r"|[\x00-\x08\x0b-\x1f\x7f]"
)


def strip_ansi(text: str) -> str:
    """Remove terminal control sequences and control characters (but tabs) from ``text``.

    >>> strip_ansi("\\x1b[31mred\\x1b[0m")
    'red'
    """
    return _ANSI.sub("", text)


def clip(text: str, n: int = 80) -> str:
    """One line of at most ``n`` characters (whitespace collapsed, ``…`` when cut).

    >>> clip("a   b\\nc", 80), clip("abcdef", 4)
    ('a b c', 'abc…')
    """
    one = " ".join(text.split())
    return one if len(one) <= n else one[: max(0, n - 1)] + "…"


def last_meaningful_line(text: str) -> str:
    """The last non-empty line of a CLI's stderr, without terminal codes (for one-line error messages)."""
    for line in reversed(text.splitlines()):
        clean = strip_ansi(line).strip()
        if clean:
            return clean
    return ""
