"""Smoke test: each real CLI answers from its loopback fake and nothing tries to leave 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.clis import SPECS, run_cli
from tests.fakes.replies import Text

pytestmark = pytest.mark.e2e

PROMPT = "Say hello. MARKER-7f3a"


def _final_text(provider: str, events: list[dict[str, object]]) -> str | None:
    for event in reversed(events):
        if provider == "claude" and event.get("type") == "result":
            return str(event["result"])
        if provider == "codex" and event.get("type") == "item.completed":
            item = event["item"]
            assert isinstance(item, dict)
            return str(item.get("text"))
        if provider == "opencode" and event.get("type") == "text":
            part = event["part"]
            assert isinstance(part, dict)
            return str(part["text"])
    return None


@pytest.mark.parametrize("provider", ["claude", "codex", "opencode"])
def test_real_cli_gets_text_from_its_fake_over_loopback_only(provider: str, tmp_path: Path) -> None:
    with SPECS[provider].fake_cls() as fake:
        fake.enqueue(Text("Hello from the fake model.", chunks=4))
        run = run_cli(provider, fake, tmp_path, PROMPT, timeout=120)
        requests = fake.requests
        model_requests = fake.model_requests
        assert run.returncode == 0, run.stderr.decode()
        assert run.stderr == b""
        assert _final_text(provider, run.events()) == "Hello from the fake model."
        assert len(model_requests) == 1
        assert fake.last_user_text(model_requests[0].body or {}) == PROMPT
        assert fake.non_loopback_attempts() == []
        assert [r.kind for r in requests] == ["model"], [(r.method, r.path) for r in requests]
        assert {r.headers.get("host") for r in requests} == {f"127.0.0.1:{fake.port}"}
