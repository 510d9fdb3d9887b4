"""Where the detector reads a CLI's text for a failed turn, the CLI's structured signals still win.

``caw.session.turn._limit_info`` combines the provider's rejected ``RateLimitEvent`` (claude's
``rate_limit_event``, codex's ``usage_limit_reached``, opencode's ``statusCode: 429``) with the error's
text. The detector now refuses text that is not a CLI's limit message (issue 13); a turn the CLI marked
as limited must stay limited all the same.
"""

from __future__ import annotations

from datetime import datetime, timezone

from caw.events import ErrorEvent, RateLimitEvent
from caw.session.turn import _limit_info

UTC = timezone.utc
RESET = datetime(2026, 9, 2, 7, 40, tzinfo=UTC)


def test_the_rejected_rate_limit_event_decides_over_a_spend_limit_text() -> None:
    text = "You've hit your monthly spend limit · your session limit resets 2:40pm (Asia/Jakarta)"
    event = RateLimitEvent(provider="claude", status="rejected", resets_at=RESET, kind="session")
    info = _limit_info(ErrorEvent(provider="claude", kind="rate_limit", message=text, status=429), event)
    assert (info.kind, info.waitable, info.resets_at) == ("session", True, RESET)


def test_a_billing_error_is_money_whatever_the_text_says() -> None:
    text = "You're out of extra usage · resets 5pm (Europe/Brussels)"  # waitable as text alone
    info = _limit_info(ErrorEvent(provider="claude", kind="billing", message=text), None)
    assert (info.kind, info.waitable) == ("credits", False)


def test_a_429_whose_text_reads_as_prose_is_still_a_waitable_rate_limit() -> None:
    # the CLI said 429; the text (an upstream's explanation) is not a limit message on its own
    text = "The upstream answered 429 because the client sends more than 60 requests per minute."
    info = _limit_info(ErrorEvent(provider="opencode", kind="rate_limit", message=text, status=429), None)
    assert (info.kind, info.waitable, info.resets_at) == ("rate", True, None)


def test_the_text_only_fills_in_a_missing_reset() -> None:
    text = "You've hit your session limit. It resets 4:10pm (UTC)."
    event = RateLimitEvent(provider="claude", status="rejected", resets_at=None, kind="session")
    info = _limit_info(ErrorEvent(provider="claude", kind="rate_limit", message=text), event)
    assert info.kind == "session" and info.waitable
    assert info.resets_at is not None and (info.resets_at.hour, info.resets_at.minute) == (16, 10)
