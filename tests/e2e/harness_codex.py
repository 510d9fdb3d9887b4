"""The codex harness: ResponsesFake + a throwaway CODEX_HOME whose config.toml points at it.

One request-level retry (`request_max_retries = 1`) so the "transient error" row's 500 is retried; no
stream-level retries, because codex retries a 401 at the stream level (`Reconnecting... n/N`) and the
retry would get the fake's default answer instead of the auth failure. Error rows finish in about a second.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import Harness, register
from tests.fakes.env import CODEX_MODEL, codex_env
from tests.fakes.openai_responses import ResponsesFake
from tests.fakes.replies import auth_error, codex_usage_limit


def codex_harness_env(url: str, root: Path, **flags: int) -> dict[str, str]:
    return codex_env(url, root, **{"stream_max_retries": 0, "request_max_retries": 1, **flags})


CODEX = register(
    Harness(
        name="codex",
        fake=ResponsesFake,
        env=codex_harness_env,
        # passed with -m on every turn (codex does not remember a thread's model)
        agent_kwargs={"model": CODEX_MODEL},
        # the ChatGPT-plan usage limit: no retry, reset time only in the text ("try again at 4:00 AM")
        rate_limited=lambda epoch: codex_usage_limit(epoch, plan_type="plus"),
        auth_error=lambda: auth_error("Invalid API key (fake)"),
        reasoning_kwargs={"reasoning": "high"},
    )
)
