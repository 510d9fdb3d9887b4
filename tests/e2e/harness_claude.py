"""The claude harness: AnthropicFake + claude's offline env (OAuth env for the subscription limit path)."""

from __future__ import annotations

from tests.e2e.harness import Harness, register
from tests.fakes.anthropic import AnthropicFake
from tests.fakes.env import claude_env
from tests.fakes.replies import Error, anthropic_rate_limited

CLAUDE = register(
    Harness(
        name="claude",
        fake=AnthropicFake,
        env=claude_env,
        rate_limited=lambda epoch: anthropic_rate_limited(epoch, claim="five_hour"),
        # only the subscription (OAuth) path reports resetsAt and skips the CLI's own retries
        rate_limit_env={"oauth": True},
        auth_error=lambda: Error(401, message="invalid x-api-key", type="authentication_error"),
    )
)
