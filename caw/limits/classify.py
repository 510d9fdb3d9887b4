"""Classifying a limit message: whether it is one, which family, whether it is about money, which CLI printed it.

Owns the wording rules. A text is a limit only when a CLI's limit phrasing *opens* a message in it (the
places ``caw.limits.shape.openings`` lists: "You've hit your … limit", "… limit reached", "You're out of
extra usage", "Your seat type doesn't include …", "Too Many Requests", "429: {…}", …), or when it is a
JSON error body with a limit's status or type; prose that only mentions limits is ruled out before
(``shape.is_prose``). Then: the noise removed (healthy responses' header and event names, Claude's
"(not your usage limit)" disclaimer), the kinds (``session``, ``weekly``, ``usage``, ``rate``,
``credits``), and the money rules (``settle``): a money *state* ("out of extra usage") is waitable only
with a printed reset, a monthly spend limit only with a printed reset within ``max_wait``, and the hard
money forms (a workspace out of credits, a spend cap, a seat or allocation without usage) never. Offers
are not states. The provider comes from ``caw.limits.markers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from caw.limits.markers import guess_provider
from caw.limits.normalise import normalise
from caw.limits.shape import json_shaped, openings

__all__ = ["DEFAULT_MAX_WAIT", "Class", "classify", "settle", "spend_like"]

# caw's default longest wait (caw.policy.autowait.DEFAULT_MAX_WAIT): a spend limit that resets later is money
DEFAULT_MAX_WAIT = 6 * 3600.0

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
    r"|\bseven_day(?:_\w+)?\b|\b(?:opus|sonnet|fable(?:\s+[\d.]+)?)\s+(?:weekly\s+)?limit|\blimit\s+for\s+this\s+week\b",
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
# The hard money forms: no amount of waiting fixes them, even when a time is printed next to them (the time
# is kept in ``resets_at`` for people). A workspace or org out of credits, a spend cap, an exhausted API quota
# or balance, billing, a plan, seat or allocation that does not include the product.
_HARD_MONEY = (
    r"\b(?:workspace|org|organi[sz]ation|team|account|group)(?:'s)?\s+(?:is\s+out|has\s+run\s+out)\s+of\s+(?:usage|credits)\b"
    r"|\busage\s+credit\s+cap\s+(?:is\s+|has\s+been\s+)?reached\b|\bspend(?:ing)?\s+cap\b"
    r"|\bseat(?:\s+type)?\s+(?:doesn't|does\s+not)\s+include\b|\busage\s+allocation\s+has\s+been\s+disabled\b"
    r"|\busage\s+limit\s+is\s+set\s+to\s+\$0\b|\brequires\s+usage\s+credits\b|\bservice\s+is\s+disabled\s+for\s+your\s+org"
    r"|\binsufficient[_\s](?:quota|credits?|funds|balance)\b|\bexceeded\s+your\s+current\s+quota\b"
    r"|\bquota\s+exceeded\.?\s*check\s+your\s+plan\b|\bcredit\s+balance\s+(?:is\s+)?too\s+low\b"
    r"|\bbilling[_\s](?:error|details|hard[_\s]limit)\b|\busage[_\s]not[_\s]included\b"
    r"|\bto\s+use\s+codex\s+with\s+your\s+chatgpt\s+plan\b|\bnot\s+included\s+in\s+your\s+(?:plan|subscription)\b"
    r"|\bpayment\s+required\b|\busage\s+is\s+paused\s+for\s+your\s+org"
)
_HARD_MONEY_RE = re.compile(_HARD_MONEY, _I)
# A monthly spend limit is money too, but the plan's own window still resets: claude prints "You've hit your
# monthly spend limit · your session limit resets 2:40pm". Waitable only with such a time, within max_wait.
# claude 2.1.332 also has the "individual spend limit" and the "team's pooled group budget".
_SPEND_RE = re.compile(r"\bspend(?:ing)?\s+limit\b|\b(?:group\s+)?budget\b", _I)
# Money *states* ("out of credits"), never offers ("purchase more credits or try again"). Claude's "You're out
# of extra usage · resets 5pm" (formerly "usage credits") means the plan window is used up and the extra
# usage too: waiting for the printed reset works.
_MONEY_RE = re.compile(
    r"\bout\s+of\s+(?:usage\s+|extra\s+)?credits\b|\bout\s+of\s+(?:extra\s+)?usage\b|\bspend(?:ing)?\s+limit\b"
    r"|\b(?:group\s+)?budget\b|" + _HARD_MONEY,
    _I,
)

# ----------------------------------------------------------------- the phrasings that open a limit message

_QUAL = (
    r"(?:usage|session|weekly|daily|monthly|hourly|plan|opus|sonnet|fable(?:\s+[\d.]+)?|claude|ai|code|free|extra"
    r"|(?:org|organi[sz]ation|team|account|channel|group)'s|your|the|(?:5|five)[\s-]?hours?|5h"
    r"|(?:7|seven)[\s-]?days?|\d+[\s-]?(?:hours?|h|days?|d))"
)
# What may follow an opening phrase: the end, punctuation, or the words a CLI goes on with. Prose goes on
# with anything else ("Rate limit errors are now retried"), or asks ("Usage limit reached?"), and is not a limit.
_END = (
    r"(?=\s*(?:$|[.,;:!·|—\-()\[\]{}\"'…/]"
    r"|(?:for|please|try|retry|retrying|resets?|until|wait|switch|upgrade|visit|again|set\s+to|on\s+(?:tokens|requests)"
    r"|in\s+organi[sz]ation|by\s+your|contact|add|ask|run)\b))"
)
_OPEN_MONEY = (
    r"(?:you(?:'re|\s+are)\s+)?out\s+of\s+(?:\w+\s+){0,2}?(?:usage|credits?|quota)\b"
    r"|billing[_\s]hard[_\s]limit\s+(?:has\s+been\s+)?reached\b"
    r"|your\s+(?:org|organi[sz]ation|workspace|team|account|group)(?:'s)?\s+(?:is\s+out|has\s+run\s+out)\s+of\b"
    r"|your\s+organi[sz]ation's\s+usage\s+credit\s+cap\b|your\s+seat(?:\s+type)?\s+(?:doesn't|does\s+not)\s+include\b"
    r"|your\s+usage\s+allocation\s+has\s+been\s+disabled\b|your\s+group's\s+usage\s+limit\s+is\s+set\s+to\s+\$0"
    r"|(?:your\s+)?credit\s+balance\s+(?:is\s+)?too\s+low\b|[\w.-]+(?:\s+[\w.-]+){0,2}\s+requires\s+usage\s+credits\b"
    r"|this\s+service\s+is\s+disabled\s+for\s+your\s+org|you\s+hit\s+your\s+spend\s+cap\b"
    r"|usage\s+is\s+paused\s+for\s+your\s+org"
    rf"|insufficient[_\s](?:quota|credits?|funds|balance){_END}|to\s+use\s+codex\s+with\s+your\s+chatgpt\s+plan\b"
    rf"|payment\s+required{_END}|billing[_\s]error{_END}|usage_not_included\b"
)
_OPEN_USAGE = (
    r"you(?:'ve|\s+have)?\s+(?:hit|reached|exceeded|exhausted|used\s+up)\s+(?:your|the)\s+(?:[\w'$.-]+\s+){0,5}?"
    rf"(?:limit|cap|quota|allowance|allocation|budget){_END}"
    rf"|(?:{_QUAL}\s+){{0,3}}(?:limit|quota)\s+(?:has\s+been\s+|was\s+|is\s+)?(?:reached|exceeded|hit|exhausted){_END}"
    rf"|free\s*usage(?:\s+limit)?\s*(?:exceeded|reached|error){_END}|freeusagelimiterror|usage_limit_(?:reached|exceeded)\b"
)
_OPEN_RATE = (
    # "Rate limited", "rate limit exceeded", never a bare "Rate limit" (a heading, a docs line)
    r"(?:(?:the|your|an?)\s+)?(?:(?:api|request|token|account)\s+)?rate[\s-]?limit"
    rf"(?:ed|\s+(?:has\s+been\s+|was\s+|is\s+)?(?:exceeded|reached|hit|error)){_END}"
    rf"|rate_limit(?:ed|_error|_exceeded){_END}|too\s+many\s+requests{_END}"
    rf"|requests?\s+limit\s+(?:has\s+been\s+|was\s+)?(?:reached|exceeded){_END}"
    r"|(?:http(?:/[\d.]+)?\s+|status(?:\s+code)?\s*:?\s*|error(?:\s+code)?\s*:?\s*|code\s*:?\s*)?429(?:\s*[-:]?\s*too\s+many\s+requests)?"
    rf"(?:{_END}|(?=\s*[-:]?\s*(?:resource|rate|quota|you|your|request|free|usage|throttl|insufficient)))"
    r"|request\s+rejected\s*\(429\)|server\s+is\s+temporarily\s+limiting\s+requests"
    r"|exceeded\s+retry\s+limit,?\s+last\s+status:?\s*429\b|(?:request\s+)?failed\s+with\s+status(?:\s+code)?\s+429\b"
    rf"|resource(?:\s+has\s+been\s+|_)exhausted{_END}|throttl(?:ed|ing)(?:exception)?{_END}"
    r"|this\s+request\s+would\s+exceed\s+(?:your|the)\s+(?:[\w'-]+\s+){0,3}?(?:rate\s+)?limit\b"
    rf"|you(?:'re|\s+are)\s+(?:being\s+|currently\s+)?rate[\s-]?limited{_END}"
    rf"|you(?:'ve|\s+have)?\s+exceeded\s+your\s+(?:current\s+)?(?:request\s+)?rate{_END}"
)
_OPEN_RE = re.compile(rf"(?P<money>{_OPEN_MONEY})|(?P<usage>{_OPEN_USAGE})|(?P<rate>{_OPEN_RATE})", _I)
# A JSON error body is a limit by its status or type, wherever in the body they are.
_STRUCTURED_RE = re.compile(
    r"\\?[\"'](?:statusCode|status_code|status|code|api_error_status|error_status|http_status)\\?[\"']\s*:\s*\\?[\"']?429\b"
    r"|\\?[\"']\s*:\s*\\?[\"'](?:usage_limit_reached|usage_limit_exceeded|usage_not_included|rate_limit_error"
    r"|rate_limit_exceeded|rate_limit|insufficient_quota|FreeUsageLimitError|billing_error|RESOURCE_EXHAUSTED"
    r"|too_many_requests|throttling_error)\\?[\"']|\bRESOURCE_EXHAUSTED\b",
    _I,
)


@dataclass(frozen=True)
class Class:
    """What the wording says, before any reset time is read."""

    kind: str | None  # None: only money wording, no limit wording
    money: bool
    provider: str | None


def _opening(text: str) -> str | None:
    """The family of the first limit phrasing that opens a message in ``text`` (money, usage, rate); None if none."""
    for line, at in openings(text):
        m = _OPEN_RE.match(line, at)
        if m:
            return m.lastgroup
        if json_shaped(line, at) and (_STRUCTURED_RE.search(text) or _REJECTED_EVENT_RE.search(normalise(text))):
            return "rate"
    return None


def classify(text: str) -> Class | None:
    """The family of the CLI text ``text``; None when no message in it says a limit was hit.

    >>> classify("You've hit your weekly limit · resets Fri 2:00 PM").kind
    'weekly'
    >>> classify("x-ratelimit-remaining: 12") is None
    True
    >>> classify("When the API returns 429 Too Many Requests, back off.") is None
    True
    """
    family = _opening(text)
    if family is None:
        return None
    norm = normalise(text)
    text = _NOISE_RE.sub(" ", norm)
    money = family == "money" or _MONEY_RE.search(text) is not None
    usage = _USAGE_SIGNAL_RE.search(text) is not None
    rate = family == "rate" or _RATE_SIGNAL_RE.search(text) is not None or _REJECTED_EVENT_RE.search(norm) is not None
    for hit in _HIT_YOUR_RE.finditer(text):
        # "exceeded your per-minute rate limit" and Claude's fast-mode cooldown are rate limits.
        if _RATE_WORDS_RE.search(hit.group("what")):
            rate = True
        elif not _MONEY_RE.search(hit.group(0)):
            usage = True
    usage = usage or (family == "usage" and not rate)
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


def spend_like(found: Class, norm: str) -> bool:
    """A spend limit or budget: money whose message may also name the plan window's reset."""
    return found.money and _SPEND_RE.search(norm) is not None and _HARD_MONEY_RE.search(norm) is None


def settle(
    found: Class, norm: str, resets_at: datetime | None, now: datetime, max_wait: float = DEFAULT_MAX_WAIT
) -> tuple[str, bool]:
    """The final ``(kind, waitable)``: the money rules applied once the reset time is known.

    >>> from datetime import datetime, timedelta, timezone
    >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> settle(Class(kind=None, money=True, provider=None), "You're out of credits", None, now)
    ('credits', False)
    >>> spend = Class(kind="session", money=True, provider="claude")
    >>> settle(spend, "monthly spend limit · your session limit resets 2am", now + timedelta(hours=2), now)
    ('session', True)
    >>> settle(spend, "monthly spend limit · resets Feb 1", now + timedelta(days=31), now)
    ('credits', False)
    """
    if found.money:
        if resets_at is None or _HARD_MONEY_RE.search(norm):
            return "credits", False
        if _SPEND_RE.search(norm) and (resets_at - now).total_seconds() > max_wait:
            return "credits", False
    # A printed reset time is the CLI's own promise that waiting helps, even when it
    # also offers to sell credits ("You're out of extra usage · resets 5pm").
    return found.kind or "usage", True
