r"""Provider markers: which CLI printed a limit message, from wording only that CLI uses.

Owns the marker registry. A provider declares its markers (``Provider.limit_markers``, regex
alternatives matched case-insensitively) and the provider registry hands them here with
``register_markers``; the detector asks ``guess_provider``. The inversion keeps this layer below the
providers: nothing here knows a provider's name. The built-ins register when ``caw.providers`` is
imported (``import caw`` does it).

The most recent registration is checked first, so a provider that wraps other vendors' messages
registers after them and its own markers win: opencode (registered after claude and codex) prints
Anthropic's 429 inside its ``APIError``, and that message is opencode's.

>>> register_markers("acme", (r"\bacme\b", r"acme-quota"))
>>> guess_provider("ACME: rate limit exceeded")
'acme'
>>> unregister_markers("acme")
>>> guess_provider("ACME: rate limit exceeded") is None
True
"""

from __future__ import annotations

import re
import threading

__all__ = ["guess_provider", "register_markers", "registered_markers", "unregister_markers"]

_lock = threading.Lock()
_patterns: dict[str, tuple[str, ...]] = {}
_compiled: dict[str, re.Pattern[str]] = {}
_order: tuple[tuple[str, re.Pattern[str]], ...] = ()  # newest registration first; rebuilt on change


def register_markers(provider: str, patterns: tuple[str, ...]) -> None:
    """Say that text matching any of ``patterns`` (case-insensitive) was printed by ``provider``.

    Registering a name again replaces its markers and keeps its place; no patterns removes it.
    Raises ``re.error`` for a pattern that does not compile, so the mistake shows where it was made.
    """
    patterns = tuple(patterns)
    if not patterns:
        unregister_markers(provider)
        return
    marker = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    global _order
    with _lock:
        _patterns[provider] = patterns
        _compiled[provider] = marker
        _order = tuple((name, _compiled[name]) for name in reversed(_compiled))


def unregister_markers(provider: str) -> None:
    """Forget ``provider``'s markers (nothing happens when it has none)."""
    global _order
    with _lock:
        _patterns.pop(provider, None)
        _compiled.pop(provider, None)
        _order = tuple((name, _compiled[name]) for name in reversed(_compiled))


def registered_markers() -> dict[str, tuple[str, ...]]:
    """Every provider's markers as registered, in registration order."""
    with _lock:
        return dict(_patterns)


def guess_provider(norm: str) -> str | None:
    """The provider whose markers ``norm`` (normalised text) matches, newest registration first; None if none."""
    order = _order  # one consistent snapshot: registrations replace the tuple, never mutate it
    return next((name for name, marker in order if marker.search(norm)), None)
