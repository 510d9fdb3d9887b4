"""What ``caw.Agent`` refuses or accepts at construction: tools, reasoning, a bare session id (issue 12.13)."""

from __future__ import annotations

from pathlib import Path

import pytest

import caw
from caw.errors import ConfigurationError, InvalidResumeHandle, SessionNotFound, SessionStateError
from caw.models import REASONING_EFFORTS, ToolGroup


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CAW_EFFORT", "CAW_PROVIDER", "CAW_MODEL"):
        monkeypatch.delenv(var, raising=False)


def test_tools_take_the_clis_spelling() -> None:
    assert caw.Agent(tools="reader").tools == ToolGroup.READER
    assert caw.Agent(tools="reader,exec").tools == ToolGroup.READER | ToolGroup.EXEC
    assert caw.Agent(tools="all,-web").tools == ToolGroup.ALL - ToolGroup.WEB
    agent = caw.Agent()
    agent.set_tools("writer")
    assert agent.tools == ToolGroup.WRITER
    assert caw.Agent(tools=ToolGroup.EXEC).tools == ToolGroup.EXEC and caw.Agent().tools is None


@pytest.mark.parametrize("tools", ["readers", ["reader"], 3])
def test_tools_that_are_no_tool_group_are_a_configuration_error_not_a_type_error(tools: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        caw.Agent(tools=tools)  # type: ignore[arg-type]
    assert "reader" in str(info.value)  # the message says what is valid


def test_a_per_call_tools_string_is_parsed_too(tmp_path: Path) -> None:
    session = caw.Agent(data_dir=tmp_path).start_session(tools="exec")
    assert session.trajectory is not None
    with pytest.raises(ConfigurationError):
        caw.Agent(data_dir=tmp_path).start_session(tools="bogus")


def test_reasoning_is_checked_against_the_efforts_the_clis_take(monkeypatch: pytest.MonkeyPatch) -> None:
    assert caw.Agent(reasoning="High").reasoning == "high"
    for effort in REASONING_EFFORTS:
        assert caw.Agent(reasoning=effort).reasoning == effort
    with pytest.raises(ConfigurationError) as info:
        caw.Agent(reasoning="hgih")
    assert "'hgih'" in str(info.value) and "low, medium, high" in str(info.value)
    with pytest.raises(ConfigurationError):
        caw.Agent().set_reasoning("ultra-max")
    monkeypatch.setenv("CAW_EFFORT", "loud")
    with pytest.raises(ConfigurationError) as info:
        caw.Agent()
    assert "CAW_EFFORT='loud'" in str(info.value)


def test_a_bare_session_id_that_is_not_in_the_data_dir_says_so(tmp_path: Path) -> None:
    with pytest.raises(SessionNotFound) as info:
        caw.Agent(data_dir=tmp_path).resume_session("3f2a9c1b77")
    assert str(info.value) == f"no session '3f2a9c1b77' in {tmp_path}"
    assert isinstance(info.value, SessionStateError) and not isinstance(info.value, InvalidResumeHandle)
    assert info.value.session_id == "3f2a9c1b77" and info.value.data_dir == str(tmp_path)
