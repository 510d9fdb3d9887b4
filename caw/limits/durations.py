"""Durations: how long to wait, as a CLI or a server's header says it.

Owns the relative resets: ``retry-after``/``retry-after-ms`` headers and JSON keys (the ms one wins),
a ``retry-after`` HTTP date, Gemini's ``retryDelay``, and the phrases after a reset or retry word
("try again in 1h30m", "[retrying in 8h12m]", "wait 60 seconds"). A duration elsewhere in the text
("after 3 hours of use") is not a reset.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from caw.limits.zones import UTC

__all__ = ["reset_from_duration"]

_I = re.IGNORECASE
_UNIT = r"(?:milliseconds?|msecs?|ms|weeks?|wks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)"
_DURATION_PART = rf"(?:\d+(?:\.\d+)?\s*|(?:an?|one)\s+){_UNIT}(?![a-z])"
_DURATION_PART_RE = re.compile(rf"(?P<num>\d+(?:\.\d+)?|an?|one)\s*(?P<unit>{_UNIT})(?![a-z])", _I)
# Only durations attached to a reset/retry word: "after 3 hours of use" is not a reset.
_DURATION_RE = re.compile(
    r"\b(?:(?:resets?|again|retry(?:ing)?|available|refills?|back)\s+(?:in|after|within)"
    r"|wait(?:ing)?(?:\s+for)?|cool(?:ing)?\s*down(?:\s+for)?)"
    r"\s+(?:about\s+|approximately\s+|approx\.?\s+|around\s+|~\s*)?"
    rf"(?P<dur>{_DURATION_PART}(?:[\s,]*(?:and\s+)?{_DURATION_PART})*)",
    _I,
)
_UNIT_SECONDS = {"ms": 0.001, "w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
# Header / JSON keys: opencode's error event carries the server's retry-after headers.
_KEYED_DURATION_RES = (
    re.compile(r"\bretry[-_]?after[-_]?ms[\"']?\s*[:=]\s*[\"']?(?P<num>\d+(?:\.\d+)?)(?![\w.])", _I),
    re.compile(r"\b(?:retry[-_]?after|resets?_in_seconds)[\"']?\s*[:=]\s*[\"']?(?P<num>\d+(?:\.\d+)?)(?![\w.])", _I),
    re.compile(r"\bretry_?delay[\"']?\s*[:=]\s*[\"']?(?P<num>\d+(?:\.\d+)?)s\b", _I),  # Gemini "37s"
)
_RETRY_AFTER_DATE_RE = re.compile(
    r"\bretry[-_]?after[\"']?\s*[:=]\s*[\"']?(?P<date>[a-z]{3},\s*\d{1,2}\s+[a-z]{3}\s+\d{4}\s+\d{2}:\d{2}:\d{2}\s*GMT)",
    _I,
)


def _unit_seconds(unit: str) -> float:
    unit = unit.lower()
    if unit.startswith(("ms", "msec", "milli")):
        return _UNIT_SECONDS["ms"]
    if unit.startswith("wk"):
        return _UNIT_SECONDS["w"]
    return _UNIT_SECONDS[unit[0]]


def _duration_seconds(phrase: str) -> float:
    total = 0.0
    for part in _DURATION_PART_RE.finditer(phrase):
        num = part.group("num").lower()
        count = 1.0 if num in ("a", "an", "one") else float(num)
        total += count * _unit_seconds(part.group("unit"))
    return total


def _after(now: datetime, seconds: float) -> datetime | None:
    """``now`` plus ``seconds``; None when that overflows."""
    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:
        return None


def reset_from_duration(norm: str, now: datetime) -> datetime | None:
    """The reset a duration in ``norm`` (normalised text) names, counted from ``now``; None if there is none.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc)
    >>> reset_from_duration("Rate limited. Try again in 1h30m.", now).isoformat()
    '2026-11-22T02:30:00+00:00'
    >>> reset_from_duration('{"retry-after":"120","retry-after-ms":"500"}', now).isoformat()
    '2026-11-22T01:00:00.500000+00:00'
    >>> reset_from_duration("after 3 hours of use", now) is None
    True
    """
    for index, keyed in enumerate(_KEYED_DURATION_RES):
        m = keyed.search(norm)
        if m:
            scale = 0.001 if index == 0 else 1.0
            return _after(now, float(m.group("num")) * scale)
    m = _RETRY_AFTER_DATE_RE.search(norm)
    if m:
        try:
            return parsedate_to_datetime(m.group("date")).astimezone(UTC)
        except (TypeError, ValueError, OverflowError):
            pass
    m = _DURATION_RE.search(norm)
    if m:
        return _after(now, _duration_seconds(m.group("dur")))
    return None
