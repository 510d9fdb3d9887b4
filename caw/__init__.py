"""caw: one dependable interface over the coding-agent CLIs you already have (claude, codex, opencode).

>>> import caw                                              # doctest: +SKIP
>>> caw.Agent(provider="claude").completion("Say hi").result  # doctest: +SKIP

Every public name resolves on first use (PEP 562), so ``import caw`` costs milliseconds: ``caw.errors``
is plain Python, and ``caw.Agent`` brings in pydantic, the providers and the transport only when asked.
The ``TYPE_CHECKING`` imports below give mypy and IDEs every name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import caw.providers  # noqa: F401  registers the built-ins' limit markers (data only), for detect_limit's guess
from caw.lazy import lazy_exports

if TYPE_CHECKING:
    from caw.agent import Agent, AgentSpec
    from caw.batches import AsyncBatch, Batch, BatchError, BatchResult, BatchTask, abatch, batch
    from caw.errors import (
        AllProvidersFailed,
        AuthenticationError,
        BudgetExceeded,
        CawError,
        CawTimeoutError,
        ConfigurationError,
        ContextOverflowError,
        ConversationNotFound,
        FirstOutputTimeout,
        IdleTimeout,
        InvalidResumeHandle,
        ProviderCrashed,
        ProviderError,
        ProviderNotInstalled,
        ProviderUnavailable,
        SessionRecordCorrupt,
        SessionStateError,
        StorageError,
        StructuredOutputError,
        TurnCancelled,
        TurnFailed,
        TurnTimeout,
        UnknownProviderError,
        UsageLimitError,
    )
    from caw.events import Event, event_json_schema
    from caw.interactive import InteractiveResult
    from caw.limits import UsageLimit, detect_limit
    from caw.models import (
        Attempt,
        MCPServer,
        ModelTier,
        TextBlock,
        ThinkingBlock,
        ToolGroup,
        ToolUse,
        Trajectory,
        Turn,
        UsageStats,
    )
    from caw.providers.order import get_provider_order, set_provider_order
    from caw.session import AsyncTurnStream, Session, TurnStream
    from caw.state.store import list_sessions
    from caw.tools.functions import tool
    from caw.tools.toolkit import ToolKit, ToolServer
    from caw.version import __version__
    from caw.viewer.html import write_report

__all__ = [
    "Agent",
    "AgentSpec",
    "AllProvidersFailed",
    "AsyncBatch",
    "AsyncTurnStream",
    "Attempt",
    "AuthenticationError",
    "Batch",
    "BatchError",
    "BatchResult",
    "BatchTask",
    "BudgetExceeded",
    "CawError",
    "CawTimeoutError",
    "ConfigurationError",
    "ContextOverflowError",
    "ConversationNotFound",
    "Event",
    "FirstOutputTimeout",
    "IdleTimeout",
    "InteractiveResult",
    "InvalidResumeHandle",
    "MCPServer",
    "ModelTier",
    "ProviderCrashed",
    "ProviderError",
    "ProviderNotInstalled",
    "ProviderUnavailable",
    "Session",
    "SessionRecordCorrupt",
    "SessionStateError",
    "StorageError",
    "StructuredOutputError",
    "TextBlock",
    "ThinkingBlock",
    "ToolGroup",
    "ToolKit",
    "ToolServer",
    "ToolUse",
    "Trajectory",
    "Turn",
    "TurnCancelled",
    "TurnFailed",
    "TurnStream",
    "TurnTimeout",
    "UnknownProviderError",
    "UsageLimit",
    "UsageLimitError",
    "UsageStats",
    "__version__",
    "abatch",
    "batch",
    "detect_limit",
    "event_json_schema",
    "get_provider_order",
    "list_sessions",
    "set_provider_order",
    "tool",
    "write_report",
]

#: each public name and the module it lives in
_HOMES: dict[str, str] = {
    "Agent": "caw.agent",
    "AgentSpec": "caw.agent",
    "AsyncBatch": "caw.batches",
    "Batch": "caw.batches",
    "BatchError": "caw.batches",
    "BatchResult": "caw.batches",
    "BatchTask": "caw.batches",
    "abatch": "caw.batches",
    "batch": "caw.batches",
    "AllProvidersFailed": "caw.errors",
    "AuthenticationError": "caw.errors",
    "BudgetExceeded": "caw.errors",
    "CawError": "caw.errors",
    "CawTimeoutError": "caw.errors",
    "ConfigurationError": "caw.errors",
    "ContextOverflowError": "caw.errors",
    "ConversationNotFound": "caw.errors",
    "FirstOutputTimeout": "caw.errors",
    "IdleTimeout": "caw.errors",
    "InvalidResumeHandle": "caw.errors",
    "ProviderCrashed": "caw.errors",
    "ProviderError": "caw.errors",
    "ProviderNotInstalled": "caw.errors",
    "ProviderUnavailable": "caw.errors",
    "SessionRecordCorrupt": "caw.errors",
    "SessionStateError": "caw.errors",
    "StorageError": "caw.errors",
    "StructuredOutputError": "caw.errors",
    "TurnCancelled": "caw.errors",
    "TurnFailed": "caw.errors",
    "TurnTimeout": "caw.errors",
    "UnknownProviderError": "caw.errors",
    "UsageLimitError": "caw.errors",
    "Event": "caw.events",
    "event_json_schema": "caw.events",
    "InteractiveResult": "caw.interactive",
    "UsageLimit": "caw.limits.detect",
    "detect_limit": "caw.limits.detect",
    "Attempt": "caw.models",
    "MCPServer": "caw.models",
    "ModelTier": "caw.models",
    "TextBlock": "caw.models",
    "ThinkingBlock": "caw.models",
    "ToolGroup": "caw.models",
    "ToolUse": "caw.models",
    "Trajectory": "caw.models",
    "Turn": "caw.models",
    "UsageStats": "caw.models",
    "get_provider_order": "caw.providers.order",
    "set_provider_order": "caw.providers.order",
    "AsyncTurnStream": "caw.session",
    "Session": "caw.session",
    "TurnStream": "caw.session",
    "list_sessions": "caw.state.store",
    "tool": "caw.tools.functions",
    "ToolKit": "caw.tools.toolkit",
    "ToolServer": "caw.tools.toolkit",
    "__version__": "caw.version",
    "write_report": "caw.viewer.html",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
