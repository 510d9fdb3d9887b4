"""Agent options that are refused rather than silently ignored, and options that mean the same thing."""

from __future__ import annotations

import pytest

import caw
from caw.agent import AgentSpec


def test_stateless_tools_are_refused_until_caw_can_serve_them() -> None:
    with pytest.raises(caw.ConfigurationError, match="stateless_tools"):
        caw.Agent(provider="claude", stateless_tools=[len])
    assert caw.Agent(provider="claude", stateless_tools=[]).stateless_tools == []


def test_add_subagent_is_refused_until_caw_can_serve_tools() -> None:
    with pytest.raises(caw.ConfigurationError, match="subagents"):
        caw.Agent(provider="claude").add_subagent(AgentSpec(name="helper"))


def test_max_wait_zero_is_auto_wait_off() -> None:
    off = caw.Agent(provider="claude", auto_wait=False)._setup(None)
    zero = caw.Agent(provider="claude", max_wait=0)._setup(None)
    assert off.limit_waiter is None and zero.limit_waiter is None
    assert caw.Agent(provider="claude", max_wait=60)._setup(None).limit_waiter is not None
