"""caw: one dependable interface over the coding-agent CLIs you already have (claude, codex, opencode).

>>> import caw                                              # doctest: +SKIP
>>> caw.Agent(provider="claude").completion("Say hi").result  # doctest: +SKIP
"""

from caw.agent import Agent, AgentSpec
from caw.errors import (
    AllProvidersFailed,
    AuthenticationError,
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
    SessionStateError,
    StorageError,
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
from caw.version import __version__

__all__ = [
    "Agent",
    "AgentSpec",
    "AllProvidersFailed",
    "AsyncTurnStream",
    "Attempt",
    "AuthenticationError",
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
    "SessionStateError",
    "StorageError",
    "TextBlock",
    "ThinkingBlock",
    "ToolGroup",
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
    "detect_limit",
    "event_json_schema",
    "get_provider_order",
    "list_sessions",
    "set_provider_order",
]
