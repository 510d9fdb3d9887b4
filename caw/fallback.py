"""Ordered provider selection and first-send failover.

Order resolution: an explicit list given to the Agent > the global order (``set_provider_order``) >
``CAW_PROVIDER`` (a name or a comma-separated list) > ``"claude"``. Names are checked when the order is
built (unknown, empty, duplicates raise ``ConfigurationError``), so a typo fails at construction, not in
the middle of a CI job.

Failover happens only on the first send, only for reasons tied to one provider (not installed, auth,
usage limit, crash or timeout before the first turn), never for a user error every provider would hit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
    CawTimeoutError,
    ConfigurationError,
    ProviderCrashed,
    ProviderNotInstalled,
    TurnFailed,
    UnknownProviderError,
    UsageLimitError,
)
from caw.models import Attempt
from caw.providers import Provider
from caw.providers.base import RunConfig
from caw.providers.names import PROVIDER_NAMES, canonical_name

DEFAULT_ORDER: tuple[str, ...] = ("claude",)

_global_lock = threading.Lock()
_global_order: tuple[str, ...] | None = None
_global_models: dict[str, str] = {}


def normalize_order(names: str | Iterable[str]) -> tuple[str, ...]:
    """Canonical names in order. Raises ConfigurationError for unknown names, an empty order or duplicates."""
    if isinstance(names, str):
        items = [n for n in (part.strip() for part in names.split(",")) if n]
    else:
        items = [str(n).strip() for n in names]
    if not items:
        raise ConfigurationError("the provider order is empty; name at least one of: " + ", ".join(PROVIDER_NAMES))
    out: list[str] = []
    for item in items:
        canonical = canonical_name(item)
        if canonical is None:
            raise UnknownProviderError(item, PROVIDER_NAMES)
        if canonical in out:
            raise ConfigurationError(f"provider {canonical!r} appears twice in the order {items}")
        out.append(canonical)
    return tuple(out)


def set_provider_order(order: Iterable[str] | str | None, *, models: Mapping[str, str] | None = None) -> None:
    """Set the process-wide provider order (None clears it), optionally with a model per provider.

    >>> set_provider_order(["claude", "codex"], models={"codex": "gpt-5.5"})
    """
    global _global_order, _global_models
    with _global_lock:
        if order is None:
            _global_order, _global_models = None, {}
            return
        resolved = normalize_order(order)
        clean_models: dict[str, str] = {}
        for name, model in (models or {}).items():
            canonical = canonical_name(name)
            if canonical is None:
                raise UnknownProviderError(name, PROVIDER_NAMES)
            clean_models[canonical] = model
        _global_order, _global_models = resolved, clean_models


def get_provider_order() -> list[str] | None:
    """The global order set by ``set_provider_order``, or None."""
    with _global_lock:
        return list(_global_order) if _global_order is not None else None


def global_models() -> dict[str, str]:
    with _global_lock:
        return dict(_global_models)


def resolve_order(provider: str | Iterable[str] | None, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The order for an Agent: explicit > global > CAW_PROVIDER > default ("auto" means not explicit)."""
    env = os.environ if env is None else env
    if provider is not None and not (isinstance(provider, str) and provider.strip().lower() in ("", "auto")):
        return normalize_order(provider)
    glob = get_provider_order()
    if glob:
        return tuple(glob)
    from_env = env.get("CAW_PROVIDER", "").strip()
    if from_env and from_env.lower() != "auto":
        return normalize_order(from_env)
    return DEFAULT_ORDER


@dataclass
class Candidate:
    """A provider in the order with its resolved configuration. The binary is located lazily."""

    provider: Provider
    config: RunConfig
    binary_path: str | None = None
    cli_version: str | None = None
    _located: bool = field(default=False, repr=False)

    def binary(self) -> str | None:
        if not self._located:
            env = {**os.environ, **self.config.env}
            self.binary_path = self.binary_path or self.provider.locate(env)
            self._located = True
        return self.binary_path

    def installed(self) -> bool:
        return self.binary() is not None


def failover_reason(exc: BaseException) -> str | None:
    """Why the next provider should be tried after ``exc`` on a first send, or None to stop and raise."""
    if isinstance(exc, ProviderNotInstalled):
        return "not_installed"
    if isinstance(exc, AuthenticationError):
        return "auth"
    if isinstance(exc, UsageLimitError):
        return "rate_limited"
    if isinstance(exc, ProviderCrashed):
        return "crashed"
    if isinstance(exc, CawTimeoutError):
        return "timeout"
    if isinstance(exc, TurnFailed) and exc.kind in ("server", "unknown", "cli"):
        return "unavailable"
    return None


_REASON_TEXT = {
    "not_installed": "not installed",
    "auth": "not logged in / authentication failed",
    "rate_limited": "rate-limited",
    "crashed": "crashed",
    "timeout": "timed out",
    "unavailable": "API unavailable",
    "cooldown": "cooling down after a usage limit",
}


def all_failed_error(errors: list[Exception], attempts: list[Attempt]) -> AllProvidersFailed:
    """One error that lists every attempt, readable at a glance in a CI log."""
    parts = []
    for a in attempts:
        if a.reason == "answered":
            continue
        line = f"{a.provider}: {_REASON_TEXT.get(a.reason, a.reason)}"
        if a.error:
            line += f" ({a.error})"
        parts.append(line)
    n = len(parts)
    message = f"no provider could answer ({n} tried): " + "; ".join(parts)
    return AllProvidersFailed(message, errors, list(attempts))
