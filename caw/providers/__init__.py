"""Provider adapters: one small class per CLI (argv/env building and line -> event parsing)."""

from __future__ import annotations

from caw.errors import UnknownProviderError
from caw.providers.base import Invocation, Provider, RunConfig, TurnParser, TurnRequest
from caw.providers.claude import ClaudeProvider
from caw.providers.codex import CodexProvider
from caw.providers.names import PROVIDER_NAMES, canonical_name
from caw.providers.opencode import OpencodeProvider

_REGISTRY: dict[str, Provider] = {"claude": ClaudeProvider(), "codex": CodexProvider(), "opencode": OpencodeProvider()}


def register(provider: Provider) -> None:
    """Add (or replace) a provider; the built-ins register through this same path."""
    _REGISTRY[provider.name] = provider


def get_provider(name: str) -> Provider:
    """The provider called ``name`` (aliases accepted). Raises UnknownProviderError."""
    canonical = canonical_name(name) or name
    try:
        return _REGISTRY[canonical]
    except KeyError:
        raise UnknownProviderError(name, PROVIDER_NAMES) from None


def available_names() -> tuple[str, ...]:
    return tuple(n for n in PROVIDER_NAMES if n in _REGISTRY) + tuple(n for n in _REGISTRY if n not in PROVIDER_NAMES)


__all__ = [
    "Invocation",
    "Provider",
    "RunConfig",
    "TurnParser",
    "TurnRequest",
    "available_names",
    "get_provider",
    "register",
]
