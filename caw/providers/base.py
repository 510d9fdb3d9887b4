"""The Provider contract: everything caw knows about one CLI, in one class.

A provider's required jobs (no process code here):

* ``build(binary, config, request)`` turns caw's configuration and one user message into an
  ``Invocation``: argv, environment additions, stdin bytes, temp files to delete afterwards;
* ``parser()`` returns a fresh ``TurnParser`` that turns each JSON line of the CLI's stdout into typed
  events, and at the end (``finish``) closes the turn with either a ``ResultEvent`` or a fatal
  ``ErrorEvent``. All knowledge of a CLI's output format lives in its parser;
* ``continuation_prompt(original)``: what to send after a usage-limit wait.

And what it may add: ``interactive_command`` (the CLI's own UI, for ``caw chat``), ``credential_signal``
(where a login would come from, for ``caw doctor``), ``install_command`` / ``login_command`` (the hints in
error messages) and ``config_home_var``. The helpers here (``fits_argv``, ``env_signal``, ``file_signal``)
are shared by the built-ins and free for a fourth provider to use.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from caw.errors import ConfigurationError, ProviderNotInstalled
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
    #: the MCP tool the CLI asks before a tool use its rules would prompt for (``can_use_tool``; claude)
    permission_prompt_tool: str | None = None


@dataclass(frozen=True)
class TurnRequest:
    """One user message. ``resume_key`` is the provider's conversation id to continue (None: new one);
    ``new_key`` is an id caw proposes for a new conversation (used by CLIs that accept one)."""

    prompt: str
    resume_key: str | None = None
    new_key: str | None = None
    #: ``output=``'s JSON schema (object root; caw.structured): a CLI with a schema flag passes it, the others
    #: ask for JSON in the prompt (None: a plain answer)
    output_schema: dict[str, Any] | None = None
    #: the CLI's own caps, for a CLI that has them (claude ``--max-budget-usd``, ``--max-turns``); caw enforces
    #: every budget itself too (caw.session.budget)
    max_budget_usd: float | None = None
    max_turns: int | None = None
    #: a budget meters this turn while it streams: a CLI that can report text as it is generated, rather than
    #: per finished message, should (claude ``--include-partial-messages``), so a crossing is seen at once
    stream_text: bool = False


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


@dataclass
class InteractiveCommand(Invocation):
    """An interactive invocation. ``paste``: the initial prompt, when it is typed into the UI instead of
    passed in argv."""

    paste: str | None = None
    #: text the UI shows once it takes input (None: bracketed-paste mode is the sign), see _PasteFeeder
    ready: bytes | None = None
    provider: str = ""


# one argv string is limited to 128 KiB on Linux; above this a prompt is pasted into the UI
MAX_ARG = 100_000


def fits_argv(prompt: str) -> bool:
    """Whether ``prompt`` can travel as one argv string (else: ``InteractiveCommand.paste``)."""
    return "\0" not in prompt and len(prompt.encode("utf-8", "surrogatepass")) <= MAX_ARG


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


class WarmClosed(Exception):
    """The warm CLI process is gone (it exited, was killed, or closed its output) while caw talked to it."""

    def __init__(self, message: str, *, exit_code: int | None = None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


class WarmClient(ABC):
    """One long-lived CLI process holding one conversation, driven one turn at a time (issue 14).

    Made by ``Provider.warm_client``; driven by ``caw.session.warm.WarmRunner``, which owns the watchdogs,
    assembles events into the ``Turn`` and maps errors exactly as the cold ``run_turn`` does. The client
    only speaks its CLI's protocol and yields the same typed events a cold parser would for the same turn:
    ``SessionStarted`` (with the conversation id), text, thinking, tool calls and results, a final
    ``UsageEvent`` with *this turn's* usage (never a cumulative figure), then a ``ResultEvent`` or a fatal
    ``ErrorEvent`` (with a ``RateLimitEvent`` before it for a limit). Unknown or garbled protocol messages
    become ``RawEvent``s, never an exception.

    Lifecycle: ``start`` once (spawn and handshake; resume ``request.resume_key`` when given), then per turn
    ``begin`` and ``poll`` until ``turn_done``; ``interrupt`` to cancel a turn through the protocol (the turn
    then still ends through ``poll``); ``close`` at the end (idempotent, kills everything the client started).
    """

    def __init__(self, provider: Provider, binary: str, config: RunConfig, env: Mapping[str, str]) -> None:
        self.provider = provider
        self.binary = binary
        self.config = config
        self.env = dict(env)

    @abstractmethod
    def start(self, request: TurnRequest, *, timeout: float | None) -> None:
        """Spawn the CLI and finish its handshake within ``timeout`` seconds.

        Raises ``ProviderNotInstalled`` (cannot spawn), ``WarmClosed`` (died during the handshake) or
        another ``caw.errors`` error the handshake told apart (e.g. ``AuthenticationError``)."""

    @abstractmethod
    def begin(self, request: TurnRequest) -> None:
        """Send one user message (starts a turn). Raises ``WarmClosed`` if the process is gone."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """Events of the current turn that arrived within ``timeout`` seconds (``[]``: none yet).

        Raises ``WarmClosed`` once the process is gone and every event before that was returned."""

    @property
    @abstractmethod
    def turn_done(self) -> bool:
        """The current turn's end arrived (claude's ``result``, codex's ``turn/completed``, opencode idle)."""

    @abstractmethod
    def interrupt(self) -> None:
        """Ask the CLI to stop the current turn through its protocol. Never blocks for long."""

    @property
    @abstractmethod
    def alive(self) -> bool:
        """The process is running and its protocol usable."""

    @property
    def resume_key(self) -> str | None:
        """The conversation id, once the CLI has named it (None until then)."""
        return None

    @property
    def last_activity(self) -> float | None:
        """Monotonic time the CLI last sent anything (the idle watchdog's reference); None: unknown."""
        return None

    @property
    def pid(self) -> int | None:
        """The CLI's process id while it runs (None: not started, or not known)."""
        return None

    def stderr_tail(self) -> str:
        """The last part of what the CLI wrote on stderr (for errors); ``""`` when unknown."""
        return ""

    def tool_pids(self) -> set[int]:
        """Processes the CLI started besides itself (taken at a turn's start; see ``kill_tools_since``)."""
        return set()

    def kill_tools_since(self, before: set[int]) -> list[int]:
        """Kill what the CLI started since ``before`` (a cancelled turn's tools); the CLI lives on."""
        return []

    @abstractmethod
    def close(self, grace_s: float = 2.0) -> None:
        """Stop the CLI and everything it started. Idempotent; safe from any thread."""


class Provider(ABC):
    """One CLI. Subclasses are small: flags, env, a parser, and the facts caw tells users about the CLI."""

    name: ClassVar[str]
    #: other accepted spellings of ``name`` (lower case), e.g. ``claude_code``
    aliases: ClassVar[tuple[str, ...]] = ()
    #: the CLI keeps a conversation's first system prompt on resume, whatever caw passes later
    keeps_first_system_prompt: ClassVar[bool] = False
    #: the CLI can ask caw (``RunConfig.permission_prompt_tool``) before a tool use: ``Agent(can_use_tool=)``
    supports_permission_callback: ClassVar[bool] = False
    binary_name: ClassVar[str]
    #: env var pointing at the CLI's config home (None when the CLI has none)
    config_home_var: ClassVar[str | None] = None
    #: ModelTier -> model string for this CLI
    tiers: ClassVar[dict[ModelTier, str]] = {}
    #: regex alternatives (any case) for wording only this CLI prints: the limit detector's provider guess
    limit_markers: ClassVar[tuple[str, ...]] = ()
    #: the command that installs the CLI, e.g. ``npm install -g opencode-ai`` (None: caw knows none)
    install_command: ClassVar[str | None] = None
    #: how a person logs in, e.g. ``run `codex login` or set OPENAI_API_KEY`` (None: caw knows no way)
    login_command: ClassVar[str | None] = None
    #: the environment variables holding this CLI's credentials: caw masks their values in what it writes and
    #: prints (issue 17.4; docs/reliability.md)
    secret_env_vars: ClassVar[tuple[str, ...]] = ()
    #: with warm sessions on, a one-turn ``completion()`` runs warm on this CLI too: its warm start and one turn
    #: measured faster than a cold turn (issue 14; docs/dev/warm-sessions.md). Otherwise one turn runs cold
    warm_single_turn: ClassVar[bool] = False
    #: ``TurnRequest`` fields beyond the message that this CLI's warm client takes per turn (e.g. codex's
    #: ``output_schema``); a turn setting any other one runs cold (caw.session.warm)
    warm_request_fields: ClassVar[frozenset[str]] = frozenset({"stream_text"})
    #: the CLI reports what a turn cost (``UsageStats.cost_usd``): a cost budget needs it (issue 16)
    reports_cost: ClassVar[bool] = False
    #: how the CLI takes ``output=``: "flag" (a schema flag; the answer is JSON), "strict" (a schema flag that wants
    #: OpenAI strict schemas: caw.structured.strict), or "prompt" (caw asks for JSON in the prompt and extracts it)
    output_schema_mode: ClassVar[str] = "prompt"

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

    def not_installed(self, env: Mapping[str, str] | None = None) -> ProviderNotInstalled:
        """The error for a CLI ``locate`` did not find: a wrong ``CAW_<NAME>_BIN`` is named as such, not as a
        command missing from PATH.

        >>> from caw.providers import get_provider
        >>> str(get_provider("claude").not_installed({"CAW_CLAUDE_BIN": "/nowhere/claude"}))
        'claude: CAW_CLAUDE_BIN=/nowhere/claude is not an executable file'
        """
        env = os.environ if env is None else env
        var = f"CAW_{self.name.upper()}_BIN"
        override = env.get(var)
        if override:
            return ProviderNotInstalled(self.name, override, reason=f"{var}={override} is not an executable file")
        return ProviderNotInstalled(self.name, self.binary_name, self.install_hint())

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

    @abstractmethod
    def continuation_prompt(self, original: str) -> str:
        """What to send after a usage-limit wait when the conversation already exists.

        ``original`` when the CLI did not keep the limited message; something like ``"continue"`` when it
        stores the limited prompt in its history (the model would otherwise receive the request twice).
        Each CLI differs here and a wrong guess either drops or duplicates the request, so there is no default.
        """

    def interactive_command(self, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
        """The command line that starts the CLI's own interactive UI with caw's configuration.

        ``prompt`` (possibly empty) goes in argv when ``fits_argv`` says so, else in ``paste``. Default: the
        CLI has no interactive UI caw can start.
        """
        raise ConfigurationError(f"caw does not know how to start {self.name}'s interactive UI")

    def credential_signal(self, env: Mapping[str, str]) -> str | None:
        """Where the CLI would find a login ("env X_API_KEY", "file ~/.x/auth.json"), None for no sign of one.

        Presence and existence only: a signal never reads a secret (see ``env_signal``, ``file_signal``).
        """
        return None

    def install_hint(self) -> str:
        """What to tell someone whose CLI is missing.

        >>> from caw.providers import get_provider
        >>> get_provider("codex").install_hint()
        'install it with `npm install -g @openai/codex`, or set CAW_CODEX_BIN to its path'
        """
        return install_hint_for(self.name, self.install_command)

    def login_hint(self) -> str:
        """What to tell someone whose CLI could not authenticate."""
        return login_hint_for(self.name, self.login_command)

    def first_start_lock(self, env: Mapping[str, str]) -> FirstStartLock | None:
        """A lock caw holds from spawning the CLI until its first output line, or None (the default).

        For a CLI whose first start in a fresh home cannot run concurrently (opencode migrates its SQLite
        database then, issue 17): the session layer acquires it before the spawn and releases it once the
        CLI has printed something, so only first starts wait.
        """
        return None

    def warm_client(self, binary: str, config: RunConfig, env: Mapping[str, str]) -> WarmClient | None:
        """A long-lived client for this CLI (issue 14), or None if it has no warm mode (turns run cold)."""
        return None

    def config_home(self, env: Mapping[str, str]) -> str | None:
        """The non-default config home the CLI will use, or None for its default."""
        if self.config_home_var is None:
            return None
        return env.get(self.config_home_var) or None


class FirstStartLock:
    """An exclusive ``flock`` on ``lock_path``, needed until ``done_marker`` exists.

    ``acquire`` waits for the lock (up to ``timeout_s``, then goes ahead unlocked) and lets go at once
    when another holder has meanwhile written the marker. ``release(started=True)`` writes the marker:
    the CLI printed output, so its first start is over.
    """

    def __init__(self, lock_path: Path, done_marker: Path, *, timeout_s: float = 120.0) -> None:
        self.lock_path, self.done_marker, self.timeout_s = lock_path, done_marker, timeout_s
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return  # an unwritable home: run unlocked, as before
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return
                time.sleep(0.05)
        self._fd = fd
        if self.done_marker.exists():
            self.release(started=False)

    def release(self, *, started: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if started:
                self.done_marker.touch()
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the descriptor drops the flock


def install_hint_for(name: str, install_command: str | None = None) -> str:
    """The install hint for provider ``name`` (also for a name no provider is registered under)."""
    binvar = f"CAW_{name.upper()}_BIN"
    if install_command:
        return f"install it with `{install_command}`, or set {binvar} to its path"
    return f"set {binvar} to its path"


def login_hint_for(name: str, login_command: str | None = None) -> str:
    """The login hint for provider ``name`` (also for a name no provider is registered under)."""
    return f"log in: {login_command}" if login_command else f"check {name}'s login"


# ---- credential signals ------------------------------------------------------------------------------
def user_home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def _shown(path: Path, env: Mapping[str, str]) -> str:
    """``~/...`` for paths under HOME, so the signal reads the way users type it."""
    try:
        return "~/" + str(path.relative_to(user_home(env)))
    except ValueError:
        return str(path)


def env_signal(env: Mapping[str, str], names: Iterable[str]) -> str | None:
    """``"env NAME"`` for the first of ``names`` set to something non-blank in ``env``."""
    for name in names:
        if env.get(name, "").strip():
            return f"env {name}"
    return None


def file_signal(env: Mapping[str, str], path: Path) -> str | None:
    """``"file ~/path"`` when ``path`` exists."""
    # existence only: these files hold tokens, and caw never opens them
    return f"file {_shown(path, env)}" if path.is_file() else None


_version_cache: dict[tuple[str, float], str | None] = {}
