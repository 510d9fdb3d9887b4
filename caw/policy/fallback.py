"""First-send failover: which failures move on to the next provider, and the one error when all fail.

Failover happens only on the first send, only for reasons tied to one provider (not installed, auth,
usage limit, crash or timeout before the first turn), never for a user error every provider would hit.
"""

from __future__ import annotations

from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
    CawTimeoutError,
    ProviderCrashed,
    ProviderNotInstalled,
    TurnFailed,
    UsageLimitError,
)
from caw.models import Attempt


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
