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


def clip_sentences(text: str, n: int = 240) -> str:
    """Like ``clip``, but a long text is cut after its last whole sentence that fits (a CLI's limit message
    read to the middle of a word helps nobody).

    >>> clip_sentences("You hit your limit. Upgrade to Pro or try again at 5pm. More text here.", 60)
    'You hit your limit. Upgrade to Pro or try again at 5pm.'
    """
    one = " ".join(text.split())
    if len(one) <= n:
        return one
    head = one[:n]
    end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    return head[: end + 1] if end >= n // 3 else clip(one, n)


_LIMIT_NAMES = {
    "session": "session limit",
    "weekly": "weekly limit",
    "usage": "usage limit",
    "rate": "rate limit",
    "credits": "credit limit",
}


def limit_name(kind: str | None) -> str:
    """``session limit``, ``weekly limit``, ``rate limit``... for a ``UsageLimit.kind`` (never "usage usage limit").

    >>> limit_name("usage"), limit_name("rate"), limit_name(None)
    ('usage limit', 'rate limit', 'usage limit')
    """
    return _LIMIT_NAMES.get(kind or "usage", f"{kind} limit")
