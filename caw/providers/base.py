"""The Provider contract: how to start a CLI for one turn, and how to read what it prints.

A provider does two jobs and nothing else (no process code here):

* ``build(binary, config, request)`` turns caw's configuration and one user message into an
  ``Invocation``: argv, environment additions, stdin bytes, temp files to delete afterwards;
* ``parser()`` returns a fresh ``TurnParser`` that turns each JSON line of the CLI's stdout into typed
  events, and at the end (``finish``) closes the turn with either a ``ResultEvent`` or a fatal
  ``ErrorEvent``. All knowledge of a CLI's output format lives in its parser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from caw.events import ErrorEvent, Event, RawEvent, ResultEvent
from caw.models import MCPServer, ModelTier, ToolGroup
from caw.text import last_meaningful_line


@dataclass(frozen=True)
class RunConfig:
    """What the user configured, resolved for one provider."""

    model: str | None = None
    reasoning: str | None = None
    system_prompt: str | None = None
    tools: ToolGroup | None = None
    mcp_servers: tuple[MCPServer, ...] = ()
    cwd: str = "."
    env: Mapping[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnRequest:
    """One user message. ``resume_key`` is the provider's conversation id to continue (None: new one);
    ``new_key`` is an id caw proposes for a new conversation (used by CLIs that accept one)."""

    prompt: str
    resume_key: str | None = None
    new_key: str | None = None


@dataclass
class Invocation:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    cwd: str | None = None
    temp_paths: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self.temp_paths:
            try:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                pass


class TurnParser(ABC):
    """Stateful reader of one turn's output. Subclasses implement ``on_json`` and may extend ``finish``."""

    provider: str = ""

    def __init__(self) -> None:
        self.closed = False  # a ResultEvent or a fatal ErrorEvent was emitted
        self.saw_output = False

    def feed(self, obj: dict[str, Any]) -> list[Event]:
        self.saw_output = True
        try:
            events = self.on_json(obj)
        except (KeyError, TypeError, ValueError, AttributeError):
            # a known type whose shape drifted: keep it raw rather than fail the turn
            events = [RawEvent(provider=self.provider, data=obj)]
        for ev in events:
            if isinstance(ev, ResultEvent) or (isinstance(ev, ErrorEvent) and ev.fatal):
                self.closed = True
        return events

    @abstractmethod
    def on_json(self, obj: dict[str, Any]) -> list[Event]: ...

    def on_noise(self, line: str) -> list[Event]:
        """A non-JSON stdout line (already stripped of terminal codes). Default: nothing."""
        return []

    def finish(self, exit_code: int | None, stderr: str) -> list[Event]:
        """Close the turn if the output did not. Default: success on exit 0, a CLI error otherwise."""
        if self.closed:
            return []
        self.closed = True
        if exit_code == 0:
            return [ResultEvent(provider=self.provider)]
        tail = last_meaningful_line(stderr)
        msg = tail or f"{self.provider} exited with code {exit_code} without finishing the turn"
        return [ErrorEvent(provider=self.provider, kind="cli", message=msg)]


class Provider(ABC):
    """One CLI. Subclasses are small: flags, env, and a parser."""

    name: ClassVar[str]
    #: other accepted spellings of ``name`` (lower case), e.g. ``claude_code``
    aliases: ClassVar[tuple[str, ...]] = ()
    binary_name: ClassVar[str]
    #: env var pointing at the CLI's config home (None when the CLI has none)
    config_home_var: ClassVar[str | None] = None
    #: ModelTier -> model string for this CLI
    tiers: ClassVar[dict[ModelTier, str]] = {}

    def locate(self, env: Mapping[str, str] | None = None) -> str | None:
        """The binary to run: ``CAW_<NAME>_BIN`` if set, else the first on PATH. None when missing."""
        env = os.environ if env is None else env
        override = env.get(f"CAW_{self.name.upper()}_BIN")
        if override:
            if os.path.isfile(override) and os.access(override, os.X_OK):
                return override
            found = shutil.which(override, path=env.get("PATH"))
            return found
        return shutil.which(self.binary_name, path=env.get("PATH", os.defpath))

    def executable(self, binary: str) -> list[str]:
        """argv prefix that runs ``binary`` (a provider may skip a wrapper script, see codex)."""
        return [binary]

    def version(self, binary: str, env: Mapping[str, str] | None = None) -> str | None:
        """``<binary> --version``'s first line, or None. Cached per binary path."""
        key = (binary, os.path.getmtime(binary) if os.path.exists(binary) else 0.0)
        if key in _version_cache:
            return _version_cache[key]
        try:
            out = subprocess.run(
                [*self.executable(binary), "--version"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=20,
                env=dict(env) if env is not None else None,
                check=False,
            )
            text = (out.stdout or out.stderr).decode("utf-8", "replace").strip().splitlines()
            result = text[0].strip() if text else None
        except (OSError, subprocess.SubprocessError):
            result = None
        _version_cache[key] = result
        return result

    def resolve_model(self, model: str | ModelTier | None) -> str | None:
        if isinstance(model, ModelTier):
            return self.tiers.get(model)
        return model

    @abstractmethod
    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation: ...

    @abstractmethod
    def parser(self, config: RunConfig | None = None, request: TurnRequest | None = None) -> TurnParser:
        """A fresh parser for one turn. ``config``/``request`` are the turn's (None in fixture replays)."""

    def continuation_prompt(self, original: str) -> str:
        """What to send after a usage-limit wait when the conversation already exists.

        Default: the original message (the CLI did not keep it). Providers whose CLI stores the limited
        prompt in its history override this so the model does not receive the request twice.
        """
        return original

    def config_home(self, env: Mapping[str, str]) -> str | None:
        """The non-default config home the CLI will use, or None for its default."""
        if self.config_home_var is None:
            return None
        return env.get(self.config_home_var) or None


_version_cache: dict[tuple[str, float], str | None] = {}
