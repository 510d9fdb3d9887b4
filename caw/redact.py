"""Secret redaction for everything caw writes or prints: a ``Redactor`` masks known secret values and
high-specificity key patterns (issue 17.4). Stdlib only, rank 0.

>>> r = Redactor(["hunter2-hunter2"])
>>> r("key=hunter2-hunter2 and AKIAABCDEFGHIJKLMNOP")
'key=[REDACTED] and [REDACTED]'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"
#: values shorter than this are not masked: "1", "true" or a short word would wreck unrelated text
MIN_SECRET_LEN = 8

#: key formats specific enough to mask wherever they appear
PATTERNS: tuple[str, ...] = (
    r"sk-ant-[A-Za-z0-9_\-]{16,}",
    r"sk-[A-Za-z0-9_\-]{20,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
    r"\bAIza[0-9A-Za-z_\-]{35}",
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
)


class Redactor:
    """``redactor(text)``: ``text`` with every known secret value and key pattern replaced by ``[REDACTED]``.

    ``values`` are the secrets themselves (shorter than ``MIN_SECRET_LEN`` are ignored); their JSON-escaped
    forms are masked too, so serialized JSON can be redacted as text. ``enabled=False`` passes text through.
    """

    def __init__(self, values: Iterable[str] = (), *, enabled: bool = True) -> None:
        self.enabled = enabled
        found = {v for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_LEN}
        escaped = {json.dumps(v, ensure_ascii=False)[1:-1] for v in found} | {json.dumps(v)[1:-1] for v in found}
        literals = sorted(found | escaped, key=len, reverse=True)  # longest first: no partial masks
        alternatives = [re.escape(v) for v in literals] + list(PATTERNS)
        self._pattern = re.compile("|".join(alternatives))

    def __call__(self, text: str) -> str:
        if not self.enabled or not text:
            return text
        return self._pattern.sub(MASK, text)

    @classmethod
    def from_env(
        cls, names: Iterable[str], env: Mapping[str, str], *, values: Iterable[str] = (), enabled: bool = True
    ) -> Redactor:
        """A redactor for the values of the variables ``names`` in ``env``, plus ``values``."""
        return cls([*(env.get(n) or "" for n in names), *values], enabled=enabled)


#: passes everything through (``Agent(redact=False)``, ``CAW_REDACT=0``)
NO_REDACTION = Redactor(enabled=False)

__all__ = ["MASK", "MIN_SECRET_LEN", "NO_REDACTION", "PATTERNS", "Redactor"]
