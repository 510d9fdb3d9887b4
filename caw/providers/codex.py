"""OpenAI Codex CLI (`codex exec --json`).

Protocol facts this adapter relies on (observed on 0.169.0 and 0.171.0, see shared/reference/codex-cli.md and
docs/dev/codex-notes.md):

* the prompt goes on stdin (argv ends in ``-``): a prompt argument makes codex wait for stdin's EOF anyway,
  a prompt starting with ``-`` is taken for an option, and a long argv string fails at spawn;
* later turns are ``codex exec [options] resume <thread_id> -``: options must come *before* ``resume``
  (``resume`` rejects ``-s``), and ``-m`` is passed every turn because a thread does not remember its model;
* ``thread.started.thread_id`` is the resume key; agent text is not streamed (one ``item.completed`` per
  message); a command that fails inside a turn still ends with ``turn.completed`` and exit code 0;
* ``turn.completed.usage`` is the *thread's* running total (also across processes) and counts cached input
  inside ``input_tokens``: the turn's share is the difference from the total before the turn, which the
  rollout file (``$CODEX_HOME/sessions/**/rollout-*-<thread_id>.jsonl``) records;
* top-level ``error`` events starting ``Reconnecting...`` are retry notices; only ``turn.failed`` fails the
  turn; items of type ``error`` are warnings; a ``web_search`` item carries its ``"id"`` key twice;
* usage-limit text is rendered in the process's local time zone with a curly apostrophe (``You’ve``), the
  reset truncated to the minute; it is the only place the reset time exists;
* one user message is capped at 1,048,576 characters (stderr ``Input exceeds the maximum length``).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, ClassVar

from caw.errors import ConfigurationError
from caw.events import (
    ErrorEvent,
    ErrorKind,
    Event,
    RateLimitEvent,
    RawEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolDeniedEvent,
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
)
from caw.models import MCPServer, ModelTier, ToolGroup, UsageStats
from caw.providers.base import (
    InteractiveCommand,
    Invocation,
    Provider,
    RunConfig,
    TurnParser,
    TurnRequest,
    WarmClient,
    env_signal,
    file_signal,
    fits_argv,
    user_home,
)
from caw.providers.markers import CODEX_MARKERS
from caw.text import last_meaningful_line

# argv strings are limited to 128 KiB on Linux; above this caw's settings go through a profile file
_MAX_ARG = 100_000

# codex's own rule for MCP server names; it also keeps the dotted `-c mcp_servers.<name>.*` path unambiguous
_MCP_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_THREAD_ID = re.compile(r"^[0-9A-Za-z-]+$")

# (system, machine) -> (target triple, npm platform package), as in @openai/codex/bin/codex.js
_NATIVE_TARGETS: dict[tuple[str, str], tuple[str, str]] = {
    ("linux", "x86_64"): ("x86_64-unknown-linux-musl", "codex-linux-x64"),
    ("linux", "amd64"): ("x86_64-unknown-linux-musl", "codex-linux-x64"),
    ("linux", "aarch64"): ("aarch64-unknown-linux-musl", "codex-linux-arm64"),
    ("linux", "arm64"): ("aarch64-unknown-linux-musl", "codex-linux-arm64"),
    ("darwin", "x86_64"): ("x86_64-apple-darwin", "codex-darwin-x64"),
    ("darwin", "arm64"): ("aarch64-apple-darwin", "codex-darwin-arm64"),
}

# options caw sets that codex accepts only once: when the user passes one in extra_args, caw leaves it out
_SANDBOX_OPTIONS = ("-s", "--sandbox", "--dangerously-bypass-approvals-and-sandbox")
_MODEL_OPTIONS = ("-m", "--model")
_PROFILE_OPTIONS = ("-p", "--profile")


# ---- invocation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodexTurnContext:
    """What the parser needs to know about the run that ``build`` prepared."""

    codex_home: Path | None = None
    resumed: bool = False
    #: the time zone codex renders reset times in (None: this machine's local time)
    tz: tzinfo | None = None


#: where codex reads an API key from the environment
_KEY_VARS = ("CODEX_API_KEY", "OPENAI_API_KEY")


class CodexProvider(Provider):
    name = "codex"
    binary_name = "codex"
    config_home_var = "CODEX_HOME"
    # from the model catalogue bundled with 0.169.0 (`codex debug models`)
    tiers: ClassVar[dict[ModelTier, str]] = {ModelTier.STRONGEST: "gpt-6-astra", ModelTier.FAST: "gpt-6-luna"}
    #: the detector's provider guess; the tuple lives in markers.py, so `import caw` registers it cheaply
    limit_markers: ClassVar[tuple[str, ...]] = CODEX_MARKERS
    install_command = "npm install -g @openai/codex"
    login_command = "run `codex login` or set OPENAI_API_KEY"
    #: its credential variables: caw masks their values in what it writes and prints (issue 17.4)
    secret_env_vars: ClassVar[tuple[str, ...]] = _KEY_VARS
    output_schema_mode = "strict"  # exec --output-schema FILE; OpenAI strict mode (issue 16)
    #: the app-server takes a schema per turn (turn/start outputSchema): such a turn stays warm (issue 14)
    warm_request_fields: ClassVar[frozenset[str]] = frozenset({"output_schema", "stream_text"})

    def executable(self, binary: str) -> list[str]:
        """Run the native binary when ``binary`` is the npm shim (node 20 keeps the shim alive as a parent)."""
        native = native_binary(binary)
        return [native] if native else [binary]

    def parser(self, config: RunConfig | None = None, request: TurnRequest | None = None) -> CodexParser:
        parser = CodexParser()
        if config is not None and request is not None:
            # the per-turn usage needs the thread's earlier total: it is read from this CODEX_HOME's rollout
            env = {**os.environ, **config.env}
            parser.context = CodexTurnContext(
                codex_home=codex_home_dir(env), resumed=bool(request.resume_key), tz=_zone(env.get("TZ"))
            )
            # codex never prints its model: with none passed, the one its config names (issue 12)
            parser.model = config.model or configured_model(codex_home_dir(env), config.extra_args)
        return parser

    def continuation_prompt(self, original: str) -> str:
        # codex keeps a usage-limited turn's user message in the thread (docs/dev/codex-notes.md):
        # sending the original again would put it in the history twice
        return "continue"

    def warm_client(self, binary: str, config: RunConfig, env: Mapping[str, str]) -> WarmClient | None:
        """``codex app-server`` (caw/providers/codex_warm.py); None when ``extra_args`` hold an option it has
        no equivalent for (the session then runs cold)."""
        from caw.providers.codex_warm import CodexWarmClient, app_server_settings

        settings = app_server_settings(config, warm_flags(config) + direct_mcp_tools(self.executable(binary), config))
        return None if settings is None else CodexWarmClient(self, binary, config, env, settings=settings)

    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        inv = Invocation(argv=[*self.executable(binary), "exec", "--json", "--skip-git-repo-check"])
        # exec cannot ask anyone: without this, a command needing approval would just fail
        inv.argv += ["-c", 'approval_policy="never"', *config_args(config, inv.temp_paths)]
        inv.argv += direct_mcp_tools(self.executable(binary), config)
        if request.output_schema is not None:
            inv.argv += ["--output-schema", str(output_schema_file(request.output_schema, inv.temp_paths))]
        if request.resume_key:
            inv.argv += ["resume", request.resume_key]
        inv.argv.append("-")
        inv.stdin = request.prompt.encode()
        inv.cwd = config.cwd
        return inv

    def interactive_command(self, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
        # the mapping of build (scripted) without exec/--json/stdin; the approval policy is left to codex's
        # interactive default (a person is there to answer), the sandbox is the same
        cmd = InteractiveCommand(argv=[*self.executable(binary)])
        if "--remote" not in config.extra_args:
            # without it the UI installs a background server daemon (a copy of codex in CODEX_HOME) that
            # outlives the session, and caw would kill it on the way out like any other leftover
            cmd.argv.append("--no-daemon")
        cmd.argv += config_args(config, cmd.temp_paths)
        cmd.argv += direct_mcp_tools(self.executable(binary), config)  # MCP tools offered directly here too
        if prompt:
            if fits_argv(prompt):
                cmd.argv += ["--", prompt]  # `--`: a prompt may start with "-" (clap takes it for an option)
            else:
                cmd.paste = prompt
        return cmd

    def credential_signal(self, env: Mapping[str, str]) -> str | None:
        codex_home = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else user_home(env) / ".codex"
        return (
            env_signal(env, _KEY_VARS)
            or _config_key_signal(env, codex_home / "config.toml")
            or file_signal(env, codex_home / "auth.json")
        )


def output_schema_file(schema: dict[str, Any], temp_paths: list[Path]) -> Path:
    """``--output-schema``'s file: ``schema`` made strict (OpenAI strict mode: caw.structured.strict), private,
    deleted after the turn. Raises ``StrictSchemaError`` (a ``ConfigurationError``) for a schema with no strict
    equivalent."""
    import tempfile

    from caw.state.store import storage_errors
    from caw.structured.strict import to_strict

    data = json.dumps(to_strict(schema), ensure_ascii=False)
    with storage_errors("create a temp file in", tempfile.gettempdir()):
        fd, name = tempfile.mkstemp(prefix="caw-schema-", suffix=".json")
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    temp_paths.append(Path(name))
    return Path(name)


def _config_key_signal(env: Mapping[str, str], config_toml: Path) -> str | None:
    """``env VAR`` when config.toml's ``model_provider`` takes its key from ``model_providers.<id>.env_key``
    and VAR is set. Only the config is read (for the variable's name); the variable's value is not looked at
    beyond being non-blank, and auth.json is never opened."""
    import tomllib

    try:
        with open(config_toml, "rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    chosen = config.get("model_provider")
    providers = config.get("model_providers")
    section = providers.get(chosen) if isinstance(providers, dict) and isinstance(chosen, str) else None
    env_key = section.get("env_key") if isinstance(section, dict) else None
    return env_signal(env, (env_key,)) if isinstance(env_key, str) and env_key else None


def config_args(config: RunConfig, temp_paths: list[Path]) -> list[str]:
    """Flags for caw's configuration, the same for ``codex exec`` and codex's interactive UI.

    Options go before any subcommand (``exec resume <id> -s ...`` is rejected). A profile file it writes (0600,
    under CODEX_HOME) is appended to ``temp_paths`` for the caller to delete after the run.
    """
    extra = list(config.extra_args)
    # telemetry only; the agent behaves the same (plugins stay on: users may rely on them)
    argv = ["-c", "analytics.enabled=false"]
    if not any(a.startswith("shell_environment_policy") for a in extra):
        # issue 17.4: codex hands its own environment, API key included, to the commands it runs
        argv += ["-c", f"shell_environment_policy.exclude=[{', '.join(toml_string(v) for v in _KEY_VARS)}]"]
    if not _has_option(extra, _SANDBOX_OPTIONS):
        argv += ["-s", sandbox_mode(config.tools)]
    argv += tool_flags(config.tools)
    if config.model and not _has_option(extra, _MODEL_OPTIONS):
        argv += ["-m", config.model]
    if config.reasoning:
        argv += ["-c", f"model_reasoning_effort={toml_string(config.reasoning)}"]
    profile = ProfileSettings()
    if config.system_prompt:
        # developer_instructions add a developer message; codex's own instructions for its tools stay
        value = toml_string(config.system_prompt)
        if len(value.encode()) > _MAX_ARG:
            profile.lines.insert(0, f"developer_instructions = {value}")  # top-level: before any [table]
        else:
            argv += ["-c", f"developer_instructions={value}"]
    argv += mcp_overrides(config.mcp_servers, profile)
    if profile.lines:
        if _has_option(extra, _PROFILE_OPTIONS):
            raise ConfigurationError(
                "codex needs a caw profile file for a long system prompt or MCP env values; "
                "remove -p/--profile from extra_args"
            )
        name, path = write_profile(codex_home_dir({**os.environ, **config.env}), profile.lines)
        temp_paths.append(path)
        argv += ["-p", name]
    return argv + extra


def warm_flags(config: RunConfig) -> list[str]:
    """caw's own flags for ``codex app-server`` to translate (caw/providers/codex_warm.py): ``config_args`` without
    the system prompt (``developerInstructions``), the MCP servers' env (sent over stdin) and ``extra_args``."""
    from dataclasses import replace

    base = replace(config, system_prompt=None, mcp_servers=(), extra_args=())
    return config_args(base, []) + mcp_overrides(config.mcp_servers, ProfileSettings())


def sandbox_mode(tools: ToolGroup | None) -> str:
    """caw never bypasses the sandbox: commands may write (inside the working tree) only with WRITER."""
    if tools is not None and ToolGroup.WRITER in tools:
        return "workspace-write"
    return "read-only"


def tool_flags(tools: ToolGroup | None) -> list[str]:
    """ToolGroup -> codex feature switches (None: the CLI's own tool set, like claude without --tools)."""
    if tools is None:
        return []
    flags = ["-c", 'web_search="live"' if ToolGroup.WEB in tools else 'web_search="disabled"']
    if ToolGroup.WEB in tools and ToolGroup.WRITER in tools:
        flags += ["-c", "sandbox_workspace_write.network_access=true"]
    if ToolGroup.EXEC not in tools:
        flags += ["--disable", "shell_tool"]
    if ToolGroup.PARALLEL not in tools:
        flags += ["--disable", "multi_agent"]
    return flags


class ProfileSettings:
    """TOML lines that must not go on argv (too long, or secret): they go into a private profile file."""

    def __init__(self) -> None:
        self.lines: list[str] = []


def mcp_overrides(servers: Iterable[MCPServer], profile: ProfileSettings) -> list[str]:
    """``-c mcp_servers.<name>.*`` overrides; env values (often tokens) go to the profile file, not argv."""
    argv: list[str] = []
    for server in servers:
        if not _MCP_NAME.match(server.name):
            raise ConfigurationError(
                f"codex MCP server names may use only letters, digits, '_' and '-': {server.name!r}"
            )
        prefix = f"mcp_servers.{server.name}"
        settings: list[tuple[str, str]] = []
        if server.url:
            settings.append(("url", toml_string(server.url)))
        else:
            settings.append(("command", toml_string(server.command)))
            settings.append(("args", toml_array(server.args)))
        # exec's approval policy is `never`: without this every MCP tool call fails as "requires approval"
        settings.append(("default_tools_approval_mode", '"approve"'))
        if server.tool_timeout is not None:
            settings.append(("tool_timeout_sec", repr(float(server.tool_timeout))))
        for key, value in settings:
            argv += ["-c", f"{prefix}.{key}={value}"]
        if server.env:
            profile.lines.append(f"[mcp_servers.{server.name}.env]")
            profile.lines += [f"{toml_string(k)} = {toml_string(v)}" for k, v in server.env.items()]
    return argv


def write_profile(codex_home: Path, lines: list[str]) -> tuple[str, Path]:
    """A throwaway ``$CODEX_HOME/<name>.config.toml`` (``-p <name>``) only this user can read."""
    codex_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"caw-{uuid.uuid4().hex[:12]}"
    path = codex_home / f"{name}.config.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode())
    finally:
        os.close(fd)
    return name, path


def direct_mcp_tools(command: list[str], config: RunConfig) -> list[str]:
    """``-c model_catalog_json=…`` so codex offers MCP tools on the first request (caw/providers/codex_catalog.py).

    Only when a configured server does not opt into deferral and the user sets no catalogue of their own.
    """
    direct = any(not s.defer_tools for s in config.mcp_servers)
    if not direct or any("model_catalog_json" in a for a in config.extra_args):
        return []
    from caw.providers.codex_catalog import CATALOG_KEY, direct_tools_catalog

    env = {**os.environ, **config.env}
    path = direct_tools_catalog(command, codex_home_dir(env), env)
    return ["-c", f"{CATALOG_KEY}={toml_string(str(path))}"] if path is not None else []


def codex_home_dir(env: Mapping[str, str]) -> Path:
    home = env.get("CODEX_HOME")
    if home:
        return Path(home)
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".codex"


def _has_option(args: list[str], names: tuple[str, ...]) -> bool:
    return any(a in names or a.startswith(tuple(n + "=" for n in names if n.startswith("--"))) for a in args)


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name.lstrip(":"))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (``-c`` values are parsed as TOML: quoting keeps text text).

    >>> toml_string('say "hi"\\n')
    '"say \\\\"hi\\\\"\\\\n"'
    """
    out = []
    for ch in text:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_array(items: Iterable[str]) -> str:
    return "[" + ", ".join(toml_string(i) for i in items) + "]"


@functools.lru_cache(maxsize=16)
def native_binary(binary: str) -> str | None:
    """The platform binary next to an npm install's ``@openai/codex/bin/codex.js``, or None.

    Looks where the shim's ``require.resolve`` would: nested ``node_modules``, the hoisted sibling package,
    and the ``vendor/`` dir older releases shipped inside ``@openai/codex``.
    """
    shim = Path(os.path.realpath(binary))
    if shim.name != "codex.js" or shim.parent.name != "bin":
        return None
    target = _NATIVE_TARGETS.get((platform.system().lower(), platform.machine().lower()))
    if target is None:
        return None
    triple, package = target
    root = shim.parent.parent
    exe = Path(triple) / "bin" / "codex"
    for vendor in (
        root / "node_modules" / "@openai" / package / "vendor",
        root.parent / package / "vendor",
        root / "vendor",
    ):
        candidate = vendor / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


# ---- usage ---------------------------------------------------------------------------------------


def usage_from_codex(raw: Mapping[str, Any]) -> UsageStats:
    """codex counts cached input inside ``input_tokens``; caw's ``input_tokens`` excludes it."""
    cached = int(raw.get("cached_input_tokens") or 0)
    return UsageStats(
        input_tokens=max(0, int(raw.get("input_tokens") or 0) - cached),
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=cached,
        cache_write_tokens=int(raw.get("cache_write_input_tokens") or 0),
        reasoning_tokens=int(raw.get("reasoning_output_tokens") or 0),
    )


def configured_model(codex_home: Path, extra_args: Iterable[str] = ()) -> str | None:
    """The model codex runs when caw passes no ``-m``: ``-m``/``-c model=`` in ``extra_args``, else
    ``config.toml``'s (its active profile's first). None when neither names one (codex's built-in default)."""
    import tomllib

    args = list(extra_args)
    for i, arg in enumerate(args):
        if arg in ("-m", "--model") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
        if arg in ("-c", "--config") and i + 1 < len(args) and args[i + 1].startswith("model="):
            value = args[i + 1].split("=", 1)[1].strip()
            try:
                parsed = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                parsed = value  # codex too takes a value that is not TOML as a literal string
            return str(parsed)
    try:
        config = tomllib.loads((codex_home / "config.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    profile = config.get("profile")
    profiles = config.get("profiles")
    if isinstance(profile, str) and isinstance(profiles, dict):
        chosen = profiles.get(profile)
        if isinstance(chosen, dict) and isinstance(chosen.get("model"), str):
            return str(chosen["model"])
    model = config.get("model")
    return model if isinstance(model, str) and model else None


def find_rollout(codex_home: Path, thread_id: str) -> Path | None:
    """``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<local time>-<thread_id>.jsonl`` (None when absent)."""
    if not _THREAD_ID.match(thread_id):
        return None
    for path in sorted((codex_home / "sessions").glob(f"*/*/*/rollout-*-{thread_id}.jsonl")):
        return path
    return None


@dataclass(frozen=True)
class RolloutTotals:
    """The thread's running usage total before the last turn started, and after its last model request."""

    before: UsageStats
    after: UsageStats | None


def rollout_totals(path: Path) -> RolloutTotals | None:
    """Read the totals around the newest turn (``task_started``) from ``token_count`` records.

    ``token_count.info.last_token_usage`` is per *model request*, not per turn, so the turn's usage is
    computed from ``total_token_usage`` on both sides of the turn's ``task_started``. The file is read
    backwards: a long thread's rollout holds every prompt, only the end of it matters here.
    """
    after: UsageStats | None = None
    started = False
    try:
        for raw in _lines_backwards(path):
            # cheap filter first: only two kinds of line matter here
            if b'"task_started"' not in raw and b'"token_count"' not in raw:
                continue
            payload = _payload(raw)
            if payload is None:
                continue
            if payload.get("type") == "task_started":
                # an earlier turn without a token_count (a rejected one) changes nothing: keep looking
                started = True
            elif payload.get("type") == "token_count":
                total = _total_usage(payload)
                if total is None:
                    continue
                if started:
                    return RolloutTotals(before=total, after=after)
                after = after or total
    except OSError:
        return None
    return RolloutTotals(before=UsageStats(), after=after) if started else None


def _lines_backwards(path: Path, chunk: int = 1 << 16) -> Iterator[bytes]:
    with path.open("rb") as f:
        pos = f.seek(0, os.SEEK_END)
        tail = b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + tail).split(b"\n")
            tail = lines.pop(0)
            yield from reversed(lines)
        if tail:
            yield tail


def _payload(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    payload = obj.get("payload") if isinstance(obj, dict) else None
    return payload if isinstance(payload, dict) else None


def _total_usage(token_count: dict[str, Any]) -> UsageStats | None:
    info = token_count.get("info")
    total = info.get("total_token_usage") if isinstance(info, dict) else None
    return usage_from_codex(total) if isinstance(total, dict) else None


class _TotalsMemory:
    """Last thread total seen in this process (the fallback when the rollout cannot be read)."""

    def __init__(self, size: int = 256) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._data: OrderedDict[str, UsageStats] = OrderedDict()

    def get(self, thread_id: str) -> UsageStats | None:
        with self._lock:
            return self._data.get(thread_id)

    def put(self, thread_id: str, total: UsageStats) -> None:
        with self._lock:
            self._data[thread_id] = total
            self._data.move_to_end(thread_id)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


_TOTALS = _TotalsMemory()


# ---- errors --------------------------------------------------------------------------------------

_MINUTE = timedelta(minutes=1)
_RECONNECTING = re.compile(r"^Reconnecting\.\.\.\s*(?:(\d+)/(\d+))?")
_STATUS = re.compile(r"(?:unexpected status|last status:|status code:?)\s*(\d{3})")
# U+2019 in the CLI's text; a plain apostrophe too, in case a later version or a proxy changes it
_USAGE_LIMIT = re.compile(r"You[’']ve hit your usage limit", re.IGNORECASE)
_BILLING = re.compile(
    r"Quota exceeded|insufficient_quota|out of credits|spend(?:ing)? (?:cap|limit|control)|usage_not_included"
    r"|upgrade to Plus|billing",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"unexpected status 40[13]|Missing environment variable|invalid_api_key|Unauthorized|not logged in"
    r"|log ?in again|token (?:is )?expired",
    re.IGNORECASE,
)
# the second form is codex's own cap on one user message (1,048,576 characters), reported on stderr
_CONTEXT = re.compile(
    r"ran out of room in the model's context window|context_length_exceeded|Input exceeds the maximum length"
    r"|input_too_large",
    re.IGNORECASE,
)
_RATE = re.compile(r"last status: 429|rate limit exceeded|Too Many Requests", re.IGNORECASE)
_SERVER = re.compile(
    r"high demand|at capacity|overloaded|stream disconnected|Connection failed|idle timeout|unexpected status 5\d\d"
    r"|last status: 5\d\d|Internal server error",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(r"no rollout found for thread id|thread not found", re.IGNORECASE)
_CLI_NOISE = re.compile(r"^(WARNING: proceeding|\s*\d+: |\s*at )")


def classify_failure(message: str) -> ErrorKind:
    """The error class of a ``turn.failed`` message (the recipe in shared/reference/codex-cli.md §6)."""
    if _USAGE_LIMIT.search(message):
        return "rate_limit"
    if _BILLING.search(message):
        return "billing"
    if _CONTEXT.search(message):
        return "context_overflow"
    if _AUTH.search(message):
        return "auth"
    if _RATE.search(message):
        return "rate_limit"
    if _NOT_FOUND.search(message):
        return "not_found"
    if _SERVER.search(message):
        return "server"
    status = _status(message)
    if status is not None and 400 <= status < 500:
        return "invalid_request"
    return "unknown"


def _status(message: str) -> int | None:
    match = _STATUS.search(message)
    return int(match.group(1)) if match else None


# ---- parser --------------------------------------------------------------------------------------

_TOOL_ITEMS = ("command_execution", "file_change", "mcp_tool_call", "web_search")
_NEEDS_APPROVAL = re.compile(r"requires approval, but approval policy is never")


class CodexParser(TurnParser):
    provider = "codex"

    def __init__(self, context: CodexTurnContext | None = None) -> None:
        super().__init__()
        self.context = context or CodexTurnContext(codex_home=codex_home_dir(os.environ), tz=_zone(os.getenv("TZ")))
        self.thread_id: str | None = None
        self._thread_total: UsageStats | None = None  # turn.completed.usage
        self._last_error: str | None = None  # the newest non-retry top-level `error`
        self._last_text: str | None = None  # the newest agent message (the turn's final answer)
        #: the model the turn runs (codex prints none): ``-m``, else its config (``configured_model``)
        self.model: str | None = None

    def on_json(self, obj: dict[str, Any]) -> list[Event]:
        kind = obj.get("type")
        if kind == "thread.started":
            self.thread_id = str(obj["thread_id"])
            return [SessionStarted(provider=self.provider, session_id=self.thread_id, model=self.model)]
        if kind == "turn.started":
            return []
        if kind in ("item.started", "item.updated", "item.completed"):
            return self._item(str(kind).split(".", 1)[1], obj["item"])
        if kind == "turn.completed":
            # the result is emitted by finish(): the turn's usage needs the rollout, complete only at exit
            self._thread_total = usage_from_codex(obj.get("usage") or {})
            return []
        if kind == "turn.failed":
            error = obj.get("error") or {}
            return self._fatal(str(error.get("message") or self._last_error or "the turn failed"))
        if kind == "error":
            return self._error(str(obj.get("message") or ""))
        return [RawEvent(provider=self.provider, data=obj)]

    # ---- items -----------------------------------------------------------------------------------
    def _item(self, phase: str, item: dict[str, Any]) -> list[Event]:
        itype = item.get("type")
        item_id = str(item.get("id", ""))
        if itype == "agent_message":
            if phase != "completed":
                return []
            self._last_text = str(item.get("text", ""))
            return [TextEvent(provider=self.provider, text=self._last_text, message_id=item_id)]
        if itype == "reasoning":
            if phase != "completed":
                return []
            return [ThinkingEvent(provider=self.provider, text=str(item.get("text", "")), message_id=item_id)]
        if itype == "error":
            # non-fatal notices (unknown model metadata, a model switch on resume, ...): the run goes on
            return (
                [WarningEvent(provider=self.provider, message=str(item.get("message", "")))]
                if phase == "completed"
                else []
            )
        if itype in _TOOL_ITEMS:
            return self._tool(phase, item_id, str(itype), item)
        if phase == "completed":
            return [RawEvent(provider=self.provider, data={"type": f"item.{phase}", "item": item})]
        return []

    def _tool(self, phase: str, item_id: str, itype: str, item: dict[str, Any]) -> list[Event]:
        if itype == "web_search" and phase == "started":
            # the query is only filled in on completion; the completed item creates the ToolUse
            return []
        name, arguments = _tool_call(itype, item)
        if phase == "started":
            return [ToolCallEvent(provider=self.provider, id=item_id, name=name, arguments=arguments)]
        if phase != "completed":
            return []
        output, is_error = _tool_result(itype, item)
        return [
            ToolResultEvent(
                provider=self.provider,
                id=item_id,
                output=output,
                is_error=is_error,
                name=name,
                arguments=arguments,
            ),
            *self._denial(item_id, name, item, output),
        ]

    def _denial(self, item_id: str, name: str, item: dict[str, Any], output: str) -> list[Event]:
        """A tool use codex refused (issue 12 item 5): a declined item, or an MCP call that needs an approval.

        A command its read-only sandbox refuses has no item at all (0.169): caw cannot count that one.
        """
        needs_approval = item.get("type") == "mcp_tool_call" and _NEEDS_APPROVAL.search(output)
        if item.get("status") != "declined" and not needs_approval:
            return []
        return [ToolDeniedEvent(provider=self.provider, id=item_id, name=name, message=output or "declined")]

    # ---- errors ----------------------------------------------------------------------------------
    def _error(self, message: str) -> list[Event]:
        retry = _RECONNECTING.match(message)
        if retry:
            return [
                RetryEvent(
                    provider=self.provider,
                    attempt=int(retry.group(1)) if retry.group(1) else None,
                    max_retries=int(retry.group(2)) if retry.group(2) else None,
                    status=_status(message),
                    message=message,
                )
            ]
        # a terminal error is printed as `error` and then again as `turn.failed`: the latter decides
        self._last_error = message
        return []

    def _fatal(self, message: str, *, unknown_as: ErrorKind = "unknown") -> list[Event]:
        kind = classify_failure(message)
        kind = unknown_as if kind == "unknown" else kind
        events: list[Event] = []
        if kind == "rate_limit" and _USAGE_LIMIT.search(message):
            events.append(self._usage_limit(message))
        events.append(ErrorEvent(provider=self.provider, kind=kind, message=message, status=_status(message)))
        return events

    def _usage_limit(self, message: str) -> RateLimitEvent:
        # the reset time exists only as text ("try again at 2:01 AM"), rendered in codex's time zone
        resets_at, kind, waitable = _reset_from_text(message, self.context.tz)
        return RateLimitEvent(
            provider=self.provider,
            status="rejected",
            resets_at=resets_at,
            kind=kind,
            waitable=waitable,
            message=message,
        )

    # ---- end of turn -----------------------------------------------------------------------------
    def finish(self, exit_code: int | None, stderr: str) -> list[Event]:
        if self.closed:
            return []
        if self._thread_total is not None:
            self.closed = True
            events = self._turn_usage(self._thread_total)
            events.append(ResultEvent(provider=self.provider, text=self._last_text))
            return events
        self.closed = True
        if self._last_error:
            # the process ended after an error without turn.failed (killed, crashed): keep what it said
            return self._fatal(self._last_error, unknown_as="cli")
        return self._no_turn_end(exit_code, stderr)

    def _no_turn_end(self, exit_code: int | None, stderr: str) -> list[Event]:
        """No ``turn.completed``/``turn.failed``: the CLI stopped before or outside the turn (stderr says why)."""
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not _CLI_NOISE.match(ln)]
        for line in lines:
            kind = classify_failure(line)
            if kind in ("not_found", "context_overflow", "auth"):
                return [ErrorEvent(provider=self.provider, kind=kind, message=line)]
        if exit_code == 0 and self.saw_output:
            # a clean exit after output but without turn.completed: nothing failed that codex reported
            return [ResultEvent(provider=self.provider)]
        tail = last_meaningful_line("\n".join(lines))
        signal_note = f" (killed by signal {-exit_code})" if exit_code is not None and exit_code < 0 else ""
        message = tail or f"codex exited with code {exit_code} without finishing the turn{signal_note}"
        return [ErrorEvent(provider=self.provider, kind="cli", message=message)]

    def _turn_usage(self, total: UsageStats) -> list[Event]:
        """The turn's share of the thread's running total (see ``rollout_totals``)."""
        events: list[Event] = []
        previous: UsageStats | None = UsageStats()
        if self.context.resumed and self.thread_id:
            previous = self._previous_total(self.thread_id)
        if previous is None:
            events.append(
                WarningEvent(
                    provider=self.provider,
                    message="codex reports usage as the thread's running total and its rollout file was not "
                    "found: this turn's usage is that total",
                )
            )
            usage = total
        else:
            usage = total - previous
        if self.thread_id:
            _TOTALS.put(self.thread_id, total)
        events.insert(0, UsageEvent(provider=self.provider, usage=usage, final=True))
        return events

    def _previous_total(self, thread_id: str) -> UsageStats | None:
        home = self.context.codex_home
        rollout = find_rollout(home, thread_id) if home is not None else None
        totals = rollout_totals(rollout) if rollout is not None else None
        if totals is not None:
            return totals.before
        return _TOTALS.get(thread_id)


def _reset_from_text(message: str, tz: tzinfo | None) -> tuple[datetime | None, str, bool]:
    from caw.limits import detect_limit

    found = detect_limit(message, tz=tz)
    if found is None:
        return None, "usage", True
    resets_at = found.resets_at
    if resets_at is not None:
        # codex prints the reset truncated to the minute (04:07:50 -> "4:07 AM"): the end of that minute is the
        # earliest time caw may be sure the limit is over
        resets_at += _MINUTE
    return resets_at, found.kind, found.waitable


def _tool_call(itype: str, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if itype == "command_execution":
        return "exec_command", {"command": item.get("command", "")}
    if itype == "file_change":
        return "apply_patch", {"changes": item.get("changes") or []}
    if itype == "mcp_tool_call":
        args = item.get("arguments")
        return f"mcp__{item.get('server', '')}__{item.get('tool', '')}", args if isinstance(args, dict) else {
            "input": args
        }
    # web_search: codex runs it on the model's side and reports only the query
    arguments: dict[str, Any] = {"query": item.get("query", "")}
    if item.get("action"):
        arguments["action"] = item["action"]
    return "web_search", arguments


def _tool_result(itype: str, item: dict[str, Any]) -> tuple[str, bool]:
    status = item.get("status")
    failed = status in ("failed", "declined")
    if itype == "command_execution":
        code = item.get("exit_code")
        return str(item.get("aggregated_output") or ""), failed or (isinstance(code, int) and code != 0)
    if itype == "file_change":
        changes = item.get("changes") or []
        summary = "\n".join(f"{c.get('kind', 'change')} {c.get('path', '')}" for c in changes if isinstance(c, dict))
        return summary, failed
    if itype == "mcp_tool_call":
        error = item.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else error
            return str(message), True
        result = item.get("result") or {}
        return _content_text(result.get("content") if isinstance(result, dict) else result), failed
    return "", failed


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict):
                parts.append(f"[{block.get('type', 'content')}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content)
