"""The built-in providers' limit markers, as data: wording only one CLI prints, for the detector's guess.

Kept apart from the provider classes so that ``import caw`` registers them (``register_builtin_markers``)
without importing a provider, its parser or pydantic: ``caw.detect_limit`` then names the CLI behind a
message at the cost of three regex compilations. Each built-in class declares its tuple from here
as ``limit_markers``, and registering the provider registers it again (it keeps its place). A fourth
provider needs nothing here: its ``limit_markers`` register with it.

May import: ``caw.limits.markers`` only.
"""

from __future__ import annotations

from caw.limits.markers import register_markers

CLAUDE_MARKERS: tuple[str, ...] = (
    r"\bclaude\b", "anthropic", "/extra-usage", r"/upgrade\b", "/usage-credits", r"\brequest\s+rejected\s*\(429\)",
    r"\brate_limit_error\b", r"\b(?:opus|sonnet)\b", r"·\s*resets\b", r"\b5-hour\s+limit", r"\brate_limit_event\b",
    "isusingoverage", r"\bcredit\s+balance\s+(?:is\s+)?too\s+low", r"\btemporarily\s+limiting\s+requests",
    r"\bhit\s+your\s+(?:session\s+|weekly\s+)?limit\b",
    r"\bextra[\s-]usage\b", r"\busage[\s-]credits?\b", r"\bseat\s+type\b", r"\busage\s+allocation\b", r"\bfable\b",
    r"\bout\s+of\s+usage\b", r"\bgroup's\s+usage\s+limit\b", r"\bdisabled\s+for\s+your\s+org\b",
    r"\bspend\s+limit\b", r"\bit\s+resets\b", r"\busage\s+limit(?:\s+reached)?\s*·", r"\bgrace\s+window\b",
)  # fmt: skip
CODEX_MARKERS: tuple[str, ...] = (
    r"\bcodex\b", "chatgpt", r"\b(?:try|retry)\s+again\s+at\b", r"\bplan_type\b", r"\busage_limit_reached\b",
    r"\busage_not_included\b", r"\bexceeded\s+retry\s+limit\b", r"\bspend\s+cap\b",
    r"\bworkspace\s+is\s+out\s+of\s+credits", r"\bquota\s+exceeded\.\s*check\s+your\s+plan",
    r"\bhit\s+your\s+usage\s+limit(?:\.(?!\s*it\s+resets\b)|\s+for\b)",
)  # fmt: skip
OPENCODE_MARKERS: tuple[str, ...] = (
    "opencode", "freeusagelimiterror", r"\bfree\s+usage\s+exceeded", r"\bsubscribe\s+to\s+go\b",
    r"\bretrying\s+in\b", r"\bzen\b", r"\bapierror\b", r"\bisretryable\b", r"\bit\s+will\s+reset\s+in\b",
)  # fmt: skip

#: registration order matters: the newest is checked first, and opencode wraps the others' messages
BUILTIN_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("claude", CLAUDE_MARKERS),
    ("codex", CODEX_MARKERS),
    ("opencode", OPENCODE_MARKERS),
)


def register_builtin_markers() -> None:
    """Register the built-in providers' markers, in the order the providers register."""
    for name, patterns in BUILTIN_MARKERS:
        register_markers(name, patterns)
