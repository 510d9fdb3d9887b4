"""Issue 17: concurrent first starts of opencode in one fresh data home.

opencode 1.18.33 migrates its SQLite database on the first start in a data home; twelve at once made most
of them fail ("Failed query: CREATE TABLE ..."). caw holds a lock per data home from the spawn to the
CLI's first output while no first start has finished there, so every run answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from caw.providers.opencode import FIRST_START_MARKER
from tests.e2e.harness import LiveFactory, live_factory
from tests.e2e.harness_opencode import OPENCODE
from tests.fakes.replies import Text

assert OPENCODE.name == "opencode"  # the harness module registered itself

RUNS = 12


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory("opencode", tmp_path, monkeypatch)


def test_twelve_concurrent_first_runs_all_answer(live: LiveFactory) -> None:
    run = live()
    run.server.default = Text("hello from the fake")
    data = Path(run.env["XDG_DATA_HOME"]) / "opencode"
    assert not (data / "opencode.db").exists()  # a fresh home: every run below is a first start
    agent = run.agent(timeout=600)

    def one(i: int) -> str:
        return agent.completion(f"Say hello {i}").result

    with ThreadPoolExecutor(RUNS) as pool:
        answers = list(pool.map(one, range(RUNS)))
    assert answers == ["hello from the fake"] * RUNS
    assert (data / FIRST_START_MARKER).exists()
    assert run.server.non_loopback_attempts() == []
