"""Providers: one class per CLI that owns everything about it.

A ``Provider`` holds its CLI's argv and environment, its stdout parser, its interactive command, its
credential signal and config home, its install and login hints and its limit markers. The registry
(``register``, ``get_provider``) is the only way the layers above find one; the built-ins register here
through the same call a user's fourth provider uses.

May import: ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text``, ``caw.limits``, ``caw.state``,
``caw.transport`` (never the session, policy, agent or cli layers).
"""

from __future__ import annotations

from caw.providers.base import Invocation, Provider, RunConfig, TurnParser, TurnRequest
from caw.providers.claude import ClaudeProvider
from caw.providers.codex import CodexProvider
from caw.providers.opencode import OpencodeProvider
from caw.providers.registry import available_names, canonical_name, get_provider, register

for _builtin in (ClaudeProvider(), CodexProvider(), OpencodeProvider()):
    register(_builtin)

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
