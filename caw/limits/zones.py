"""Time zones: the names, abbreviations and offsets CLIs print, and the zone they print local times in.

Owns turning a printed zone into a ``tzinfo``: IANA names (``Asia/Seoul``, ``Etc/GMT+5``),
abbreviations (``PDT`` is a fixed offset, ``PT`` a zone), offsets (``UTC+5:30``, ``+02:00``), the zone
written after a clock time (``parse_zone``), and the default zone (``local_zone``: ``TZ``, else the
``/etc/localtime`` name, else the C library's offset).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["ABBREVIATIONS", "UTC", "fixed_offset", "local_zone", "parse_zone", "resolve_tz", "zone_from_name"]

UTC = timezone.utc


def zone_from_name(name: str) -> tzinfo | None:
    """An IANA name, an abbreviation ("PDT") or an offset ("UTC+5:30") -> tzinfo; None if unknown.

    >>> str(zone_from_name("PDT")), str(zone_from_name("UTC+5:30")), str(zone_from_name("Asia/Seoul"))
    ('UTC-07:00', 'UTC+05:30', 'Asia/Seoul')
    >>> zone_from_name("Mars/Olympus") is None
    True
    """
    name = name.strip()
    if _IANA_NAME_RE.fullmatch(name):
        try:
            return ZoneInfo(name)
        except Exception:  # ZoneInfoNotFoundError, IsADirectoryError, ValueError, ...: not a zone
            pass
    upper = name.upper()
    if upper in ABBREVIATIONS:
        return ABBREVIATIONS[upper]
    offset = _OFFSET_NAME_RE.fullmatch(name)
    if offset:
        return fixed_offset(offset.group("sign"), offset.group("h"), offset.group("m"))
    return None


def fixed_offset(sign: str, hours: str, minutes: str | None) -> tzinfo | None:
    """``+``/``-``/``−`` and the digits of an offset -> a fixed zone; None beyond ±14:59."""
    h, m = int(hours), int(minutes or 0)
    if h > 14 or m > 59:
        return None
    delta = timedelta(hours=h, minutes=m)
    return timezone(-delta if sign in "-−" else delta)


def _hours(h: float) -> timezone:
    return timezone(timedelta(hours=h))


_IANA_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]{0,40}(?:/[A-Za-z0-9_+\-]{1,40}){0,3}")
_OFFSET_NAME_RE = re.compile(r"(?:UTC|GMT)?\s*(?P<sign>[+\-−])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?", re.IGNORECASE)
# Abbreviations name a fixed offset (PDT is -7 whatever the date); generic ones ("PT") a zone.
# IST is India's: that is how it appears in the limit reports we have seen.
ABBREVIATIONS: dict[str, tzinfo] = {
    "UTC": UTC, "GMT": UTC, "Z": UTC, "UT": UTC, "WET": UTC,
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

_PAREN_ZONE_RE = re.compile(r"\s*\(\s*(?P<name>[^()\s]{1,48})\s*\)")
# Case-sensitive on purpose: "5pm at" must not read "at" as a zone.
_ABBR_ZONE_RE = re.compile(r"\s+(?P<abbr>[A-Z]{1,5})(?:\s*(?P<sign>[+\-−])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?)?(?![\w/])")
# "7pm Europe/Paris": an IANA name without parentheses (Area/Location, capitalised)
_BARE_IANA_RE = re.compile(r"\s+(?P<name>(?:[A-Z][A-Za-z]+)(?:/[A-Z][A-Za-z0-9_+\-]+){1,2})(?![\w/])")
_OFFSET_ZONE_RE = re.compile(r"\s*(?P<sign>[+\-−])(?P<h>\d{2}):?(?P<m>\d{2})(?!\d)")


def parse_zone(s: str, pos: int) -> tuple[tzinfo | None, int]:
    """The zone written at ``s[pos:]`` ("(Asia/Seoul)", " PDT", " UTC+5", "+02:00") and where it ends.

    >>> parse_zone("5pm (Asia/Seoul).", 3)
    (zoneinfo.ZoneInfo(key='Asia/Seoul'), 16)
    >>> parse_zone("5pm at noon", 3)
    (None, 3)
    """
    m = _PAREN_ZONE_RE.match(s, pos)
    if m:
        # Unknown names fall back to the caller's zone; the parentheses are still consumed.
        return zone_from_name(m.group("name")), m.end()
    m = _BARE_IANA_RE.match(s, pos)
    if m:
        zone = zone_from_name(m.group("name"))
        if zone is not None:
            return zone, m.end()
    m = _ABBR_ZONE_RE.match(s, pos)
    if m and m.group("abbr") in ABBREVIATIONS:
        if m.group("sign") and m.group("abbr") in ("UTC", "GMT"):
            return fixed_offset(m.group("sign"), m.group("h"), m.group("m")), m.end()
        return ABBREVIATIONS[m.group("abbr")], m.end("abbr")
    m = _OFFSET_ZONE_RE.match(s, pos)
    if m:
        return fixed_offset(m.group("sign"), m.group("h"), m.group("m")), m.end()
    return None, pos


def local_zone() -> tzinfo:
    """The zone the CLIs print local times in: ``TZ`` if set, else the system zone."""
    name = os.environ.get("TZ")
    if name:
        zone = zone_from_name(name.lstrip(":"))
        if zone is not None:
            return zone
    else:
        try:
            link = os.readlink("/etc/localtime")
        except OSError:
            link = ""
        if "zoneinfo/" in link:
            zone = zone_from_name(link.rsplit("zoneinfo/", 1)[1])
            if zone is not None:
                return zone
    # A POSIX TZ string ("EST5EDT,M3.2.0,M11.1.0") or no zone database: the C library knows.
    return datetime.now().astimezone().tzinfo or UTC


def resolve_tz(tz: tzinfo | str | None) -> tzinfo:
    """``detect_limit``'s ``tz`` argument -> a zone: a tzinfo as is, a known name, else ``local_zone()``."""
    if isinstance(tz, tzinfo):
        return tz
    if isinstance(tz, str):
        zone = zone_from_name(tz)
        if zone is not None:
            return zone
    return local_zone()
