"""Providers: one class per CLI that owns everything about it.

A ``Provider`` holds its CLI's argv and environment, its stdout parser, its interactive command, its
credential signal and config home, its install and login hints and its limit markers. The registry
(``register``, ``get_provider``) is the only way the layers above find one; the built-ins register there
through the same call a user's fourth provider uses.

May import: ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text``, ``caw.limits``, ``caw.state``,
``caw.transport`` (never the session, policy, agent or cli layers).

Importing the package registers only the built-ins' limit markers (``markers``, data); the provider
classes load on the registry's first question, and the names below on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from caw.lazy import lazy_exports
from caw.providers.markers import register_builtin_markers
from caw.providers.registry import available_names, canonical_name, get_provider, register

if TYPE_CHECKING:
    from caw.providers.base import Invocation, Provider, RunConfig, TurnParser, TurnRequest

register_builtin_markers()

__all__ = [
    "Invocation",
    "Provider",
    "RunConfig",
    "TurnParser",
    "TurnRequest",
    "available_names",
    "canonical_name",
    "get_provider",
    "register",
]

_LAZY = {name: "caw.providers.base" for name in ("Invocation", "Provider", "RunConfig", "TurnParser", "TurnRequest")}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
