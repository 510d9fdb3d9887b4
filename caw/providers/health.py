"""Provider health: is the CLI installed, which version, is there any sign of a login, is it cooling down.

``check_health(name)`` answers from the local machine only: the binary on PATH (``Provider.locate``), its
``--version`` (cached), credential *signals* and caw's cooldown memory. A signal says where a login
would come from ("env ANTHROPIC_API_KEY", "file ~/.codex/auth.json"): environment variables are checked
for presence and credential files for existence; caw never reads, prints or stores a secret.

``live=True`` also runs one minimal turn through the real machinery (the same code path as
``Agent.completion``) and reports whether the provider answers, is rate-limited, or rejects the login.
That spends one tiny request, so it is never the default.

    >>> from caw.providers.health import check_all
    >>> for h in check_all():                       # doctest: +SKIP
    ...     print(h.summary())
    claude: ok — 2.1.197 (Claude Code) at /usr/local/bin/claude; credential: env ANTHROPIC_API_KEY
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from caw.errors import ConfigurationError
from caw.providers.base import RunConfig
from caw.providers.order import normalize_order, resolve_order
from caw.providers.records import account_scope
from caw.providers.registry import available_names, canonical_name, get_provider
from caw.state.shared import open_ledger, state_url

LiveStatus = Literal["answers", "rate_limited", "auth_error", "error", "not_installed"]
#: runs one minimal turn: (provider name, its config or None, extra env) -> (status, one-line detail);
#: the agent layer provides it (``caw.agent.live_probe``), so this layer never builds an Agent
LiveProbe = Callable[[str, "RunConfig | None", "Mapping[str, str] | None"], tuple[LiveStatus, str]]

#: what the live probe asks: one word back, no tools, so it costs as little as a turn can
PROBE_PROMPT = "Reply with the single word: ok"
PROBE_TIMEOUT = 60.0


class ProviderHealth(BaseModel):
    """What caw knows about one provider (see ``check_health``)."""

    model_config = ConfigDict(defer_build=True)  # built by the doctor, not by every `caw run` (issue 18)

    provider: str
    installed: bool
    binary: str | None = None
    version: str | None = None
    #: where a login would come from, e.g. "env ANTHROPIC_API_KEY" or "file ~/.claude/.credentials.json"
    credential: str | None = None
    #: a remembered usage limit (cooldown memory) that has not reset yet
    cooldown_until: datetime | None = None
    #: with ``live=True``: what the probe turn found
    live: LiveStatus | None = None
    #: one line: the reset time, the error message, or what the provider replied
    live_detail: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Can answer as far as caw can tell: installed, not cooling down, and (when probed) answering."""
        return self.installed and self.cooldown_until is None and (self.live is None or self.live == "answers")

    @property
    def status(self) -> str:
        """One word or three for the state: ``ok``, ``no login found``, ``cooling down``, ``NOT ok``..."""
        if not self.installed:
            return "not installed"
        if self.live is not None:
            return "ok" if self.live == "answers" and self.cooldown_until is None else "NOT ok"
        if self.cooldown_until is not None:
            return "cooling down"
        return "ok" if self.credential else "no login found"

    def summary(self) -> str:
        """One line for a terminal or a CI log."""
        if not self.installed:
            return f"{self.provider}: not installed"
        parts = [f"{self.version or 'unknown version'} at {self.binary}"]
        parts.append(f"credential: {self.credential or 'none found'}")
        if self.cooldown_until is not None:
            parts.append(f"usage limit until {self.cooldown_until.isoformat(timespec='minutes')}")
        if self.live is not None:
            parts.append(f"live: {self.live}" + (f" ({self.live_detail})" if self.live_detail else ""))
        return f"{self.provider}: {self.status} — " + "; ".join(parts)


# ---- credential signals ------------------------------------------------------------------------------
def credential_signal(provider: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where ``provider``'s CLI would find a login, or None when there is no sign of one
    (``Provider.credential_signal`` of the registered provider; None for a name nobody registered).

    >>> credential_signal("claude", {"ANTHROPIC_API_KEY": "sk-ant-test", "HOME": "/nonexistent"})
    'env ANTHROPIC_API_KEY'
    """
    canonical = canonical_name(provider)
    if canonical is None:
        return None
    return get_provider(canonical).credential_signal(os.environ if env is None else env)


# ---- health ------------------------------------------------------------------------------------------
def _cooldown_until(provider: str, env: Mapping[str, str]) -> datetime | None:
    data_dir = env.get("CAW_DATA_DIR")
    # with CAW_STATE_URL the shared ledger (Redis) is read too: a limit any worker of the fleet saw (issue 19)
    store = open_ledger(
        state_url(env.get("CAW_STATE_URL", "")),
        directory=Path(data_dir) if data_dir else None,
        scope=lambda name: account_scope(get_provider(name), env),
    )
    return store.until(provider)


def check_health(
    provider: str,
    *,
    live: bool = False,
    config: RunConfig | None = None,
    env: Mapping[str, str] | None = None,
    probe: LiveProbe | None = None,
) -> ProviderHealth:
    """Health of one provider. Fast and free unless ``live=True`` (one minimal real turn).

    ``env`` replaces ``os.environ`` for the lookups (PATH, HOME, config homes, credentials); ``config``
    (as built by an Agent) adds its ``env`` on top and gives the live probe its model and working dir.
    ``live=True`` needs ``probe`` (``caw.agent.live_probe``; ``Agent.check_health`` passes it).

    >>> check_health("claude").installed            # doctest: +SKIP
    True
    """
    impl = get_provider(provider)
    merged = {**(os.environ if env is None else env), **(config.env if config is not None else {})}
    binary = impl.locate(merged)
    health = ProviderHealth(
        provider=impl.name,
        installed=binary is not None,
        binary=binary,
        version=impl.version(binary, merged) if binary else None,
        credential=impl.credential_signal(merged),
        cooldown_until=_cooldown_until(impl.name, merged),
    )
    if live:
        if binary is None:
            # a CAW_<NAME>_BIN that names no executable is said so, not reported as missing from PATH
            why = impl.not_installed(merged).reason or f"`{impl.binary_name}` not found on PATH"
            health.live, health.live_detail = "not_installed", why
        else:
            if probe is None:
                raise ConfigurationError("check_health(live=True) needs a probe (caw.agent.live_probe)")
            health.live, health.live_detail = probe(impl.name, config, env)
    return health


def check_all(
    order: Iterable[str] | None = None,
    *,
    live: bool = False,
    env: Mapping[str, str] | None = None,
    probe: LiveProbe | None = None,
) -> list[ProviderHealth]:
    """Health of every known provider: the configured order first (``order`` or the Agent default), then the rest."""
    first = normalize_order(list(order)) if order is not None else resolve_order(None, env)
    names = list(first) + [n for n in available_names() if n not in first]
    return [check_health(name, live=live, env=env, probe=probe) for name in names]


__all__ = [
    "PROBE_PROMPT",
    "LiveProbe",
    "LiveStatus",
    "ProviderHealth",
    "check_all",
    "check_health",
    "credential_signal",
]
