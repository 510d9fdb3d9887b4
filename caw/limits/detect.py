"""Reading usage-limit and rate-limit messages of the agent CLIs as text.

This module owns one job: given the text a CLI printed for a failed turn (an error
event, a ``result`` line, stderr), say whether it is a limit, which kind, whether
waiting helps, and when the limit resets. Structured signals (Claude's
``rate_limit_event.resetsAt``, Codex's ``resets_at``) are read by the provider
parsers; this is the fallback for everything else, so it generalises over the
*forms* of the messages (see ``docs/dev/limits-notes.md``) rather than exact strings.

The pipeline is ``normalise -> classify -> extract the reset``, and the reset is
looked for in order of trust: keyed epochs / ISO stamps, then durations
("try again in 1.5s", "[retrying in 8h12m]"), then a clock time after a reset word
("resets Feb 20, 5pm (Africa/Libreville)", "try again at 2:01 AM").
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["UsageLimit", "detect_limit", "reset_from_epoch"]

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_KINDS = frozenset({"session", "weekly", "usage", "rate", "credits"})


class UsageLimit(BaseModel):
    """A usage or rate limit read from a CLI's text.

    ``kind`` is one of ``session`` (5-hour window), ``weekly`` (7-day / Opus weekly),
    ``usage`` (a plan limit of unknown window), ``rate`` (requests-per-minute style,
    HTTP 429) or ``credits`` (money: never waitable). ``resets_at`` is an aware UTC
    datetime, or None when the text gives no time.
    """

    model_config = ConfigDict(frozen=True)

    message: str
    resets_at: datetime | None
    waitable: bool
    kind: str
    provider: str | None = None

    @field_validator("resets_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, not {value!r}")
        return value


# --------------------------------------------------------------------------- normalise

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


def _normalise(text: str) -> str:
    text = _ANSI_RE.sub("", text)
    text = _JSON_ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)
    # Node's ICU writes "7\u202fPM" (narrow no-break space): \s covers every Unicode space.
    return _SPACE_RE.sub(" ", text.translate(_CHAR_MAP)).strip()


# --------------------------------------------------------------------------- classify

_I = re.IGNORECASE

# Removed before classifying: header and event names that say "rate limit" on every
# healthy response, and Claude's "(not your usage limit)" disclaimer on server throttling.
_NOISE_RE = re.compile(
    r"\b(?:x-|anthropic-)ratelimit(?:-[a-z0-9]+)*|\brate_limit_(?:event|info)\b|\bratelimittype\b"
    r"|\(?\bnot your usage limit\b\)?",
    _I,
)

_SESSION_RE = re.compile(
    r"\bsession\s+limit|\b(?:5|five)[\s_-]?(?:hours?|hrs?|h)\b(?:\s+(?:usage|rolling|rate))?\s+limit"
    r"|\bfive_hour\b|\brolling\s+(?:usage\s+)?limit",
    _I,
)
_WEEKLY_RE = re.compile(
    r"\bweekly\b(?:\s+[\w-]+)?\s+limit|\bweekly\s+usage|\b(?:7|seven)[\s_-]?days?\b(?:\s+[\w-]+)?\s+limit"
    r"|\bseven_day(?:_\w+)?\b|\b(?:opus|sonnet)\s+(?:weekly\s+)?limit",
    _I,
)

_QUALIFIER = (
    r"(?:usage|session|weekly|daily|monthly|hourly|plan|opus|sonnet"
    r"|(?:5|five)[\s-]?hours?|(?:7|seven)[\s-]?days?|\d+[\s-]?(?:hours?|h|days?|d))"
)
# "You've hit your limit", "You've hit your org's monthly usage limit", "exceeded your per-minute rate limit"
_HIT_YOUR_RE = re.compile(
    r"\b(?:hit|reached|exceeded|exhausted|used\s+up)\s+(?:your|their|its)\s+(?P<what>(?:[\w'-]+\s+){0,4}?)limit\b",
    _I,
)
_USAGE_SIGNAL_RE = re.compile(
    rf"\b{_QUALIFIER}\s+limit\s+(?:has\s+been\s+|was\s+|is\s+)?(?:reached|exceeded|hit)\b"
    rf"|\b(?:hit|reached|exceeded)\s+the\s+{_QUALIFIER}\s+limit\b"
    r"|\busage_limit_(?:reached|exceeded)\b"
    r"|\bfree\s*usage(?:\s*limit)?\s*(?:exceeded|error)|freeusagelimiterror",
    _I,
)
_RATE_SIGNAL_RE = re.compile(
    r"\brate[\s_-]?limit|\brequests?\s+limit\s+(?:reached|exceeded)|\btoo\s+many\s+requests\b|\btemporarily\s+limiting\s+requests"
    r"|\bthrottl(?:ed|ing)\b|throttlingexception|\bresource[_\s]exhausted\b"
    r"|status(?:code|_code)?[\"':=\s]{0,4}429\b|\(429\)|\b429\s*[:\-]|\b(?:http|error|code)[\"'\s:=]{1,4}429\b",
    _I,
)
# Claude's stream-json event: "allowed" ones arrive on healthy turns, only "rejected" is a limit.
_REJECTED_EVENT_RE = re.compile(r"rate_limit_info\"\s*:\s*\{[^{}]{0,300}\"status\"\s*:\s*\"rejected\"", _I)
_RATE_WORDS_RE = re.compile(r"\b(?:rate|fast|request)\b|per[\s-]minute", _I)
# Money, not time. A *state* ("out of credits"), never an offer ("purchase more credits or try again").
_MONEY_RE = re.compile(
    r"\bout\s+of\s+(?:usage\s+)?credits\b|\bout\s+of\s+usage\b|\bspend(?:ing)?\s+(?:cap|limit)\b"
    r"|\binsufficient[_\s](?:quota|credits?|funds|balance)\b|\bexceeded\s+your\s+current\s+quota\b"
    r"|\bquota\s+exceeded\.?\s*check\s+your\s+plan\b|\bcredit\s+balance\s+(?:is\s+)?too\s+low\b"
    r"|\bbilling[_\s](?:error|details|hard[_\s]limit)\b|\busage[_\s]not[_\s]included\b"
    r"|\bto\s+use\s+codex\s+with\s+your\s+chatgpt\s+plan\b|\bnot\s+included\s+in\s+your\s+(?:plan|subscription)\b"
    r"|\bpayment\s+required\b",
    _I,
)
# The subset that no amount of waiting fixes, even when a time is printed next to it: a workspace out of
# credits, a spend cap, an exhausted API quota or balance. (Claude's "out of usage credits · resets 5pm"
# is different: the plan window resets, so with a reset time it stays waitable.)
_HARD_MONEY_RE = re.compile(
    r"\bworkspace\s+is\s+out\s+of\s+credits\b|\bspend(?:ing)?\s+(?:cap|limit)\b"
    r"|\binsufficient[_\s](?:quota|credits?|funds|balance)\b|\bexceeded\s+your\s+current\s+quota\b"
    r"|\bquota\s+exceeded\.?\s*check\s+your\s+plan\b|\bcredit\s+balance\s+(?:is\s+)?too\s+low\b"
    r"|\bbilling[_\s](?:error|details|hard[_\s]limit)\b|\busage[_\s]not[_\s]included\b"
    r"|\bto\s+use\s+codex\s+with\s+your\s+chatgpt\s+plan\b|\bnot\s+included\s+in\s+your\s+(?:plan|subscription)\b"
    r"|\bpayment\s+required\b",
    _I,
)

# Checked in order: opencode wraps other vendors' messages, so its own markers win.
_PROVIDER_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "opencode",
        re.compile(
            r"opencode|freeusagelimiterror|\bfree\s+usage\s+exceeded|\bsubscribe\s+to\s+go\b|\bretrying\s+in\b"
            r"|\bzen\b|\bapierror\b|\bisretryable\b|\bit\s+will\s+reset\s+in\b",
            _I,
        ),
    ),
    (
        "codex",
        re.compile(
            r"\bcodex\b|chatgpt|\b(?:try|retry)\s+again\s+at\b|\bplan_type\b|\busage_limit_reached\b"
            r"|\busage_not_included\b|\bexceeded\s+retry\s+limit\b|\bspend\s+cap\b|\bworkspace\s+is\s+out\s+of\s+credits"
            r"|\bquota\s+exceeded\.\s*check\s+your\s+plan|\bhit\s+your\s+usage\s+limit(?:\.|\s+for\b)",
            _I,
        ),
    ),
    (
        "claude",
        re.compile(
            r"\bclaude\b|anthropic|/extra-usage|/upgrade\b|/usage-credits|\brequest\s+rejected\s*\(429\)"
            r"|\brate_limit_error\b|\b(?:opus|sonnet)\b|·\s*resets\b|\b5-hour\s+limit"
            r"|\brate_limit_event\b|isusingoverage"
            r"|\bcredit\s+balance\s+(?:is\s+)?too\s+low|\btemporarily\s+limiting\s+requests"
            r"|\bhit\s+your\s+(?:session\s+|weekly\s+)?limit\b",
            _I,
        ),
    ),
)


@dataclass(frozen=True)
class _Class:
    kind: str | None  # None: only money wording, no limit wording
    money: bool
    provider: str | None


def _classify(norm: str) -> _Class | None:
    text = _NOISE_RE.sub(" ", norm)
    money = _MONEY_RE.search(text) is not None
    usage = _USAGE_SIGNAL_RE.search(text) is not None
    rate = _RATE_SIGNAL_RE.search(text) is not None or _REJECTED_EVENT_RE.search(norm) is not None
    for hit in _HIT_YOUR_RE.finditer(text):
        # "exceeded your per-minute rate limit" and Claude's fast-mode cooldown are rate limits.
        if _RATE_WORDS_RE.search(hit.group("what")):
            rate = True
        else:
            usage = True
    if not (money or usage or rate):
        return None
    kind: str | None
    if _SESSION_RE.search(text):
        kind = "session"
    elif _WEEKLY_RE.search(text):
        kind = "weekly"
    elif usage:
        kind = "usage"
    elif rate:
        kind = "rate"
    else:
        kind = None
    provider = next((name for name, marker in _PROVIDER_MARKERS if marker.search(norm)), None)
    return _Class(kind=kind, money=money, provider=provider)


# --------------------------------------------------------------------------- zones


def _zone_from_name(name: str) -> tzinfo | None:
    """An IANA name, an abbreviation ("PDT") or an offset ("UTC+5:30") -> tzinfo; None if unknown."""
    name = name.strip()
    if _IANA_NAME_RE.fullmatch(name):
        try:
            return ZoneInfo(name)
        except Exception:  # ZoneInfoNotFoundError, IsADirectoryError, ValueError, ...: not a zone
            pass
    upper = name.upper()
    if upper in _ABBREVIATIONS:
        return _ABBREVIATIONS[upper]
    offset = _OFFSET_NAME_RE.fullmatch(name)
    if offset:
        return _fixed_offset(offset.group("sign"), offset.group("h"), offset.group("m"))
    return None


def _fixed_offset(sign: str, hours: str, minutes: str | None) -> tzinfo | None:
    h, m = int(hours), int(minutes or 0)
    if h > 14 or m > 59:
        return None
    delta = timedelta(hours=h, minutes=m)
    return timezone(-delta if sign in "-−" else delta)


def _hours(h: float) -> timezone:
    return timezone(timedelta(hours=h))


_IANA_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]{0,40}(?:/[A-Za-z0-9_+\-]{1,40}){0,3}")
_OFFSET_NAME_RE = re.compile(r"(?:UTC|GMT)?\s*(?P<sign>[+\-−])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?", _I)
# Abbreviations name a fixed offset (PDT is -7 whatever the date); generic ones ("PT") a zone.
# IST is India's: that is how it appears in the limit reports we have seen.
_ABBREVIATIONS: dict[str, tzinfo] = {
    "UTC": _UTC, "GMT": _UTC, "Z": _UTC, "UT": _UTC, "WET": _UTC,
    "PST": _hours(-8), "PDT": _hours(-7), "MST": _hours(-7), "MDT": _hours(-6),
    "CST": _hours(-6), "CDT": _hours(-5), "EST": _hours(-5), "EDT": _hours(-4),
    "AKST": _hours(-9), "AKDT": _hours(-8), "HST": _hours(-10), "BRT": _hours(-3), "ART": _hours(-3),
    "WEST": _hours(1), "BST": _hours(1), "CET": _hours(1), "CEST": _hours(2), "EET": _hours(2),
    "EEST": _hours(3), "MSK": _hours(3), "IST": _hours(5.5), "SGT": _hours(8), "HKT": _hours(8),
    "AWST": _hours(8), "JST": _hours(9), "KST": _hours(9), "ACST": _hours(9.5), "AEST": _hours(10),
    "AEDT": _hours(11), "NZST": _hours(12), "NZDT": _hours(13),
    "PT": ZoneInfo("America/Los_Angeles"), "MT": ZoneInfo("America/Denver"),
    "CT": ZoneInfo("America/Chicago"), "ET": ZoneInfo("America/New_York"),
}  # fmt: skip


def _local_zone() -> tzinfo:
    """The zone the CLIs print local times in: ``TZ`` if set, else the system zone."""
    name = os.environ.get("TZ")
    if name:
        zone = _zone_from_name(name.lstrip(":"))
        if zone is not None:
            return zone
    else:
        try:
            link = os.readlink("/etc/localtime")
        except OSError:
            link = ""
        if "zoneinfo/" in link:
            zone = _zone_from_name(link.rsplit("zoneinfo/", 1)[1])
            if zone is not None:
                return zone
    # A POSIX TZ string ("EST5EDT,M3.2.0,M11.1.0") or no zone database: the C library knows.
    return datetime.now().astimezone().tzinfo or _UTC


def _resolve_tz(tz: tzinfo | str | None) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if isinstance(tz, str):
        zone = _zone_from_name(tz)
        if zone is not None:
            return zone
    return _local_zone()


# --------------------------------------------------------------------------- epochs


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


# --------------------------------------------------------------------------- durations

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
    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:
        return None


def _reset_from_duration(norm: str, now: datetime) -> datetime | None:
    for index, keyed in enumerate(_KEYED_DURATION_RES):
        m = keyed.search(norm)
        if m:
            scale = 0.001 if index == 0 else 1.0
            return _after(now, float(m.group("num")) * scale)
    m = _RETRY_AFTER_DATE_RE.search(norm)
    if m:
        try:
            return parsedate_to_datetime(m.group("date")).astimezone(_UTC)
        except (TypeError, ValueError, OverflowError):
            pass
    m = _DURATION_RE.search(norm)
    if m:
        return _after(now, _duration_seconds(m.group("dur")))
    return None


# --------------------------------------------------------------------------- clock times

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
    r"\b(?:(?P<same_day>(?:try|retry)\s+again\s+at)|(?:try|retry)\s+again\s+(?:after|on)"
    r"|resets?(?:_?at)?|reset(?:ting)?\s+(?:at|on)|available\s+(?:again\s+)?(?:at|on|after)|until|next\s*[=:])\b",
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
_DATE_TIME_SEP_RE = re.compile(r"(?:\s*,\s*|\s+)(?:at\s+|@\s*)?", _I)
_TIME_DATE_SEP_RE = re.compile(r"\s*,?\s*(?:on\s+)?", _I)
_TIME_RE = re.compile(
    r"(?P<h>\d{1,2})(?::(?P<mi>\d{2}))?(?::(?P<s>\d{2}))?\s*(?P<ap>[ap])\.?\s?m\b\.?"
    r"|(?P<h24>\d{1,2}):(?P<mi24>\d{2})(?::(?P<s24>\d{2}))?(?![\d:])"
    r"|(?P<word>noon|midnight)\b",
    _I,
)
_PAREN_ZONE_RE = re.compile(r"\s*\(\s*(?P<name>[^()\s]{1,48})\s*\)")
# Case-sensitive on purpose: "5pm at" must not read "at" as a zone.
_ABBR_ZONE_RE = re.compile(r"\s+(?P<abbr>[A-Z]{1,5})(?:\s*(?P<sign>[+\-−])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?)?(?![\w/])")
_OFFSET_ZONE_RE = re.compile(r"\s*(?P<sign>[+\-−])(?P<h>\d{2}):?(?P<m>\d{2})(?!\d)")

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
    zone = _zone_from_name(m.group("z"))
    return _When(exact=naive.replace(tzinfo=zone or _UTC))


def _parse_zone(s: str, pos: int) -> tuple[tzinfo | None, int]:
    m = _PAREN_ZONE_RE.match(s, pos)
    if m:
        # Unknown names fall back to the caller's zone; the parentheses are still consumed.
        return _zone_from_name(m.group("name")), m.end()
    m = _ABBR_ZONE_RE.match(s, pos)
    if m and m.group("abbr") in _ABBREVIATIONS:
        if m.group("sign") and m.group("abbr") in ("UTC", "GMT"):
            return _fixed_offset(m.group("sign"), m.group("h"), m.group("m")), m.end()
        return _ABBREVIATIONS[m.group("abbr")], m.end("abbr")
    m = _OFFSET_ZONE_RE.match(s, pos)
    if m:
        return _fixed_offset(m.group("sign"), m.group("h"), m.group("m")), m.end()
    return None, pos


def _parse_when(s: str, pos: int) -> _When | None:
    """Read a date and/or clock time (and zone) starting at ``pos``; None if there is none."""
    filler = _FILLER_RE.match(s, pos)  # matches the empty string too
    pos = filler.end() if filler else pos
    iso = _ISO_RE.match(s, pos)
    if iso:
        return _iso_when(iso)
    weekday = None
    wd = _WEEKDAY_RE.match(s, pos)
    if wd and wd.group("wd").lower() in _WEEKDAYS:
        weekday, pos = _WEEKDAYS[wd.group("wd").lower()], wd.end()
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
    hms = _time_parts(clock) if clock else (0, 0, 0)
    if hms is None:
        return None
    zone, _ = _parse_zone(s, pos)
    if day is None:
        return _When(*hms, weekday=weekday, zone=zone)
    month = _MONTHS[day.group("mon")[:3].lower()]
    year = int(day.group("year")) if day.group("year") else None
    return _When(*hms, year=year, month=month, day=int(day.group("day")), zone=zone)


def _at(day: date, when: _When, zone: tzinfo, fold: int = 0) -> datetime | None:
    try:
        local = datetime(day.year, day.month, day.day, when.hour, when.minute, when.second, tzinfo=zone, fold=fold)
        return local.astimezone(_UTC)
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
        return when.exact.astimezone(_UTC)
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


def _reset_from_clock(norm: str, now: datetime, zone: tzinfo) -> datetime | None:
    for anchor in _ANCHOR_RE.finditer(norm):
        when = _parse_when(norm, anchor.end())
        if when is not None:
            resolved = _resolve(when, now, zone, same_day=anchor.group("same_day") is not None)
            if resolved is not None:
                return resolved
    return None


def _reset_from_keys(norm: str) -> datetime | None:
    m = _KEYED_RESET_RE.search(norm)
    if m and m.group("epoch"):
        return reset_from_epoch(m.group("epoch"))
    if m and m.group("iso"):
        iso = _ISO_RE.fullmatch(m.group("iso"))
        when = _iso_when(iso) if iso else None
        if when is not None and when.exact is not None:
            return when.exact.astimezone(_UTC)
    m = _PIPE_EPOCH_RE.search(norm)
    if m:
        return reset_from_epoch(m.group("val"))
    return None


def _extract_reset(norm: str, now: datetime, zone: tzinfo) -> datetime | None:
    return _reset_from_keys(norm) or _reset_from_duration(norm, now) or _reset_from_clock(norm, now, zone)


# --------------------------------------------------------------------------- public


def detect_limit(text: str, *, now: datetime | None = None, tz: tzinfo | str | None = None) -> UsageLimit | None:
    """Read a usage/rate limit from a CLI's error text; None when the text is not about one.

    ``now`` (default: the current time; naive means UTC) anchors relative forms:
    durations, and clock times printed without a date (the next such time) or
    without a year (the next such date). ``tz`` is the zone the CLI printed local
    times in (a tzinfo or an IANA name; default: this process's zone, honouring
    ``TZ``); a zone named in the text wins. Never raises.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc)
    >>> hit = detect_limit("You've hit your session limit · resets 2:52am (UTC)", now=now)
    >>> hit.kind, hit.waitable, hit.provider, hit.resets_at.isoformat()
    ('session', True, 'claude', '2026-11-22T02:52:00+00:00')
    >>> detect_limit("You’ve hit your usage limit. Try again at 9:02 PM.", now=now,
    ...              tz="America/New_York").resets_at.isoformat()
    '2026-11-22T02:02:00+00:00'
    >>> detect_limit("Free usage exceeded, subscribe to Go [retrying in 8h12m]", now=now).resets_at
    datetime.datetime(2026, 11, 22, 9, 12, tzinfo=datetime.timezone.utc)
    >>> detect_limit("Your workspace is out of credits. Add credits to continue.").kind
    'credits'
    >>> detect_limit("the rate of change is limited") is None
    True
    """
    if not isinstance(text, str) or not text.strip():
        return None
    norm = _normalise(text)
    found = _classify(norm)
    if found is None:
        return None
    if now is None:
        current = datetime.now(_UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        current = now.replace(tzinfo=_UTC)
    else:
        current = now.astimezone(_UTC)
    resets_at = _extract_reset(norm, current, _resolve_tz(tz))
    if found.money and (resets_at is None or _HARD_MONEY_RE.search(norm)):
        kind, waitable = "credits", False
    else:
        # A printed reset time is the CLI's own promise that waiting helps, even when it
        # also offers to sell credits ("You're out of usage credits · resets 5pm").
        kind, waitable = found.kind or "usage", True
    return UsageLimit(message=text, resets_at=resets_at, waitable=waitable, kind=kind, provider=found.provider)
