"""The event-level watchdogs on a real pty (issue 12 item 7, issue 17): a fake CLI that keeps printing."""

from __future__ import annotations

import time

import pytest

import caw
from tests.integration.fake_cli import init, result, text


def agent(**kw: object) -> caw.Agent:
    return caw.Agent(provider="claude", auto_wait=False, stop_grace=1.0, **kw)  # type: ignore[arg-type]


def api_retry(attempt: int) -> dict[str, object]:
    return {
        "type": "system",
        "subtype": "api_retry",
        "attempt": attempt,
        "max_retries": 1000,
        "retry_delay_ms": 200,
        "error_status": 529,
        "error": "overloaded_error",
    }


def test_a_cli_that_only_retries_is_stopped_although_it_never_goes_quiet(fake_cli) -> None:  # type: ignore[no-untyped-def]
    # a retry line every 0.2 s: the idle watchdog (0.5 s) never fires, the turn would run forever
    fake_cli([{"json": init()}] + [x for n in range(300) for x in ({"json": api_retry(n)}, {"sleep": 0.2})])
    started = time.monotonic()
    with pytest.raises(caw.ProviderUnavailable) as info:
        agent(transient_timeout=1.5, idle_timeout=0.5).completion("hi")
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 10
    err = info.value
    assert err.provider == "claude" and err.kind == "server" and err.retries >= 5
    assert "overloaded_error" in err.detail
    assert err.turn is not None and err.turn.status == "failed" and err.turn.retries >= 5
    assert err.turn.error is not None and err.turn.error.reason == "unavailable"


def test_retries_that_end_in_an_answer_are_not_cut(fake_cli) -> None:  # type: ignore[no-untyped-def]
    retrying = [{"json": init()}, {"json": api_retry(1)}, {"sleep": 0.3}, {"json": api_retry(2)}, {"sleep": 0.3}]
    fake_cli([*retrying, {"json": text("made it")}, {"sleep": 1.5}, {"json": result("made it")}])
    assert agent(transient_timeout=1.0).completion("hi").result == "made it"


def test_a_startup_line_and_then_nothing_is_a_first_output_timeout(fake_cli) -> None:  # type: ignore[no-untyped-def]
    # issue 17: the CLI announces its session, then the model server never answers
    fake_cli([{"json": init()}, {"sleep": 30}])
    started = time.monotonic()
    with pytest.raises(caw.FirstOutputTimeout, match="no answer within 1s") as info:
        agent(first_output_timeout=1.0).completion("hi")
    assert time.monotonic() - started < 10
    assert info.value.turn is not None and info.value.turn.status == "timeout"


def test_retrying_a_limit_the_cli_reported_is_that_usage_limit(fake_cli) -> None:  # type: ignore[no-untyped-def]
    # claude reports the rejected limit with its reset time, then keeps retrying on its own
    reset = int(time.time()) + 3600
    info = {"status": "rejected", "rateLimitType": "five_hour", "resetsAt": reset}
    limit = {"type": "rate_limit_event", "rate_limit_info": info}
    retries = [x for n in range(300) for x in ({"json": api_retry(n)}, {"sleep": 0.2})]
    fake_cli([{"json": init()}, {"json": limit}, *retries])
    with pytest.raises(caw.UsageLimitError) as raised:
        agent(transient_timeout=1.0).completion("hi")
    err = raised.value
    assert err.resets_at is not None and int(err.resets_at.timestamp()) == reset and err.waitable
    assert err.turn is not None and err.turn.status == "rate_limited"
