"""How to run each real CLI once against its fake: argv, env, prompt on stdin, session ids.

Shared by the e2e smoke tests and `scripts/record_fixtures.py`. The prompt always goes through a
stdin pipe that is then closed (an open stdin hangs all three CLIs); output is captured raw.

    with AnthropicFake() as srv:
        run = run_cli("claude", srv, tmp_path, "Say hello.")
        assert run.returncode == 0 and run.events()[-1]["type"] == "result"
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.anthropic import AnthropicFake
from tests.fakes.base import FakeModelServer
from tests.fakes.env import CODEX_OFFLINE_ARGS, claude_env, cli_path, codex_env, full_env, opencode_env
from tests.fakes.openai_chat import ChatFake
from tests.fakes.openai_responses import ResponsesFake


@dataclass(frozen=True)
class CliSpec:
    """One CLI: its fake, env builder, JSON-output argv and session handling."""

    name: str
    fake_cls: type[FakeModelServer]
    build_env: Callable[..., dict[str, str]]
    base_args: tuple[str, ...]
    trailing_args: tuple[str, ...]  # after the extra args (codex's `-` = prompt from stdin)
    default_model_args: tuple[str, ...] = ()  # used unless the extra args pick a model

    def argv(self, extra_args: Sequence[str] = ()) -> list[str]:
        model = () if {"-m", "--model"} & set(extra_args) else self.default_model_args
        return [str(cli_path(self.name)), *self.base_args, *model, *extra_args, *self.trailing_args]

    def resume_args(self, session_id: str) -> list[str]:
        if self.name == "claude":
            return ["--resume", session_id]
        if self.name == "codex":
            return ["resume", session_id]
        return ["--session", session_id]

    def session_id(self, stdout: bytes) -> str | None:
        """The session/thread id printed in a JSON event stream."""
        for event in parse_events(stdout):
            if self.name == "claude" and event.get("type") == "system" and "session_id" in event:
                return str(event["session_id"])
            if self.name == "codex" and event.get("type") == "thread.started":
                return str(event["thread_id"])
            if self.name == "opencode" and "sessionID" in event:
                return str(event["sessionID"])
        return None


SPECS: dict[str, CliSpec] = {
    "claude": CliSpec("claude", AnthropicFake, claude_env, ("-p", "--output-format", "stream-json", "--verbose"), ()),
    # `-` reads the prompt from stdin; `resume <id>` must come before it
    "codex": CliSpec("codex", ResponsesFake, codex_env, ("exec", "--json", *CODEX_OFFLINE_ARGS), ("-",)),
    # --title skips the separate title-generation request (one model call per turn, 0.3-1 s faster)
    "opencode": CliSpec(
        "opencode", ChatFake, opencode_env, ("run", "--format", "json", "--title", "t"), (), ("-m", "fake/text")
    ),
}


@dataclass(frozen=True)
class CliRun:
    """Raw result of one CLI process."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    duration_s: float

    def events(self) -> list[dict[str, Any]]:
        return parse_events(self.stdout)


def parse_events(stdout: bytes) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines stdout (non-JSON lines skipped)."""
    events: list[dict[str, Any]] = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def run_cli(
    provider: str,
    fake: FakeModelServer,
    root: Path,
    prompt: str,
    extra_args: Sequence[str] = (),
    *,
    env_overrides: dict[str, str] | None = None,
    timeout: float = 180,
    **env_kw: Any,
) -> CliRun:
    """Run `provider`'s CLI once in `root/work` with the offline env for `fake` (kwargs go to the
    env builder, e.g. `oauth=True`, `stream_max_retries=1`)."""
    spec = SPECS[provider]
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = full_env(spec.build_env(fake.url, root, **env_kw))
    env.update(env_overrides or {})
    argv = spec.argv(extra_args)
    start = time.monotonic()
    proc = subprocess.run(argv, input=prompt.encode(), env=env, cwd=work, capture_output=True, timeout=timeout)
    return CliRun(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
