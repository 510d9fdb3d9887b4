"""Provider order: which providers a run tries, in which order (names checked against the registry).

Resolution: an explicit list given to the Agent > the global order (``set_provider_order``) >
``CAW_PROVIDER`` (a name or a comma-separated list) > the default order. Names are checked when the order
is built (unknown, empty, duplicates raise ``ConfigurationError``), so a typo fails at construction, not
in the middle of a CI job.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping

from caw.errors import ConfigurationError, UnknownProviderError
from caw.providers.registry import available_names, canonical_name

#: the contract's default: the first installed one answers, the others are its fallback
DEFAULT_ORDER: tuple[str, ...] = ("claude", "codex", "opencode")

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
        raise ConfigurationError("the provider order is empty; name at least one of: " + ", ".join(available_names()))
    out: list[str] = []
    for item in items:
        canonical = canonical_name(item)
        if canonical is None:
            raise UnknownProviderError(item, available_names())
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
                raise UnknownProviderError(name, available_names())
            clean_models[canonical] = model
        _global_order, _global_models = resolved, clean_models


def get_provider_order() -> list[str] | None:
    """The global order set by ``set_provider_order``, or None.

    >>> set_provider_order(["codex", "claude"])
    >>> get_provider_order()
    ['codex', 'claude']
    >>> set_provider_order(None)
    >>> get_provider_order() is None
    True
    """
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
