r"""The shape of a CLI limit message: where one may open, and the tells of prose that only talks about limits.

A CLI prints a limit as a short message that *opens* with its phrasing: at the start of the text or of one
of its first lines (after glyphs, timestamps and labels such as ``ERROR:``, ``API Error:``, ``[codex]``),
after a log separator (``attempt=1 - Free usage exceeded``) or at the start of a sentence of a short line
when no quote comes before it, or as the message string of a JSON error body. ``openings`` lists those
places; ``caw.limits.classify`` reads the phrasing there.

An agent's answer, a test summary, a changelog, code or markdown that *mentions* rate limits, 429s or
"resets at midnight" is never a limit: ``is_prose`` says so from its tells (markdown structure, code,
test-runner output, changelog lines, the first person, explanations of what a server or handler does,
more text than any CLI prints for a limit).

>>> is_prose("I added a handler: when the API returns 429, it waits and retries.")
True
>>> is_prose("You've hit your session limit · resets 2:52am (UTC)")
False
>>> [line[at:] for line, at in openings("ERROR: [codex] You've hit your usage limit.")]
["ERROR: [codex] You've hit your usage limit.", "You've hit your usage limit."]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from caw.limits.normalise import normalise

__all__ = ["is_prose", "json_shaped", "openings"]

_I = re.IGNORECASE

# A non-JSON text longer than this is an explanation, not a CLI's limit message (the longest the CLIs
# print, OpenAI's per-minute 429 with its two URLs, is about 450 characters).
_MAX_MESSAGE = 700
_MAX_LINES = 4  # a limit message opens within the first lines of its first paragraph
_MAX_SCAN = 8000  # of each of those lines (a JSON error body carries its message early)

_PROSE_LABELS = (
    r"note|notes|nb|summary|tldr|tl;dr|tip|hint|example|examples|e\.g|i\.e|fixed|fix|fixes|added|changed|removed"
    r"|improved|deprecated|security|todo|update|updates|docs|changelog|changes|output|answer|explanation|context"
    r"|background|why|how|q|a|question|reason|cause|problem|solution|done|test|tests|overview|details?"
)
# What may come before a message's first word: space, glyphs (■ ⎿ 🖐 ● ✗ ·), brackets ([codex], [ERROR],
# [429 Too Many Requests]), timestamps, upper-case log levels and short labels ending in a colon. Not
# markdown (# - * > | `), JSON openers or quotes: a quoted limit message is prose about one.
_PREFIX_RE = re.compile(
    r"(?:\s+"
    r"|[^\w\s\"'`#*>+|{\[(\-]"
    r"|\[[^\]\n]{1,48}\]"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?=\s)"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?=\s)"
    r"|(?:ERROR|ERR|WARN|WARNING|FATAL|CRITICAL|INFO|DEBUG)\b:?"
    rf"|(?!(?i:{_PROSE_LABELS})\b)[A-Za-z_][\w.\-/:]*(?:\s[A-Za-z_][\w.\-/]*){{0,4}}\s*:(?!//)(?=\s)"
    r")*",
)
# The same without labels: glyphs, brackets, timestamps and log levels only.
_LEAD_RE = re.compile(
    r"(?:\s+|[^\w\s\"'`#*>+|{\[(\-]|\[[^\]\n]{1,48}\]"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?=\s)"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?=\s)|(?:ERROR|ERR|WARN|WARNING|FATAL|CRITICAL|INFO|DEBUG)\b:?)*"
)
_QUOTE_RE = re.compile(r"[\"“”`]")
# Separators a log line puts before the message it carries ("attempt=1 - Free usage exceeded").
_SEPARATOR_RE = re.compile(r"\s[-|·—]\s|\]\s|:\s|\|")
_SENTENCE_RE = re.compile(r"[.!?;]\s+")
_SHORT_LINE = 300
# The string values of a JSON error body that carry the human message.
_JSON_MESSAGE_RE = re.compile(
    r"\\?[\"'](?:message|result|error|msg|detail|details|title|description|reason)\\?[\"']\s*:\s*\\?[\"']", _I
)

# "429: {…}", "429 - {…}": a status code, then the JSON body
_STATUS_BODY_RE = re.compile(r"\d{3}\s*[:\-]?\s*[{\[]")
_PARAGRAPH_RE = re.compile(r"\n[ \t\r]*\n")
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_FENCE_RE = re.compile(r"```|~~~")
_MARKDOWN_LINE_RE = re.compile(
    r"^[ \t]{0,3}(?:#{1,6}[ \t]|[-*+][ \t]+\S|\d{1,3}[.)][ \t]+\S|>[ \t]?\S|\|.*\|[ \t]*$)", re.M
)
_CHANGELOG_LINE_RE = re.compile(
    r"^[ \t]*(?:v?\d+\.\d+(?:\.\d+)*(?:[-+.][\w.]+)?\b(?!\s*(?:s|ms|m|h|seconds?|minutes?)\b)|\[v?\d+\.\d+"
    r"|(?:fixed|added|changed|removed|improved|deprecated|security|fix|feat|chore|perf|refactor)"
    r"(?:\([\w\-/]+\))?[ \t]*[:\-–])",
    re.M | _I,
)
_TELLS = [
    # code
    r"\bdef\s+\w+\s*\(|\breturn\b|[=!]==?|=>|\bimport\s+\w|\bfrom\s+[\w.]+\s+import\b|\bconst\s+\w|\blet\s+\w+\s*="
    r"|\bfunction\b|\bclass\s+\w+\s*[:({]|\bexcept\b|\bcatch\s*\(|\bawait\s+\w|\bif\s*\(|\bself\.|\bthis\.\w"
    r"|\b[A-Za-z_]\w*\.[A-Za-z_]\w*\(|\b\w+\(\)|\bsleep\s*\(|\braise\s+\w+(?:error|exception)\b",
    # test-runner output
    r"\bTraceback\b|\bAssertionError\b|\bassert(?:ion)?s?\b|\btest_\w+|\bpytest\b|={4,}|\bexpected\b.*\bgot\b",
    # changelog and commit references
    r"\(#\d+\)|\bPR\s*#\d+|\bcommit\s+[0-9a-f]{7,}\b|\bbump(?:ed)?\b|\brelease[sd]?\b",
    # an explanation of what a server, client or handler does, or what the agent did
    r"\b(?:handler|middleware|decorator|backoff|back-off|exponential|jitter|implemented|implementation|refactor\w*"
    r"|retried|retries\s+(?:the|it|them|on)|now\s+(?:retr\w+|wait\w*|honou?r\w*|respect\w*|handle\w*|show\w*|log\w*)"
    r"|(?:the|a|an)\s+(?:api|server|client|endpoint|upstream|backend|provider|service)\s+(?:returns?|returned|sends?|sent|responds?|answers?|replies|throttles?)"
    r"|(?:returns?|returned|receives?|received|gets?|got|hits?|hitting|handles?|handling|catch(?:es)?)\s+(?:an?\s+|the\s+)?(?:http\s+)?(?:429|rate[\s-]?limit)"
    r"|(?:if|when|whenever|once|after|before)\s+(?:you|we|it|they|the\s+\w+|a\s+\w+)\s+(?:hits?|reach\w*|exceed\w*|gets?|receives?)\b"
    r"|for\s+example|such\s+as|in\s+other\s+words|this\s+means|which\s+means|so\s+that|make\s+sure"
    r"|(?:this|it)\s+happens|happens\s+when|occurs\s+when|(?:is|are|gets?)\s+(?:returned|thrown|raised)|means"
    r"|because|whereas|therefore|otherwise|typically|basically|in\s+general)\b|,\s+so\s+(?:the|we|it|you|that|this)\b",
    # the contractions of an explanation (a CLI says "You've", "You're", "doesn't"; not these)
    r"\b(?:that's|you'll|you'd|it's|there's|here's|what's|isn't|aren't|won't|shouldn't|wouldn't)\b",
    r"\b(?:let\s+me|let's|we've|we'll)\b",
]
_TELL_I_RE = re.compile("|".join(f"(?:{t})" for t in _TELLS), _I)
# Case matters for these: the first person (no CLI says "I" in a limit message) and test-runner verdicts.
_TELL_RE = re.compile(
    r"(?<![\w'])I(?:'(?:ve|ll|m|d))?(?![\w'])|\b(?:PASSED|FAILED|XFAIL|XPASS)\b"
    r"|\b\d+\s+(?:passed|failed|errors?|skipped|xfailed|tests?)\b"
)


def json_shaped(norm: str, at: int = 0) -> bool:
    """Whether the message at ``at`` is a JSON (or Python-repr) body rather than a sentence."""
    return norm.startswith(("{", "["), at)


def _lines(text: str) -> list[str]:
    """The normalised lines of the first paragraph, at most ``_MAX_LINES`` of them."""
    out: list[str] = []
    for raw in text.splitlines():
        line = normalise(raw)
        if not line:
            if out:
                break  # a blank line ends the first paragraph: what follows is not where a message opens
            continue
        out.append(line)
        if len(out) == _MAX_LINES:
            break
    return out


def _skip_prefix(line: str, at: int) -> int:
    m = _PREFIX_RE.match(line, at)
    return m.end() if m else at


def _skip_lead(line: str, at: int) -> int:
    m = _LEAD_RE.match(line, at)
    return m.end() if m else at


def _after_a_quote(line: str, at: int) -> bool:
    """Whether a quote comes before ``at``: then a message opening there is quoted by prose (a JSON body's
    own messages are found by scanning the body, not here)."""
    return _QUOTE_RE.search(line, 0, at) is not None


def openings(text: str) -> Iterator[tuple[str, int]]:
    """Each place a CLI's message may open: ``(normalised line, offset)``; a line may have several.

    >>> [line[at:] for line, at in openings("retry - attempt=1 - Free usage exceeded")]
    ['retry - attempt=1 - Free usage exceeded', 'attempt=1 - Free usage exceeded', 'Free usage exceeded']
    """
    for line in _lines(text):
        line = line[:_MAX_SCAN]
        seen: set[int] = set()
        scanned = False
        starts = [0]
        starts += [m.end() for m in _SEPARATOR_RE.finditer(line)]
        if len(line) <= _SHORT_LINE:
            starts += [m.end() for m in _SENTENCE_RE.finditer(line)]
        for start in sorted(starts):
            if start and _after_a_quote(line, start):
                continue  # prose quoting a message ('The CLI printed "… · Rate limited"')
            at = _skip_prefix(line, start)
            # before the labels too: a label may be the message itself ("Session limit reached: resets 4pm")
            for place in (start, _skip_lead(line, start), at):
                if place < len(line) and place not in seen and line[place].isalnum():
                    seen.add(place)
                    yield line, place
            if at >= len(line):
                continue
            if at not in seen:
                seen.add(at)
                yield line, at
            if json_shaped(line, at) and not scanned:
                scanned = True  # once per line: nested bodies are found by the same scan
                for m in _JSON_MESSAGE_RE.finditer(line, at):
                    if m.end() not in seen:
                        seen.add(m.end())
                        yield line, m.end()


def _explains(paragraph: str) -> bool:
    """A later paragraph of eight words or more that is not a JSON body (an HTTP dump's body may follow)."""
    return len(_WORD_RE.findall(paragraph)) >= 8 and not json_shaped(paragraph.lstrip())


def is_prose(text: str) -> bool:
    """Whether ``text`` reads as prose, code, markdown or tool output rather than a CLI's limit message.

    >>> is_prose("- Retry on 429 Too Many Requests (#812)")
    True
    >>> is_prose('{"type":"error","error":{"name":"APIError","data":{"statusCode":429}}}')
    False
    """
    first = normalise(text[:400])
    rest = first[_skip_prefix(first, 0) :]
    structured = json_shaped(rest) or _STATUS_BODY_RE.match(rest) is not None
    if not structured and len(normalise(text)) > _MAX_MESSAGE:
        return True
    if _FENCE_RE.search(text) or _MARKDOWN_LINE_RE.search(text) or _CHANGELOG_LINE_RE.search(text):
        return True
    if any(_explains(paragraph) for paragraph in _PARAGRAPH_RE.split(text.strip())[1:]):
        return True  # a message, then paragraphs of explanation: an answer quoting one
    flat = normalise(text)
    if structured:
        # inside a JSON body only the human message can read as prose
        flat = " ".join(
            m.group(1) for m in re.finditer(r"\\?[\"']message\\?[\"']\s*:\s*\\?[\"']([^\"\\]{0,600})", flat)
        )
    return _TELL_I_RE.search(flat) is not None or _TELL_RE.search(flat) is not None
