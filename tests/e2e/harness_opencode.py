"""The opencode harness: ChatFake (OpenAI Chat Completions) + opencode's offline env.

opencode retries a 429 five times by itself, sleeping for whatever ``retry-after-ms`` / ``retry-after``
says (without a cap when a header is present), and prints nothing but the final ``error`` event, whose
``responseHeaders`` are those of the *last* response. So the rate-limit reply is six replies for the fake:
five that say "retry in 5 ms" (the retries take milliseconds, not opencode's backoff) and a last one whose
``retry-after`` is the reset time. caw reads ``resets_at`` from those headers, which is the server's own
statement of when to come back: ``reports_reset`` is True. The last ``retry-after`` is an HTTP date rather
than seconds so the expected reset does not drift with opencode's ~5 s (more under load) start-up.
"""

from __future__ import annotations

import dataclasses
import json
from email.utils import formatdate
from pathlib import Path
from typing import Any

from tests.e2e.harness import Harness, register
from tests.fakes.env import opencode_env
from tests.fakes.openai_chat import ChatFake
from tests.fakes.replies import Error, Reply, auth_error

#: tokens of context the fake models claim: the 1 MB prompt row sends ~270k tokens (by the fake's count),
#: and opencode compacts the conversation inside the same run once a reply reports more than the model's
#: context minus its output reserve (the default fake config says 128k): see docs/dev/opencode-notes.md
BIG_CONTEXT = 2_000_000
#: opencode 1.18.33: RETRY_MAX_RETRIES = 5, so one turn makes 1 + 5 requests before giving up
OPENCODE_ATTEMPTS = 6
#: fake-only header: "serve this error to the next N requests" (stripped before it is sent)
REPEAT_HEADER = "x-caw-fake-repeat"
QUICK_RETRY_MS = "5"


class OpencodeChatFake(ChatFake):
    """ChatFake whose ``Error`` replies may carry ``REPEAT_HEADER``: they then answer N requests.

    All but the last copy are told to retry after ``QUICK_RETRY_MS`` (the retry headers of the reply are
    replaced); the last copy keeps the reply's own headers, which is what opencode reports.
    """

    def enqueue(self, *replies: Reply) -> None:
        expanded: list[Reply] = []
        for reply in replies:
            if isinstance(reply, Error) and REPEAT_HEADER in reply.headers:
                headers = {k: v for k, v in reply.headers.items() if k != REPEAT_HEADER}
                quick = {k: v for k, v in headers.items() if not k.startswith("retry-after")}
                quick["retry-after-ms"] = QUICK_RETRY_MS
                copies = int(reply.headers[REPEAT_HEADER])
                expanded += [dataclasses.replace(reply, headers=quick)] * (copies - 1)
                expanded.append(dataclasses.replace(reply, headers=headers))
            else:
                expanded.append(reply)
        super().enqueue(*expanded)


def big_context_env(url: str, root: Path, **flags: Any) -> dict[str, str]:
    """``opencode_env`` with every fake model's context raised to ``BIG_CONTEXT`` tokens, and the npm
    registry pointed at the fake itself: a plugin install that slipped past the stub would show up in the
    fake's log as ``/npm/...`` instead of failing unseen on a closed port."""
    env = opencode_env(url, root, **flags)
    env["NPM_CONFIG_REGISTRY"] = f"{url}/npm/"
    config = json.loads(env["OPENCODE_CONFIG_CONTENT"])
    for model in config["provider"]["fake"]["models"].values():
        model["limit"]["context"] = BIG_CONTEXT
    env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
    return env


def opencode_rate_limited(reset_epoch: int, attempts: int = OPENCODE_ATTEMPTS) -> Error:
    """A 429 that outlasts opencode's own retries; the last answer says to come back at ``reset_epoch``."""
    return Error(
        429,
        message="Rate limit reached for requests.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            REPEAT_HEADER: str(attempts),
            "retry-after": formatdate(reset_epoch, usegmt=True),
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
        },
    )


OPENCODE = register(
    Harness(
        name="opencode",
        fake=OpencodeChatFake,
        env=big_context_env,
        agent_kwargs={"model": "fake/text"},
        rate_limited=opencode_rate_limited,
        reports_reset=True,
        auth_error=lambda: auth_error("Incorrect API key provided: sk-***."),
        # reasoning parts are kept only for a model flagged `reasoning: true` in the fake provider's config
        reasoning_kwargs={"model": "fake/reasoning"},
    )
)
