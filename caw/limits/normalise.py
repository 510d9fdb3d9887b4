"""Normalising a CLI's text before anything reads it: one spelling for what CLIs print many ways.

Owns the clean-up: ANSI escapes stripped, ``\\uXXXX`` escapes of raw error JSON decoded, curly
apostrophes made straight, the separators ``∙ • ⋅`` made ``·``, and every run of Unicode space
(ICU's narrow no-break space included) or escaped ``\\n``/``\\t`` made one space.
"""

from __future__ import annotations

import re

__all__ = ["normalise"]

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)")
# Error JSON captured raw still carries "\u00b7" / "\u2019" escapes.
_JSON_ESCAPE_RE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SPACE_RE = re.compile(r"(?:\s|\\[nrt])+")
_CHAR_MAP = str.maketrans(
    {
        "\u2019": "'",  # codex prints "You’ve"
        "\u2018": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "\u00b7": "·",
        "\u2219": "·",  # old claude "5-hour limit reached ∙ resets 5am"
        "\u2022": "·",
        "\u22c5": "·",
        "\u2013": "—",
        "\u2212": "-",
    }
)


def normalise(text: str) -> str:
    """The text with escapes, apostrophes, separators and spaces in one spelling each.

    >>> normalise("\\x1b[31mYou\\u2019ve hit your limit \\u2219 resets 7\\u202fPM\\x1b[0m\\n")
    "You've hit your limit · resets 7 PM"
    """
    text = _ANSI_RE.sub("", text)
    text = _JSON_ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)
    # Node's ICU writes "7\u202fPM" (narrow no-break space): \s covers every Unicode space.
    return _SPACE_RE.sub(" ", text.translate(_CHAR_MAP)).strip()
