"""Agent options that are refused rather than silently ignored, and options that mean the same thing."""

from __future__ import annotations

import pytest

import caw
from caw.agent import AgentSpec


def test_stateless_tools_are_served_and_unusable_ones_refused() -> None:
    # issue 15: served as the ``caw`` tool server; a builtin with positional-only parameters has no names
    with pytest.raises(caw.ConfigurationError, match="positional-only"):
        caw.Agent(provider="claude", stateless_tools=[len])
    assert caw.Agent(provider="claude", stateless_tools=[]).stateless_tools == []

    def ping(text: str) -> str:
        return text

    setup = caw.Agent(provider="claude", stateless_tools=[ping])._setup(None)
    assert [(s.name, [t.name for t in s.tools]) for s in setup.tool_servers] == [("caw", ["ping"])]


def test_add_subagent_offers_a_tool_and_refuses_a_bad_name() -> None:
    agent = caw.Agent(provider="claude")
    agent.add_subagent(AgentSpec(name="helper"))
    assert [t.name for s in agent._setup(None).tool_servers for t in s.tools] == ["helper"]
    with pytest.raises(caw.ConfigurationError, match="tool name"):
        agent.add_subagent(AgentSpec(name="no spaces please"))
    # nesting is bounded: at the depth limit the subagent tools are not offered
    deep = caw.Agent(provider="claude", subagent_depth=2, max_subagent_depth=2)
    deep.add_subagent(AgentSpec(name="helper"))
    assert deep._setup(None).tool_servers == []


def test_max_wait_zero_is_auto_wait_off() -> None:
    off = caw.Agent(provider="claude", auto_wait=False)._setup(None)
    zero = caw.Agent(provider="claude", max_wait=0)._setup(None)
    assert off.limit_waiter is None and zero.limit_waiter is None
    assert caw.Agent(provider="claude", max_wait=60)._setup(None).limit_waiter is not None
