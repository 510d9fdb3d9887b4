"""``Agent.check_limit()`` tells the truth about a limit caw never recorded (issue 13), on the real CLIs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import caw
from caw.state.ledger import CooldownStore
from tests.e2e.harness import HARNESSES, Multi, load_harnesses, start_multi
from tests.fakes.replies import Text

load_harnesses()
NAMES = ["claude", "codex"]


@pytest.fixture
def multi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Multi]:
    m = start_multi(NAMES, tmp_path, monkeypatch, flags={"claude": {"oauth": True}})
    yield m
    for s in m.servers.values():
        s.stop()


def _agent(m: Multi, name: str) -> caw.Agent:
    return caw.Agent(provider=name, cwd=str(m.work), **HARNESSES[name].agent_kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_check_limit_probes_a_limit_caw_never_recorded(multi: Multi, name: str) -> None:
    reset = int(time.time()) + 2 * 3600
    limited = HARNESSES[name].rate_limited
    assert limited is not None
    assert CooldownStore.default().until(name) is None  # nothing remembered: only the probe can know
    assert _agent(multi, name).check_limit(probe=False) is None
    multi.servers[name].enqueue(limited(reset))
    minutes = _agent(multi, name).check_limit()
    assert minutes is not None and 100 <= minutes <= 121
    assert len(multi.servers[name].model_requests) >= 1
    # the probe's finding is remembered: the next question is free
    asked = len(multi.servers[name].model_requests)
    assert _agent(multi, name).check_limit() in (minutes - 1, minutes)
    assert len(multi.servers[name].model_requests) == asked


@pytest.mark.parametrize("name", NAMES)
def test_check_limit_is_none_only_when_the_provider_answered(multi: Multi, name: str) -> None:
    multi.servers[name].enqueue(Text("ok"))
    assert _agent(multi, name).check_limit() is None
    assert len(multi.servers[name].model_requests) >= 1
