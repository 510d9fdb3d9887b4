"""Golden corpus for caw.limits: real-world-shaped limit messages of claude, codex and opencode.

Each line of tests/fixtures/limits/golden.jsonl is one message with the ``now`` and ``tz`` it
is read at (and ``max_wait`` where it matters) and the expected reading, or null for texts that
are not a limit message: the ``trap-*`` lines are prose, markdown, code, test output and changelogs
that talk about rate limits. When a CLI changes its wording, add the new text here first, then
teach the parser.
"""

from __future__ import annotations

import doctest
import importlib
import json
import pkgutil
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import pytest

import caw.limits
from caw.limits import UsageLimit, detect_limit, reset_from_epoch

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "limits" / "golden.jsonl"
UTC = timezone.utc


def _load() -> list[dict[str, Any]]:
    with GOLDEN.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


CASES = _load()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _reading(found: UsageLimit | None) -> dict[str, Any] | None:
    if found is None:
        return None
    resets_at = found.resets_at.isoformat().replace("+00:00", "Z") if found.resets_at else None
    return {"resets_at": resets_at, "waitable": found.waitable, "kind": found.kind, "provider": found.provider}


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
def test_golden_message(case: dict[str, Any]) -> None:
    found = detect_limit(case["text"], now=_instant(case["now"]), tz=case["tz"], max_wait=case.get("max_wait"))
    assert _reading(found) == case["expect"]
    if found is not None:
        assert found.message == case["text"]
        if found.resets_at is not None:
            assert found.resets_at.utcoffset() == timedelta(0)


def test_corpus_covers_every_provider_kind_and_negatives() -> None:
    expectations = [c["expect"] for c in CASES]
    positives = [e for e in expectations if e is not None]
    assert len(CASES) >= 70
    assert len(expectations) - len(positives) >= 10
    assert set(Counter(e["kind"] for e in positives)) == {"session", "weekly", "usage", "rate", "credits"}
    assert {"claude", "codex", "opencode"} <= {e["provider"] for e in positives}
    assert len({c["id"] for c in CASES}) == len(CASES), "ids must be unique: they name the tests"
    traps = [c for c in CASES if c["id"].startswith("trap-")]
    assert len(traps) >= 30 and all(c["expect"] is None for c in traps)


def _opening_text(text: str) -> str:
    return re.sub(r"^(?:⎿\s*|\[\w+\]\s*|Error:\s*)+", "", text.replace("’", "'"))


def test_every_published_claude_prefix_family_is_read() -> None:
    """claude's SDK publishes the CLI's usage-limit prefixes (USAGE_LIMIT_ERROR_PREFIXES, drift-2026-12.md):
    every one of them opens at least one golden message that reads as a limit."""
    prefixes = [
        "You've hit your", "You've reached your", "You're out of usage credits", "Your org is out of usage · add funds",
        "Your org is out of usage · contact your admin", "Your seat type doesn't include usage credits",
        "Your seat type doesn't include usage", "Your usage allocation has been disabled by your admin",
        "Your group's usage limit is set to $0", "Fable 5 requires usage credits", "You're out of extra usage",
        "Your seat type doesn't include extra usage", "This service is disabled for your org",
    ]  # fmt: skip
    for prefix in prefixes:
        opened = [c for c in CASES if _opening_text(c["text"]).startswith(prefix)]
        assert any(c["expect"] is not None for c in opened), prefix


def test_warnings_and_transitions_are_not_limits() -> None:
    """USAGE_WARNING_PREFIXES and USAGE_TRANSITION_PREFIXES: "never arrive as API errors", never a limit."""
    now = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    for text in (
        "You've used 75% of your session limit · resets 3pm (Europe/Rome)",
        "You're close to your usage limit",
        "You're close to your usage credit limit",
        "You're now using usage credits",
        "You're now using extra usage · your session limit resets 2pm",
        "Now using extra usage",
        "You're now using your usage allocation",
        "Approaching weekly limit · resets Dec 7, 9am (UTC)",
    ):
        assert detect_limit(text, now=now, tz="UTC") is None, text


def test_money_is_never_waitable() -> None:
    """A money problem is not waitable even when the text also prints a time (the time is kept, for people)."""
    for case in CASES:
        expect = case["expect"]
        if expect is not None and expect["kind"] == "credits":
            assert expect["waitable"] is False, case["id"]


def test_a_monthly_spend_limit_waits_only_for_a_stated_reset_within_max_wait() -> None:
    now = datetime(2026, 9, 2, 5, 0, tzinfo=UTC)
    text = "You've hit your monthly spend limit · your session limit resets 2:40pm (Asia/Jakarta)"
    near = detect_limit(text, now=now, tz="UTC")
    assert near is not None and (near.kind, near.waitable) == ("session", True)
    assert near.resets_at == datetime(2026, 9, 2, 7, 40, tzinfo=UTC)
    short = detect_limit(text, now=now, tz="UTC", max_wait=3600)  # 2h40m away, one hour allowed
    assert short is not None and (short.kind, short.waitable, short.resets_at) == ("credits", False, near.resets_at)
    bare = detect_limit("You've hit your monthly spend limit · raise it at claude.ai/settings/usage", now=now)
    assert bare is not None and (bare.kind, bare.waitable, bare.resets_at) == ("credits", False, None)
    # extra usage is not a spend limit: the plan window resets, so any stated reset is waited for
    far = detect_limit("You're out of extra usage · resets Sep 5, 2pm (UTC)", now=now, max_wait=3600)
    assert far is not None and (far.kind, far.waitable) == ("usage", True)


# ----------------------------------------------------------------- API details


def test_docstring_examples_hold() -> None:
    modules = [importlib.import_module(f"caw.limits.{m.name}") for m in pkgutil.iter_modules(caw.limits.__path__)]
    assert {m.__name__.rpartition(".")[2] for m in modules} >= {"detect", "classify", "clock", "markers", "zones"}
    for module in modules:
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
    assert doctest.testmod(caw.limits.detect).attempted >= 8


def test_naive_now_is_utc() -> None:
    text = "You've hit your session limit · resets 4am (UTC)"
    naive = detect_limit(text, now=datetime(2026, 11, 22, 1, 0))
    aware = detect_limit(text, now=datetime(2026, 11, 22, 1, 0, tzinfo=UTC))
    assert naive is not None and aware is not None
    assert naive.resets_at == aware.resets_at == datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def test_now_defaults_to_the_current_time() -> None:
    found = detect_limit("Free usage exceeded, subscribe to Go [retrying in 2h]")
    assert found is not None and found.resets_at is not None
    expected = datetime.now(UTC) + timedelta(hours=2)
    assert abs(found.resets_at - expected) < timedelta(seconds=30)


def test_default_zone_follows_tz_env(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 5, 5, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    found = detect_limit("You've hit your session limit · resets 3pm", now=now)
    assert found is not None and found.resets_at == datetime(2026, 5, 5, 6, 0, tzinfo=UTC)
    monkeypatch.setenv("TZ", ":Europe/Berlin")  # glibc's "file" spelling
    found = detect_limit("You've hit your session limit · resets 3pm", now=now)
    assert found is not None and found.resets_at == datetime(2026, 5, 5, 13, 0, tzinfo=UTC)


def test_unknown_tz_name_falls_back_to_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    now = datetime(2026, 5, 5, 0, 0, tzinfo=UTC)
    found = detect_limit("You've hit your session limit · resets 3pm", now=now, tz="Nowhere/Atlantis")
    assert found is not None and found.resets_at == datetime(2026, 5, 5, 9, 30, tzinfo=UTC)


def test_tz_accepts_a_tzinfo_object() -> None:
    now = datetime(2026, 5, 5, 0, 0, tzinfo=UTC)
    found = detect_limit("You've hit your session limit · resets 3pm", now=now, tz=ZoneInfo("America/Sao_Paulo"))
    assert found is not None and found.resets_at == datetime(2026, 5, 5, 18, 0, tzinfo=UTC)


def test_time_equal_to_now_minute_is_now_not_tomorrow() -> None:
    now = datetime(2026, 5, 5, 15, 0, 42, tzinfo=UTC)
    found = detect_limit("You've hit your session limit · resets 3pm (UTC)", now=now)
    assert found is not None and found.resets_at == datetime(2026, 5, 5, 15, 0, tzinfo=UTC)
    later = detect_limit("You've hit your session limit · resets 3pm (UTC)", now=now + timedelta(minutes=1))
    assert later is not None and later.resets_at == datetime(2026, 5, 6, 15, 0, tzinfo=UTC)


def test_feb_29_without_year_is_the_next_leap_day() -> None:
    found = detect_limit(
        "You've hit your weekly limit · resets Feb 29, 5pm (UTC)", now=datetime(2026, 3, 1, tzinfo=UTC)
    )
    assert found is not None and found.resets_at == datetime(2028, 2, 29, 17, 0, tzinfo=UTC)


def test_impossible_dates_and_times_give_no_reset_but_still_a_limit() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    for text in (
        "You've hit your weekly limit · resets Feb 30, 5pm (UTC)",
        "You've hit your session limit · resets 13pm",
        "You've hit your usage limit. Try again at 25:61.",
    ):
        found = detect_limit(text, now=now, tz="UTC")
        assert found is not None and found.resets_at is None and found.waitable, text


def test_empty_and_blank_text_is_not_a_limit() -> None:
    assert detect_limit("") is None
    assert detect_limit(" \n\t ") is None


def test_ansi_colours_are_ignored() -> None:
    text = "\x1b[31m■ You've hit your usage limit.\x1b[0m Try again at \x1b[1m2:01 AM\x1b[0m."
    found = detect_limit(text, now=datetime(2026, 11, 22, 0, 30, tzinfo=UTC), tz="UTC")
    assert found is not None and found.resets_at == datetime(2026, 11, 22, 2, 1, tzinfo=UTC)
    assert found.message == text


def test_reset_from_epoch() -> None:
    assert reset_from_epoch(1795315950) == datetime(2026, 11, 22, 2, 52, 30, tzinfo=UTC)
    assert reset_from_epoch("1795315950") == datetime(2026, 11, 22, 2, 52, 30, tzinfo=UTC)
    assert reset_from_epoch(1795315950.5) == datetime(2026, 11, 22, 2, 52, 30, 500000, tzinfo=UTC)
    assert reset_from_epoch(1795315950123) == datetime(2026, 11, 22, 2, 52, 30, 123000, tzinfo=UTC)
    for garbage in ("", "soon", "nan", "inf", "-5", "1e400", 10**400, float("nan"), True, "12:30"):
        assert reset_from_epoch(garbage) is None, garbage


def test_usage_limit_is_frozen_and_validated() -> None:
    limit = UsageLimit(message="m", resets_at=datetime(2026, 1, 1, 9, 0), waitable=True, kind="rate")
    assert limit.resets_at == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(pydantic.ValidationError):
        limit.kind = "session"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        UsageLimit(message="m", resets_at=None, waitable=True, kind="monthly")
    tokyo = UsageLimit(
        message="m", resets_at=datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo")), waitable=True, kind="usage"
    )
    assert tokyo.resets_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert tokyo.resets_at is not None and tokyo.resets_at.tzinfo is UTC


PREFIXES = ["Error: ", "⎿  ", "■ ", "2026-12-04T10:00:00Z ERROR ", "[error] ", "API Error: "]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_cli_or_log_prefix_does_not_change_the_reading(prefix: str) -> None:
    """The opening may follow glyphs, a timestamp, a log level or a label: every golden message reads the same."""
    changed = []
    for case in CASES:
        if case["expect"] is None or case["text"].lstrip().startswith(("{", "[")):
            continue
        found = detect_limit(
            prefix + case["text"], now=_instant(case["now"]), tz=case["tz"], max_wait=case.get("max_wait")
        )
        if _reading(found) != case["expect"]:
            changed.append(case["id"])
    assert changed == []


@pytest.mark.parametrize(
    "wrap", ['The CLI printed "{}" and stopped.', "{}\n\nThat is the message, and this paragraph explains it."]
)
def test_a_golden_message_quoted_in_prose_is_not_a_limit(wrap: str) -> None:
    quoted = [
        c["id"]
        for c in CASES
        if c["expect"] is not None
        and detect_limit(wrap.format(c["text"]), now=_instant(c["now"]), tz=c["tz"]) is not None
    ]
    assert quoted == []
