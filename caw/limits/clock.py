"""Clock times and instants: the absolute resets a CLI prints, read relative to ``now`` where parts are missing.

Owns epochs (``reset_from_epoch``, Claude's ``limit reached|<epoch>``), keyed stamps (``resets_at``,
``resetsAt``, ``unified-reset``, ``next=``: epoch or ISO), and dates and clock times after a reset word
("resets Feb 20, 5pm (Africa/Libreville)", "try again at 2:01 AM", "03:31 on 5 Feb", "Fri 2:00 PM").
A time without a date is the next such time (Codex's ``try again at`` is today); a date without a
year the next such date. See ``docs/dev/limits-notes.md`` for the decisions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from caw.limits.zones import UTC, parse_zone, zone_from_name

__all__ = ["reset_from_clock", "reset_from_epoch", "reset_from_keys", "resets_from_clock"]

_I = re.IGNORECASE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reset_from_epoch(value: float | int | str) -> datetime | None:
    """Epoch seconds (milliseconds when above 1e12) -> aware UTC datetime; None for garbage.

    >>> reset_from_epoch(1795315950)
    datetime.datetime(2026, 11, 22, 2, 52, 30, tzinfo=datetime.timezone.utc)
    >>> reset_from_epoch("1795315950123").microsecond
    123000
    >>> reset_from_epoch("soon") is None
    True
    """
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    try:
        if seconds > 1e12:
            return _EPOCH + timedelta(milliseconds=seconds)
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return None


# "Claude AI usage limit reached|1795315950"
_PIPE_EPOCH_RE = re.compile(r"\blimit\s+reached\s*\|\s*(?P<val>\d{9,13})(?!\d)", _I)
_ISO_BODY = (
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<frac>\d{1,6})\d*)?)?)?"
    r"(?:\s*(?P<z>Z|UTC|[+-]\d{2}:?\d{2})\b)?"
)
_ISO_RE = re.compile(_ISO_BODY, _I)
_KEYED_RESET_RE = re.compile(
    r"\b(?:resets?_?at|reset_?time|unified-reset|next)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?P<epoch>\d{9,13}(?:\.\d+)?)(?![\d.])|(?P<iso>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})))",
    _I,
)
# A clock time is only read right after one of these words.
_ANCHOR_RE = re.compile(
    r"\b(?:(?P<same_day>(?:try|retry)\s+again\s+at)|(?:try|retry)(?:\s+again)?\s+(?:after|on)"
    r"|resets?(?:_?at)?|reset(?:ting)?\s+(?:at|on)|available\s+(?:again\s+)?(?:at|on|after)|until|next\s*[=:]"
    r"|(?:continues?|resumes?)\s+automatically)\b",
    _I,
)
_FILLER_RE = re.compile(r"[\s:=\"']*(?:(?:at|on|by|around|after)\b[\s:]*)*", _I)
_MONTH = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
_YEAR = r"(?:,?\s*(?P<year>\d{4})\b)?"
_MONTH_DAY_RE = re.compile(rf"{_MONTH}\s*(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b{_YEAR}", _I)
_DAY_MONTH_RE = re.compile(rf"(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}{_YEAR}", _I)
_WEEKDAY_RE = re.compile(r"(?P<wd>[a-z]{3,9})\.?,?\s+", _I)
# "resets tomorrow at 9am", "resets 9am tomorrow": a day counted from today in the zone that applies
_RELATIVE_DAY_RE = re.compile(r"(?P<rel>today|tonight|tomorrow)\b,?\s*", _I)
_RELATIVE_AFTER_RE = re.compile(r"\s*,?\s*(?P<rel>today|tonight|tomorrow)\b", _I)
_RELATIVE_DAYS = {"today": 0, "tonight": 0, "tomorrow": 1}
_DATE_TIME_SEP_RE = re.compile(r"(?:\s*,\s*|\s+)(?:at\s+|@\s*)?", _I)
_TIME_DATE_SEP_RE = re.compile(r"\s*,?\s*(?:on\s+)?", _I)
_TIME_RE = re.compile(
    r"(?P<h>\d{1,2})(?::(?P<mi>\d{2}))?(?::(?P<s>\d{2}))?\s*(?P<ap>[ap])\.?\s?m\b\.?"
    r"|(?P<h24>\d{1,2}):(?P<mi24>\d{2})(?::(?P<s24>\d{2}))?(?![\d:])"
    r"|(?P<word>noon|midnight)\b",
    _I,
)

_MONTHS = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}  # fmt: skip
_WEEKDAYS = {
    **{d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{d: i for i, d in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))},
    "tues": 1, "weds": 2, "thur": 3, "thurs": 3,
}  # fmt: skip


@dataclass(frozen=True)
class _When:
    """A point in time as printed: any part may be missing."""

    hour: int = 0
    minute: int = 0
    second: int = 0
    year: int | None = None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None
    zone: tzinfo | None = None
    exact: datetime | None = None  # an ISO stamp with an offset: nothing left to resolve
    days_ahead: int | None = None  # "today" 0, "tomorrow" 1


def _time_parts(m: re.Match[str]) -> tuple[int, int, int] | None:
    if m.group("word"):
        return (12, 0, 0) if m.group("word").lower() == "noon" else (0, 0, 0)
    if m.group("ap"):
        hour, minute, second = int(m.group("h")), int(m.group("mi") or 0), int(m.group("s") or 0)
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m.group("ap").lower() == "p" else 0)  # 12am is 0h, 12pm is 12h
    else:
        hour, minute, second = int(m.group("h24")), int(m.group("mi24")), int(m.group("s24") or 0)
        if hour > 23:
            return None
    if minute > 59 or second > 59:
        return None
    return hour, minute, second


def _iso_when(m: re.Match[str]) -> _When | None:
    try:
        frac = (m.group("frac") or "0").ljust(6, "0")
        naive = datetime(
            int(m.group("y")), int(m.group("mo")), int(m.group("d")),
            int(m.group("h") or 0), int(m.group("mi") or 0), int(m.group("s") or 0), int(frac),
        )  # fmt: skip
    except ValueError:
        return None
    if m.group("z") is None:
        return _When(naive.hour, naive.minute, naive.second, naive.year, naive.month, naive.day)
    zone = zone_from_name(m.group("z"))
    return _When(exact=naive.replace(tzinfo=zone or UTC))


def _parse_when(s: str, pos: int) -> _When | None:
    """Read a date and/or clock time (and zone) starting at ``pos``; None if there is none."""
    filler = _FILLER_RE.match(s, pos)  # matches the empty string too
    pos = filler.end() if filler else pos
    iso = _ISO_RE.match(s, pos)
    if iso:
        found = _iso_when(iso)
        if found is not None and found.exact is None:
            zone, _ = parse_zone(s, iso.end())  # "2026-12-05 15:00 (Europe/Paris)"
            return _When(found.hour, found.minute, found.second, found.year, found.month, found.day, zone=zone)
        return found
    weekday = None
    days_ahead = None
    rel = _RELATIVE_DAY_RE.match(s, pos)
    if rel:
        days_ahead = _RELATIVE_DAYS[rel.group("rel").lower()]
        filler = _FILLER_RE.match(s, rel.end())
        pos = filler.end() if filler else rel.end()
    wd = None if rel else _WEEKDAY_RE.match(s, pos)
    if wd and wd.group("wd").lower() in _WEEKDAYS:
        weekday, pos = _WEEKDAYS[wd.group("wd").lower()], wd.end()
        filler = _FILLER_RE.match(s, pos)  # "Monday at 9am"
        pos = filler.end() if filler else pos
    day = _MONTH_DAY_RE.match(s, pos) or _DAY_MONTH_RE.match(s, pos)
    clock = None
    if day:
        pos = day.end()
        sep = _DATE_TIME_SEP_RE.match(s, pos)
        clock = _TIME_RE.match(s, sep.end()) if sep else None
        if clock:
            pos = clock.end()
    else:
        clock = _TIME_RE.match(s, pos)
        if clock is None:
            return None
        pos = clock.end()
        sep = _TIME_DATE_SEP_RE.match(s, pos)
        after = sep.end() if sep else pos
        day = _MONTH_DAY_RE.match(s, after) or _DAY_MONTH_RE.match(s, after)  # "03:31 on 5 Feb"
        if day:
            pos = day.end()
        elif days_ahead is None and weekday is None:
            _, zone_end = parse_zone(s, pos)  # "9am (UTC) tomorrow"
            rel_after = _RELATIVE_AFTER_RE.match(s, zone_end)
            if rel_after:
                days_ahead = _RELATIVE_DAYS[rel_after.group("rel").lower()]
    hms = _time_parts(clock) if clock else (0, 0, 0)
    if hms is None:
        return None
    zone, _ = parse_zone(s, pos)
    if day is None:
        return _When(*hms, weekday=weekday, zone=zone, days_ahead=days_ahead)
    month = _MONTHS[day.group("mon")[:3].lower()]
    year = int(day.group("year")) if day.group("year") else None
    return _When(*hms, year=year, month=month, day=int(day.group("day")), zone=zone)


def _at(day: date, when: _When, zone: tzinfo, fold: int = 0) -> datetime | None:
    try:
        local = datetime(day.year, day.month, day.day, when.hour, when.minute, when.second, tzinfo=zone, fold=fold)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _next_date(year: int, month: int, day: int, today: date) -> date | None:
    """The first ``month``/``day`` on or after ``today`` (Feb 29 may be years away)."""
    for y in range(max(year, 1), min(year + 9, 10000)):
        try:
            candidate = date(y, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _resolve(when: _When, now: datetime, default_zone: tzinfo, *, same_day: bool) -> datetime | None:
    """Turn what was printed into an instant, reading missing parts relative to ``now``."""
    if when.exact is not None:
        return when.exact.astimezone(UTC)
    zone = when.zone or default_zone
    try:
        today = now.astimezone(zone).date()
    except (ValueError, OverflowError):
        return None
    if when.month is not None and when.day is not None:
        if when.year is not None:
            try:
                return _at(date(when.year, when.month, when.day), when, zone)
            except ValueError:
                return None
        found = _next_date(today.year, when.month, when.day, today)
        return _at(found, when, zone) if found else None
    if when.days_ahead is not None:
        try:
            return _at(today + timedelta(days=when.days_ahead), when, zone)
        except OverflowError:
            return None
    # A clock time alone is the next such time; a time equal to now's minute is now, not tomorrow.
    floor = now.replace(second=0, microsecond=0)
    if when.weekday is not None:
        first = (when.weekday - today.weekday()) % 7
        offsets = [first, first + 7]
    elif same_day:
        offsets = [0]  # codex prints a date for any other day, so its bare time is today
    else:
        offsets = [0, 1, 2]
    candidates = []
    for offset in offsets:
        try:
            day = today + timedelta(days=offset)
        except OverflowError:
            break
        for fold in (0, 1):  # a repeated hour on a DST fall-back night: take the first still ahead
            instant = _at(day, when, zone, fold)
            if instant is not None:
                candidates.append(instant)
    ahead = [c for c in candidates if c >= floor]
    if ahead:
        return ahead[0]
    return candidates[0] if same_day and candidates else None


def reset_from_clock(norm: str, now: datetime, zone: tzinfo) -> datetime | None:
    """The first date or clock time after a reset word in ``norm``, read in ``zone`` unless it names one.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc)
    >>> reset_from_clock("resets Feb 20, 5pm (Asia/Seoul)", now, timezone.utc).isoformat()
    '2027-02-20T08:00:00+00:00'
    >>> reset_from_clock("Try again at 12:30 AM.", now, timezone.utc).isoformat()
    '2026-11-22T00:30:00+00:00'
    """
    return next(resets_from_clock(norm, now, zone), None)


def resets_from_clock(norm: str, now: datetime, zone: tzinfo) -> Iterator[datetime]:
    """Every date or clock time after a reset word in ``norm``, in order (``reset_from_clock`` is the first).

    claude's team budget message prints two: the budget's own reset, then the plan window's
    ("… · resets Jan 1 · your 5-hour limit resets 5pm").
    """
    for anchor in _ANCHOR_RE.finditer(norm):
        when = _parse_when(norm, anchor.end())
        if when is not None:
            resolved = _resolve(when, now, zone, same_day=anchor.group("same_day") is not None)
            if resolved is not None:
                yield resolved


def reset_from_keys(norm: str) -> datetime | None:
    """A reset written as a keyed epoch or ISO stamp (``"resets_at":…``, ``next=…``, ``reached|<epoch>``).

    >>> reset_from_keys('{"resets_at":"2026-05-18T00:00:00.502Z"}').isoformat()
    '2026-05-18T00:00:00.502000+00:00'
    >>> reset_from_keys("Claude AI usage limit reached|1795315950").isoformat()
    '2026-11-22T02:52:30+00:00'
    """
    m = _KEYED_RESET_RE.search(norm)
    if m and m.group("epoch"):
        return reset_from_epoch(m.group("epoch"))
    if m and m.group("iso"):
        iso = _ISO_RE.fullmatch(m.group("iso"))
        when = _iso_when(iso) if iso else None
        if when is not None and when.exact is not None:
            return when.exact.astimezone(UTC)
    m = _PIPE_EPOCH_RE.search(norm)
    if m:
        return reset_from_epoch(m.group("val"))
    return None
