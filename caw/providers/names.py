"""Provider names and aliases: the single list every layer agrees on."""

from __future__ import annotations

#: canonical provider names, in caw's default preference order
PROVIDER_NAMES: tuple[str, ...] = ("claude", "codex", "opencode")

#: accepted spellings -> canonical name
ALIASES: dict[str, str] = {
    "claude": "claude",
    "claude_code": "claude",
    "claude-code": "claude",
    "codex": "codex",
    "opencode": "opencode",
}


def canonical_name(name: str) -> str | None:
    """The canonical provider name for ``name`` (case-insensitive), or None when unknown."""
    return ALIASES.get(name.strip().lower())
