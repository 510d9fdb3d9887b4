"""The provider registry: every provider caw can run, built-in or registered by a user, by name.

The built-ins register through the same ``register`` call a fourth provider uses, so nothing else in caw
knows a provider's name: the order, the handle codec, the doctor and the interactive launch all ask here.
The built-ins load on the first question (``import caw`` imports no provider module, and no pydantic).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from caw.errors import UnknownProviderError
from caw.limits.markers import register_markers

if TYPE_CHECKING:
    from caw.providers.base import Provider

_lock = threading.RLock()
_REGISTRY: dict[str, Provider] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    """Register claude, codex and opencode, once, before any other provider (the registration order)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
        from caw.providers.claude import ClaudeProvider
        from caw.providers.codex import CodexProvider
        from caw.providers.opencode import OpencodeProvider

        for builtin in (ClaudeProvider(), CodexProvider(), OpencodeProvider()):
            register(builtin)


def register(provider: Provider) -> None:
    """Add (or replace) a provider, under its ``name`` and its ``aliases``.

    >>> from caw.providers import register            # doctest: +SKIP
    >>> register(MyProvider())                        # doctest: +SKIP
    """
    _load_builtins()
    register_markers(provider.name, provider.limit_markers)
    with _lock:
        _REGISTRY[provider.name] = provider


def canonical_name(name: str) -> str | None:
    """The registered name for ``name`` or one of its aliases (case-insensitive), or None when unknown."""
    key = name.strip().lower()
    _load_builtins()
    with _lock:
        if key in _REGISTRY:
            return key
        for provider in _REGISTRY.values():
            if key in provider.aliases:
                return provider.name
    return None


def get_provider(name: str) -> Provider:
    """The provider called ``name`` (aliases accepted). Raises UnknownProviderError."""
    canonical = canonical_name(name)
    with _lock:
        found = _REGISTRY.get(canonical) if canonical else None
    if found is None:
        raise UnknownProviderError(name, available_names())
    return found


def available_names() -> tuple[str, ...]:
    """Registered provider names, in registration order (the built-ins first: claude, codex, opencode)."""
    _load_builtins()
    with _lock:
        return tuple(_REGISTRY)
