from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import LiveFactory, live_factory, load_harnesses
from tests.fakes.env import CLI_BIN

PROVIDERS = [name for name in ("claude", "codex", "opencode") if name in load_harnesses()]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _pinned_clis_installed() -> None:
    # the end-to-end tier must run, never skip: a missing install is an error the suite reports
    if not (CLI_BIN / "claude").exists():
        pytest.fail(f"the pinned CLIs are not installed in {CLI_BIN}: run scripts/test (it installs them)")


@pytest.fixture(params=PROVIDERS)
def live(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory(request.param, tmp_path, monkeypatch)
