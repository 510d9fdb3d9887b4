"""The detector: ``detect_limit`` and the ``UsageLimit`` it returns, tying the other modules together.

Given the text a CLI printed for a failed turn (an error event, a ``result`` line, stderr), say
whether it is a limit, which kind, whether waiting helps, and when the limit resets. Structured
signals (Claude's ``rate_limit_event.resetsAt``, Codex's ``resets_at``) are read by the provider
parsers; this is the fallback for everything else, so it generalises over the *forms* of the
messages (see ``docs/dev/limits-notes.md``) rather than exact strings.

The pipeline is ``shape`` (prose that only talks about limits is never one) -> ``classify`` (a CLI's
limit phrasing must open a message) -> extract the reset, most trusted first: keyed epochs / ISO
stamps (``clock``), then durations (``durations``), then a date or clock time after a reset word
(``clock``, in a zone from ``zones``) -> ``settle`` the money rules.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from pydantic import BaseModel, ConfigDict, field_validator

from caw.limits.classify import DEFAULT_MAX_WAIT, classify, settle, spend_like
from caw.limits.clock import reset_from_clock, reset_from_keys, resets_from_clock
from caw.limits.durations import reset_from_duration
from caw.limits.normalise import normalise
from caw.limits.shape import is_prose
from caw.limits.zones import UTC, resolve_tz

__all__ = ["UsageLimit", "detect_limit"]

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
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, not {value!r}")
        return value


def _extract_reset(norm: str, now: datetime, zone: tzinfo) -> datetime | None:
    return reset_from_keys(norm) or reset_from_duration(norm, now) or reset_from_clock(norm, now, zone)


def detect_limit(
    text: str, *, now: datetime | None = None, tz: tzinfo | str | None = None, max_wait: float | None = None
) -> UsageLimit | None:
    """Read a usage/rate limit from a CLI's error text; None when the text is not about one.

    ``now`` (default: the current time; naive means UTC) anchors relative forms:
    durations, and clock times printed without a date (the next such time) or
    without a year (the next such date). ``tz`` is the zone the CLI printed local
    times in (a tzinfo or an IANA name; default: this process's zone, honouring
    ``TZ``); a zone named in the text wins. ``max_wait`` (seconds, default six hours,
    caw's default wait) only matters for a monthly spend limit: it is waitable when
    the text states a reset at most that far away, and money otherwise. Never raises.

    Only a CLI's limit *message* counts: an answer, test output, a changelog or code
    that talks about rate limits, 429s or "resets at midnight" gives None.

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
    >>> detect_limit("You're out of extra usage · resets 3am (UTC)", now=now).waitable
    True
    >>> detect_limit("the rate of change is limited") is None
    True
    >>> detect_limit("I added a retry: on a 429 the client waits until the limit resets at midnight.") is None
    True
    """
    if not isinstance(text, str) or not text.strip():
        return None
    if is_prose(text):
        return None
    found = classify(text)
    if found is None:
        return None
    if now is None:
        current = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        current = now.replace(tzinfo=UTC)
    else:
        current = now.astimezone(UTC)
    norm = normalise(text)
    zone = resolve_tz(tz)
    if spend_like(found, norm):
        # the earliest reset printed: the plan window ("your 5-hour limit resets 5pm") before the budget's own
        resets_at = min(resets_from_clock(norm, current, zone), default=None) or _extract_reset(norm, current, zone)
    else:
        resets_at = _extract_reset(norm, current, zone)
    limit = DEFAULT_MAX_WAIT if max_wait is None else max_wait
    kind, waitable = settle(found, norm, resets_at, current, limit)
    return UsageLimit(message=text, resets_at=resets_at, waitable=waitable, kind=kind, provider=found.provider)
