"""The public API is what __all__ says (the layers are checked in test_layers.py)."""

from __future__ import annotations

import caw


def test_all_names_exist_and_are_public() -> None:
    for name in caw.__all__:
        assert hasattr(caw, name), name
    for required in (
        "Agent",
        "Session",
        "Trajectory",
        "Turn",
        "UsageStats",
        "ToolGroup",
        "ModelTier",
        "MCPServer",
        "set_provider_order",
        "get_provider_order",
        "list_sessions",
        "InvalidResumeHandle",
        "UsageLimitError",
        "AllProvidersFailed",
        "ConversationNotFound",
    ):
        assert required in caw.__all__, required
