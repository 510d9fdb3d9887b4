"""Property tests for caw.limits: format a random instant the way each CLI prints it, read it back.

The formatters below mirror the CLIs' own code: Claude's ``Vee`` (time alone when the reset is
at most 24 h away, else "Nov 24, 7:52pm" with the year only when it differs), Codex's
``format_retry_timestamp`` ("3:28 PM" on the same local date, else "Nov 24th, 2026 8:05 AM"),
and the duration spellings of all three.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from caw.limits import UsageLimit, detect_limit, reset_from_epoch

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZONES = [
    "UTC", "America/New_York", "America/Los_Angeles", "America/Sao_Paulo", "America/St_Johns",
    "America/Santiago", "Europe/London", "Europe/Berlin", "Europe/Moscow", "Africa/Libreville",
    "Asia/Seoul", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tehran", "Australia/Adelaide",
    "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham", "Etc/GMT+5", "Etc/GMT-14",
]  # fmt: skip
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SEPARATORS = [" · ", " ∙ ", " - ", " | ", " — ", " • "]
APOSTROPHES = ["'", "\u2019"]
CODEX_PREFIXES = [
    "Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase "
    "more credits or try again at {}.",
    "Upgrade to Plus to continue using Codex (https://chatgpt.com/explore/plus), or try again at {}.",
    "To get more access now, send a request to your admin or try again at {}.",
    "Try again at {}.",
]
FAST = settings(max_examples=200, deadline=None)

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
zones = st.sampled_from(ZONES)


def _ambiguous(local: datetime) -> bool:
    """A wall time that happens twice (DST fall-back): the text alone cannot tell which."""
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


def _claude_clock(local: datetime) -> str:
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{hour}{minutes}{'am' if local.hour < 12 else 'pm'}"


def _codex_clock(local: datetime) -> str:
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _zone_args(zone: str, named: bool, other: str, as_object: bool) -> tuple[str, str | tzinfo]:
    """Text suffix and ``tz`` argument: a zone named in the text must win over ``tz``."""
    if named:
        return f" ({zone})", other
    return "", ZoneInfo(zone) if as_object else zone


def _read(text: str, now: datetime, tz: str | tzinfo) -> UsageLimit:
    found = detect_limit(text, now=now, tz=tz)
    assert found is not None, text
    assert found.resets_at is None or found.resets_at.utcoffset() == timedelta(0)
    return found


@FAST
@given(
    instant=instants,
    zone=zones,
    other=zones,
    lead=st.integers(min_value=1, max_value=24 * 3600 - 1),
    kind=st.sampled_from(["session", "weekly"]),
    named=st.booleans(),
    as_object=st.booleans(),
    sep=st.sampled_from(SEPARATORS),
    apostrophe=st.sampled_from(APOSTROPHES),
)
def test_claude_time_only_form(
    instant: datetime,
    zone: str,
    other: str,
    lead: int,
    kind: str,
    named: bool,
    as_object: bool,
    sep: str,
    apostrophe: str,
) -> None:
    local = instant.astimezone(ZoneInfo(zone))
    now = instant - timedelta(seconds=lead)
    wall_gap = local.replace(tzinfo=None) - now.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    # The wall time must name one instant: on a 23-hour (spring-forward) day it can come twice
    # within 24 real hours, and a time equal to now's minute is read as now (documented rule).
    assume(timedelta(0) < wall_gap <= timedelta(hours=23, minutes=59) and not _ambiguous(local))
    suffix, tz = _zone_args(zone, named, other, as_object)
    text = f"You{apostrophe}ve hit your {kind} limit{sep}resets {_claude_clock(local)}{suffix}"
    found = _read(text, now, tz)
    assert (found.resets_at, found.kind, found.waitable, found.provider) == (instant, kind, True, "claude")


@FAST
@given(
    instant=instants,
    zone=zones,
    other=zones,
    lead_minutes=st.integers(min_value=24 * 60 + 1, max_value=360 * 24 * 60),
    claude_year_rule=st.booleans(),
    at=st.booleans(),
    named=st.booleans(),
    as_object=st.booleans(),
    sep=st.sampled_from(SEPARATORS),
)
def test_claude_date_form(
    instant: datetime,
    zone: str,
    other: str,
    lead_minutes: int,
    claude_year_rule: bool,
    at: bool,
    named: bool,
    as_object: bool,
    sep: str,
) -> None:
    local = instant.astimezone(ZoneInfo(zone))
    now = instant - timedelta(minutes=lead_minutes, seconds=17)
    assume(not _ambiguous(local))
    # Claude adds the year only when it differs from now's; without it the next such date is meant.
    with_year = claude_year_rule and local.year != now.astimezone(ZoneInfo(zone)).year
    date_text = f"{MONTHS[local.month - 1]} {local.day}" + (f", {local.year}" if with_year else "")
    clock = _claude_clock(local)
    when = f"{date_text} at {clock}" if at and not with_year else f"{date_text}, {clock}"
    suffix, tz = _zone_args(zone, named, other, as_object)
    found = _read(f"You've hit your limit{sep}resets {when}{suffix}", now, tz)
    assert (found.resets_at, found.kind, found.waitable) == (instant, "usage", True)


@FAST
@given(
    instant=instants,
    zone=zones,
    lead=st.integers(min_value=1, max_value=30 * 24 * 3600),
    prefix=st.sampled_from(CODEX_PREFIXES),
    apostrophe=st.sampled_from(APOSTROPHES),
    as_object=st.booleans(),
)
def test_codex_try_again_at(
    instant: datetime, zone: str, lead: int, prefix: str, apostrophe: str, as_object: bool
) -> None:
    local = instant.astimezone(ZoneInfo(zone))
    now = instant - timedelta(seconds=lead)
    assume(not _ambiguous(local))
    if local.date() == now.astimezone(ZoneInfo(zone)).date():
        when = _codex_clock(local)
    else:
        when = f"{MONTHS[local.month - 1]} {_ordinal(local.day)}, {local.year} {_codex_clock(local)}"
    text = f"You{apostrophe}ve hit your usage limit. " + prefix.format(when)
    found = _read(text, now, ZoneInfo(zone) if as_object else zone)
    assert (found.resets_at, found.kind, found.waitable, found.provider) == (instant, "usage", True, "codex")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" + ("" if count == 1 else "s")


@FAST
@given(
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    days=st.integers(0, 9),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
    style=st.sampled_from(["codex-old", "opencode-tui", "claude-xi", "opencode-go", "seconds-only"]),
)
def test_durations(now: datetime, days: int, hours: int, minutes: int, seconds: int, style: str) -> None:
    # Each style prints only some units; ``shown`` is what the text says, so the reset is exact.
    if style == "codex-old":
        shown = [(days, "day"), (hours, "hour"), (minutes, "minute")]
        phrase = " ".join(_plural(count, unit) for count, unit in shown if count)
        text = f"You've hit your usage limit. Upgrade to Pro or try again in {phrase}."
    elif style == "opencode-tui":
        shown = [(days * 24 + hours, "hour"), (minutes, "minute"), (seconds, "second")]
        phrase = "".join(f"{count}{unit[0]}" for count, unit in shown if count)
        text = f"Free usage exceeded, subscribe to Go [retrying in {phrase} attempt #2]"
    elif style == "claude-xi":
        shown = [(days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second")]
        phrase = " ".join(f"{count}{unit[0]}" for count, unit in shown if count)
        text = f"You've hit your fast limit · resets in {phrase}"
    elif style == "opencode-go":
        shown = [(days, "day"), (hours, "hour")]
        phrase = " ".join(_plural(count, unit) for count, unit in shown if count)
        text = f"Weekly usage limit reached. It will reset in {phrase}."
    else:
        shown = [(((days * 24 + hours) * 60 + minutes) * 60 + seconds, "second")]
        text = f"Free usage exceeded, subscribe to Go [retrying in {shown[0][0]}s]"
    assume(any(count for count, _ in shown))
    expected = now + sum((timedelta(**{unit + "s": count}) for count, unit in shown), timedelta())
    found = _read(text, now, "UTC")
    assert found.resets_at == expected, text
    assert found.waitable


@FAST
@given(now=instants, millis=st.integers(min_value=1, max_value=120_000))
def test_fractional_second_retry_hint(now: datetime, millis: int) -> None:
    text = f"Rate limit reached for requests. Please try again in {millis / 1000:.3f}s."
    found = _read(text, now, "UTC")
    assert (found.resets_at, found.kind) == (now + timedelta(milliseconds=millis), "rate")


@FAST
@given(
    seconds=st.integers(min_value=1_000_000_000, max_value=4_000_000_000), millis=st.booleans(), form=st.integers(0, 2)
)
def test_epochs(seconds: int, millis: bool, form: int) -> None:
    value = seconds * 1000 + 123 if millis else seconds
    expected = EPOCH + (timedelta(milliseconds=value) if millis else timedelta(seconds=value))
    text = [
        f"Claude AI usage limit reached|{value}",
        f'{{"error":{{"type":"usage_limit_reached","plan_type":"plus","resets_at":{value}}}}}',
        f'{{"type":"rate_limit_event","rate_limit_info":{{"status":"rejected","resetsAt":{value},"rateLimitType":"seven_day"}}}}',
    ][form]
    found = _read(text, datetime(2020, 1, 1, tzinfo=UTC), "UTC")
    assert found.resets_at == expected
    assert found.kind == ("weekly" if form == 2 else "usage")
    assert reset_from_epoch(value) == expected == reset_from_epoch(str(value))


MONEY = [
    "Your workspace is out of credits. Add credits to continue.",
    "You hit your spend cap set in your workspace. Increase your spend cap to continue.",
    "Quota exceeded. Check your plan and billing details.",
    "To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus.",
    "Credit balance is too low",
    "You've hit your monthly spend limit. /model to switch models.",
    '{"error":{"code":"insufficient_quota","message":"You exceeded your current quota, '
    'please check your plan and billing details."}}',
]
NOISE = ["", "Error: ", "ERROR ", "turn.failed: ", "■ ", "[codex] ", "API Error: 400 · "]


@FAST
@given(
    money=st.sampled_from(MONEY),
    before=st.sampled_from(NOISE),
    after=st.sampled_from(["", "\n", " (request id: req_1)"]),
)
def test_money_is_never_waitable(money: str, before: str, after: str) -> None:
    found = _read(before + money + after, datetime(2026, 1, 1, tzinfo=UTC), "UTC")
    assert (found.kind, found.waitable, found.resets_at) == ("credits", False, None)


def _assert_valid(result: UsageLimit | None, text: str) -> None:
    if result is not None:
        assert result.message == text
        assert result.kind in {"session", "weekly", "usage", "rate", "credits"}
        assert result.resets_at is None or result.resets_at.utcoffset() == timedelta(0)
        assert result.waitable or result.kind == "credits"


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=300), now=st.datetimes(timezones=st.just(UTC)), tz=st.sampled_from([*ZONES, "Bad/Zone", None])
)
def test_arbitrary_text_never_raises(text: str, now: datetime, tz: str | None) -> None:
    _assert_valid(detect_limit(text, now=now, tz=tz), text)


# Pieces of real messages, glued at random, reach the date/zone/duration code with odd values.
VOCABULARY = [
    "You've hit your usage limit", "limit reached", "session limit", "weekly limit", "rate limit", "429", "(429)",
    "Too Many Requests", "out of credits", "resets", "reset at", "try again at", "try again in", "retrying in",
    "until", "next=", "resets_at:", '"resetsAt":', "retry-after:", "|", "·", ",", " at ", " on ", "5pm", "12am",
    "0am", "13pm", "25:61", "23:59", "00:00", "noon", "Feb", "February", "29th", "31", "30", "0", "9999", "0001",
    "10000", "99999999999999", "1795315950", "1e400", "(Asia/Seoul)", "(Etc/GMT+5)", "(Bad/Zone)", "(UTC+99)",
    "UTC+14", "GMT-12:30", "PDT", "IST", "+05:30", "-99:99", "2026-02-30T25:00:00Z", "9999-12-31T23:59:59Z",
    "0000-01-01 00:00", "999999999 days", "1.5s", "8h12m", "an hour", "Fri", "Sunday", "of", "Dec 31st, 9999 11:59 PM",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=12),
    now=st.datetimes(timezones=st.just(UTC)),
    tz=st.sampled_from([*ZONES, "Bad/Zone"]),
)
def test_glued_limit_vocabulary_never_raises(words: list[str], now: datetime, tz: str) -> None:
    text = " ".join(words)
    _assert_valid(detect_limit(text, now=now, tz=tz), text)


def test_long_adversarial_input_is_linear() -> None:
    # Shapes that make naive regexes backtrack: long digit runs, long hyphenated words, many anchors.
    blobs = ["9" * 50_000, "a-" * 25_000, "resets " * 8_000, "x-ratelimit-" * 4_000, "in 1" * 12_000]
    start = datetime.now()
    for blob in blobs:
        _assert_valid(detect_limit(f"rate limit reached {blob}", tz="UTC"), f"rate limit reached {blob}")
    assert datetime.now() - start < timedelta(seconds=10)


# ----------------------------------------------------------------- prose that quotes or explains a limit (issue 13)

QUOTED = [
    "You've hit your session limit · resets 3pm (UTC)",
    "You've hit your usage limit. Try again at 3:28 PM.",
    "Free usage exceeded, subscribe to Go [retrying in 8h12m]",
    "429 Too Many Requests",
    "Rate limit exceeded. Try again in 5 minutes.",
    "You're out of extra usage · resets 5pm (Europe/Brussels)",
    "Claude usage limit reached. Your limit will reset at 1pm.",
]
AROUND = [
    'When the CLI prints "{}", caw waits until the reset and continues.',
    "I saw `{}` in the log, so I added a backoff before the next call.",
    "The test checks that {} is parsed; all 12 tests passed.",
    "- Handle '{}' by waiting (#812)",
    "```\n{}\n```\nThat is the message users report.",
    "If the server answers with {}, the handler retries after the Retry-After delay.",
    "Users see this:\n\n{}\n\nand then the job pauses until the window resets at midnight.",
]


@FAST
@given(quoted=st.sampled_from(QUOTED), around=st.sampled_from(AROUND), now=instants)
def test_prose_quoting_a_limit_message_is_not_a_limit(quoted: str, around: str, now: datetime) -> None:
    text = around.format(quoted)
    assert detect_limit(text, now=now, tz="UTC") is None, text


HARD_MONEY = [
    "Your seat type doesn't include extra usage",
    "Your seat type doesn’t include usage credits",
    "Your usage allocation has been disabled by your admin · run /usage-credits to ask your admin for a higher limit",
    "Your org is out of usage · add funds to continue",
    "Your group's usage limit is set to $0",
    "Fable 5 requires usage credits.",
    "This service is disabled for your org",
]


@FAST
@given(
    money=st.sampled_from(HARD_MONEY),
    before=st.sampled_from(["", "Error: ", "⎿  ", "[claude] ", "API Error: 400 · "]),
    reset=st.sampled_from(["", " · resets 5pm", " · resets Jan 2, 9am (UTC)"]),
)
def test_claude_hard_money_is_never_waitable_even_with_a_time(money: str, before: str, reset: str) -> None:
    found = _read(before + money + reset, datetime(2026, 1, 1, tzinfo=UTC), "UTC")
    assert (found.kind, found.waitable, found.provider) == ("credits", False, "claude")


@FAST
@given(
    instant=instants,
    zone=zones,
    lead=st.integers(min_value=2 * 60, max_value=23 * 3600),
    window=st.sampled_from(["session", "weekly"]),
    max_wait=st.integers(min_value=60, max_value=24 * 3600),
)
def test_a_monthly_spend_limit_is_waitable_exactly_within_max_wait(
    instant: datetime, zone: str, lead: int, window: str, max_wait: int
) -> None:
    local = instant.astimezone(ZoneInfo(zone))
    now = instant - timedelta(seconds=lead)
    wall_gap = local.replace(tzinfo=None) - now.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    assume(timedelta(0) < wall_gap <= timedelta(hours=23, minutes=59) and not _ambiguous(local))
    text = f"You've hit your monthly spend limit · your {window} limit resets {_claude_clock(local)} ({zone})"
    found = detect_limit(text, now=now, tz="UTC", max_wait=max_wait)
    assert found is not None and found.resets_at == instant
    near = (instant - now).total_seconds() <= max_wait
    assert (found.kind, found.waitable) == ((window, True) if near else ("credits", False))
