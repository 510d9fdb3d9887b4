"""Classifying a limit message: which family it is, whether it is about money, and which CLI printed it.

Owns the wording rules: the noise removed first (healthy responses' header and event names, Claude's
"(not your usage limit)" disclaimer), the families (``session``, ``weekly``, ``usage``, ``rate``,
``credits``), and the money rules: a money *state* ("out of credits") is ``credits`` and never
waitable unless the CLI printed a reset time, and the hard money forms (a spend cap, an exhausted
quota) are never waitable at all. Offers are not states. The provider comes from ``caw.limits.markers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from caw.limits.markers import guess_provider

__all__ = ["Class", "classify", "settle"]

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


@dataclass(frozen=True)
class Class:
    """What the wording says, before any reset time is read."""

    kind: str | None  # None: only money wording, no limit wording
    money: bool
    provider: str | None


def classify(norm: str) -> Class | None:
    """The family of the normalised text ``norm``; None when it does not say a limit was hit.

    >>> classify("You've hit your weekly limit · resets Fri 2:00 PM").kind
    'weekly'
    >>> classify("x-ratelimit-remaining: 12") is None
    True
    """
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
    return Class(kind=kind, money=money, provider=guess_provider(norm))


def settle(found: Class, norm: str, resets_at: datetime | None) -> tuple[str, bool]:
    """The final ``(kind, waitable)``: the money rules applied once the reset time is known.

    >>> settle(Class(kind=None, money=True, provider=None), "You're out of credits", None)
    ('credits', False)
    """
    if found.money and (resets_at is None or _HARD_MONEY_RE.search(norm)):
        return "credits", False
    # A printed reset time is the CLI's own promise that waiting helps, even when it
    # also offers to sell credits ("You're out of usage credits · resets 5pm").
    return found.kind or "usage", True
