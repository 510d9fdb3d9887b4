"""opencode (`opencode run --format json`).

Protocol facts this adapter relies on (observed on 1.18.33, see shared/reference/opencode-cli.md and
docs/dev/opencode-notes.md):

* the prompt goes on stdin, read to EOF: an argv message gets every word containing a space wrapped in
  double quotes, a leading ``-`` is parsed as a flag, and one argv string is limited to 128 KiB;
* ``--title=`` (empty) names a new session after the first 50 characters of the message *without* the
  extra title-generation request that would otherwise send the whole prompt to a second model call, and
  without putting any prompt text on the command line;
* a conversation is resumed with ``--session <id>`` and only from the directory it was created in: from
  another directory opencode runs the turn in the session's directory but never prints it and never exits;
* six event types only (``step_start``, ``text``, ``reasoning``, ``tool_use``, ``step_finish``, ``error``),
  every one carrying ``sessionID``; there is **no terminal event**: the turn is over when the process exits;
* ``text``/``reasoning`` arrive finished (no deltas); ``reasoning`` only with ``--thinking``; a ``text`` part
  with ``synthetic: true`` is opencode's own words (after compacting a full context mid-run, the summary
  call's text is printed like any answer, then a synthetic "Continue if you have next steps..." prompt);
* ``tool_use`` reports a call and its result together, once the tool is ``completed`` or ``error``;
* ``step_finish.tokens.output`` excludes reasoning tokens, ``tokens.input`` excludes cache reads;
* errors are ``error`` events (``APIError`` with ``statusCode``/``responseHeaders``, ``ContextOverflowError``
  -- emitted twice, the second from the automatic compaction request --, ``UnknownError``); opencode has
  already retried 5 times, honouring ``retry-after-ms``/``retry-after``; the exit code is 1 after an error
  event and 0 otherwise, also when a permission request was auto-rejected;
* ``--session`` with an unknown id: empty stdout, ``Error: Session not found`` on stderr, exit 1;
* sessions live in ``$XDG_DATA_HOME/opencode/opencode.db``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar

from caw.errors import ConfigurationError
from caw.events import (
    ErrorEvent,
    ErrorKind,
    Event,
    RateLimitEvent,
    RawEvent,
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
    FirstStartLock,
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
from caw.providers.markers import OPENCODE_MARKERS
from caw.text import last_meaningful_line

# ToolGroup -> opencode permission names (1.18.33). A group the user did not grant is set to "deny", which
# also removes its tools from the list sent to the model; a granted group keeps opencode's own defaults
# (everything allowed except reading .env files and paths outside the project, which `run` auto-rejects).
PERMISSIONS: dict[ToolGroup, tuple[str, ...]] = {
    ToolGroup.READER: ("read", "glob", "grep", "lsp"),
    ToolGroup.WRITER: ("edit",),  # covers the write and patch tools too
    ToolGroup.EXEC: ("bash",),
    ToolGroup.WEB: ("webfetch", "websearch"),
    ToolGroup.PARALLEL: ("task",),
    ToolGroup.INTERACTION: ("question",),
}

CONFIG_CONTENT_VAR = "OPENCODE_CONFIG_CONTENT"
PERMISSION_VAR = "OPENCODE_PERMISSION"

_NOT_FOUND = re.compile(r"Session not found", re.IGNORECASE)
MIGRATION_RACE_MESSAGE = (
    "opencode's first start raced another run on the same data home (its database migration failed:"
    " database is locked); run it again, or let one run finish its first start before starting others"
)
#: next to opencode.db: the lock a first start holds, and the marker that says first starts are over
FIRST_START_LOCK = ".caw-first-start.lock"
FIRST_START_MARKER = ".caw-first-start.done"
# issue 17: what a first start that lost the race in opencode's migration prints (1.18.33)
_MIGRATION_RACE = re.compile(r"database is locked|Failed query:\s*CREATE (TABLE|INDEX)", re.IGNORECASE)
_AUTO_REJECT = re.compile(r"permission requested: .*auto-rejecting", re.IGNORECASE)
_UNKNOWN_AGENT = re.compile(r"agent \".*\" not found", re.IGNORECASE)
_CONNECT = re.compile(r"cannot connect|unable to connect|econnrefused|fetch failed", re.IGNORECASE)
_OPENAI_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


class OpencodeProvider(Provider):
    name = "opencode"
    binary_name = "opencode"
    # the sessions DB is $XDG_DATA_HOME/opencode/opencode.db: a resume needs the same data home
    config_home_var = "XDG_DATA_HOME"
    # opencode's models depend on the providers the user configured: no provider-neutral tier names
    tiers: ClassVar[dict[ModelTier, str]] = {}
    #: the detector's provider guess; the tuple lives in markers.py, so `import caw` registers it cheaply
    limit_markers: ClassVar[tuple[str, ...]] = OPENCODE_MARKERS
    install_command = "npm install -g opencode-ai"
    login_command = "run `opencode auth login`"
    #: `opencode serve` + one turn against a cold `opencode run` measured 0.67x and 1.10x under load
    #: (docs/dev/warm-sessions.md): not a clear win, so one turn stays cold
    warm_single_turn = False
    #: its credential variables: caw masks their values in what it writes and prints (issue 17.4)
    #: step_finish.cost: tokens times the model's configured price (None when it has none: issue 16)
    reports_cost = True
    #: the warm client sends ``output_schema`` as the prompt's ``format`` (a cold run is asked in the prompt)
    warm_request_fields: ClassVar[frozenset[str]] = frozenset({"output_schema", "stream_text"})
    secret_env_vars: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY",
    )  # fmt: skip

    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        # --thinking: reasoning parts are printed (as `reasoning` events) only with it
        inv = Invocation(argv=[*self.executable(binary), "run", "--format", "json", "--thinking"])
        argv = inv.argv
        if request.resume_key:
            argv += ["--session", request.resume_key]
        else:
            argv.append("--title=")  # see the module doc: no title request, no prompt text in argv
        if config.model:
            argv += ["--model", check_model(config.model)]
        if config.reasoning:
            argv += ["--variant", config.reasoning]
        argv += list(config.extra_args)
        # the CLI's env is os.environ + config.env + ours (caw.session.turn): merge with what it would otherwise get
        inv.env.update(run_env(config, {**os.environ, **config.env}))
        inv.stdin = request.prompt.encode()
        inv.cwd = config.cwd
        return inv

    def continuation_prompt(self, original: str) -> str:
        # a run that ended in an error keeps the user message in the session (the failed assistant message
        # is dropped): `--session` then sends [original, "continue"], so the original reaches the model once
        return "continue"

    def parser(self, config: RunConfig | None = None, request: TurnRequest | None = None) -> OpencodeParser:
        parser = OpencodeParser()
        if config is not None:
            # opencode never prints its model: with none passed, the one its config names (issue 12)
            parser.model = config.model or configured_model({**os.environ, **config.env}, Path(config.cwd))
        return parser

    def interactive_command(self, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
        # the mapping of build (scripted) for the full-screen UI (`opencode [project]`)
        cmd = InteractiveCommand(argv=[*self.executable(binary)])
        argv = cmd.argv
        user_env = {**os.environ, **config.env}
        if config.model:
            argv += ["--model", check_model(config.model)]
        if config.tools is not None:
            cmd.env[PERMISSION_VAR] = permission_json(config.tools, user_env.get(PERMISSION_VAR))
        additions = config_additions(config)
        if config.reasoning:
            # the UI has no --variant (only `run` has): an agent's default variant applies when the agent runs
            # its configured model, so caw configures both for opencode's two primary agents
            agent: dict[str, str] = {"variant": config.reasoning}
            if config.model:
                agent["model"] = config.model
            additions["agent"] = {"build": agent, "plan": dict(agent)}
        if additions:
            cmd.env[CONFIG_CONTENT_VAR] = merge_config_content(user_env.get(CONFIG_CONTENT_VAR), additions)
        argv += list(config.extra_args)
        if prompt:
            if fits_argv(prompt):
                argv.append(f"--prompt={prompt}")  # one token: a leading "-" cannot be taken for a flag
            else:
                # the input box's placeholder: opencode drops keys that arrive before it is drawn; it also
                # trims the end of a paste and adds one space (seen on 1.18.33), which caw cannot avoid
                cmd.paste, cmd.ready = prompt, b"Ask anything"
        return cmd

    def first_start_lock(self, env: Mapping[str, str]) -> FirstStartLock | None:
        # issue 17: concurrent first starts in a fresh data home race in opencode's SQLite migration
        # ("Failed query: CREATE TABLE ..." / "database is locked"); the first one runs alone
        data = _data_home(env) / "opencode"
        marker = data / FIRST_START_MARKER
        if marker.exists():
            return None
        return FirstStartLock(data / FIRST_START_LOCK, marker)

    def warm_client(self, binary: str, config: RunConfig, env: Mapping[str, str]) -> WarmClient | None:
        # issue 14: `opencode serve` on 127.0.0.1, one server per Session (caw/providers/opencode_warm.py)
        from caw.providers.opencode_warm import OpencodeWarmClient

        model = check_model(config.model).partition("/") if config.model else None
        serve_env = run_env(config, {**env, **config.env})
        return OpencodeWarmClient(self, binary, config, env, serve_env=serve_env, model=model and (model[0], model[2]))

    def credential_signal(self, env: Mapping[str, str]) -> str | None:
        content = env.get(CONFIG_CONTENT_VAR, "")
        if content.strip():
            try:
                config = json.loads(content)
            except ValueError:
                config = None
            # a configured provider block is how scripted setups give opencode a model and a key
            if isinstance(config, dict) and config.get("provider"):
                return f"config provider in {CONFIG_CONTENT_VAR}"
        return file_signal(env, _data_home(env) / "opencode" / "auth.json") or env_signal(env, self.secret_env_vars)


# ---- building --------------------------------------------------------------------------------------


def _data_home(env: Mapping[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else user_home(env) / ".local" / "share"


def run_env(config: RunConfig, user_env: Mapping[str, str]) -> dict[str, str]:
    """The variables caw adds to opencode's environment for ``config`` (``run`` and ``serve`` alike):
    ``OPENCODE_PERMISSION`` for the tool groups, ``OPENCODE_CONFIG_CONTENT`` with the system prompt and MCP
    servers merged into the user's own value (``user_env``: what the CLI would otherwise get)."""
    env: dict[str, str] = {}
    if config.tools is not None:
        env[PERMISSION_VAR] = permission_json(config.tools, user_env.get(PERMISSION_VAR))
    additions = config_additions(config)
    if additions:
        env[CONFIG_CONTENT_VAR] = merge_config_content(user_env.get(CONFIG_CONTENT_VAR), additions)
    return env


def check_model(model: str) -> str:
    """opencode models are ``provider/model`` (split at the first ``/``); a bare name can never resolve.

    opencode would start, fail with ``UnknownError: Unexpected server error`` and hide the cause in its
    logs; failing before the run says what is wrong.
    """
    provider, _, model_id = model.partition("/")
    if not provider or not model_id:
        raise ConfigurationError(
            f"opencode model {model!r} must be written provider/model (e.g. anthropic/claude-sonnet-4-5); "
            "`opencode models` lists the ones you have"
        )
    return model


def permission_rules(tools: ToolGroup) -> dict[str, str]:
    """``deny`` for every permission of a group not in ``tools`` (granted groups keep opencode's defaults)."""
    rules: dict[str, str] = {}
    for group, names in PERMISSIONS.items():
        if group not in tools:
            rules.update(dict.fromkeys(names, "deny"))
    return rules


def permission_json(tools: ToolGroup, user_value: str | None) -> str:
    """``OPENCODE_PERMISSION`` with caw's rules on top of the user's own value (kept when it is JSON)."""
    merged: dict[str, Any] = {}
    if user_value:
        try:
            parsed = json.loads(user_value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            merged.update(parsed)
    merged.update(permission_rules(tools))
    return json.dumps(merged, separators=(",", ":"))


def mcp_entries(servers: tuple[MCPServer, ...]) -> dict[str, Any]:
    """The config ``mcp`` section: local servers run ``[command, *args]``, remote ones are a URL."""
    entries: dict[str, Any] = {}
    for s in servers:
        if s.url:
            entries[s.name] = {"type": "remote", "url": s.url, "enabled": True}
        else:
            entry: dict[str, Any] = {"type": "local", "command": [s.command, *s.args], "enabled": True}
            if s.env:
                entry["environment"] = dict(s.env)
            entries[s.name] = entry
    return entries


def configured_model(env: Mapping[str, str], cwd: Path) -> str | None:
    """The ``"model"`` opencode's config names, from the source it merges last to the first:
    ``OPENCODE_CONFIG_CONTENT``, the project's ``opencode.json`` (walking up from ``cwd``), ``$OPENCODE_CONFIG``,
    the user's ``~/.config/opencode``. None when none does (opencode then picks by recent use). JSONC files
    (comments) are skipped: caw reads JSON only."""

    def named(text: str | None) -> str | None:
        try:
            data = json.loads(text) if text else None
        except ValueError:
            return None
        model = data.get("model") if isinstance(data, dict) else None
        return model if isinstance(model, str) and model else None

    def read(path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    found = named(env.get(CONFIG_CONTENT_VAR))
    if found:
        return found
    if not env.get("OPENCODE_DISABLE_PROJECT_CONFIG"):
        for directory in [cwd.resolve(), *cwd.resolve().parents]:
            for name in ("opencode.json", "opencode.jsonc"):
                found = named(read(directory / name))
                if found:
                    return found
    if env.get("OPENCODE_CONFIG"):
        found = named(read(Path(env["OPENCODE_CONFIG"])))
        if found:
            return found
    home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else user_home(env) / ".config"
    for name in ("opencode.json", "opencode.jsonc", "config.json"):
        found = named(read(home / "opencode" / name))
        if found:
            return found
    return None


def config_additions(config: RunConfig) -> dict[str, Any]:
    """What caw adds to opencode's config for this turn (empty when nothing)."""
    additions: dict[str, Any] = {}
    if config.system_prompt:
        additions["instructions"] = [str(instructions_file(config.system_prompt))]
    if config.mcp_servers:
        additions["mcp"] = mcp_entries(config.mcp_servers)
    return additions


def merge_config_content(user_value: str | None, additions: Mapping[str, Any]) -> str:
    """``OPENCODE_CONFIG_CONTENT`` = the user's value (it may hold their providers) deep-merged with caw's.

    opencode reads only one such variable, so caw must not replace it. A value that is not a JSON object
    (opencode also accepts JSONC) cannot be merged safely: that is a configuration error, not a guess.
    """
    base: dict[str, Any] = {}
    if user_value and user_value.strip():
        try:
            parsed = json.loads(user_value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ConfigurationError(
                f"{CONFIG_CONTENT_VAR} must be a JSON object (without comments) for caw to add a system prompt "
                "or MCP servers to it; put the settings in an opencode.json file instead"
            )
        base = parsed
    return json.dumps(_deep_merge(base, additions), separators=(",", ":"))


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            out[key] = _deep_merge(old, value)
        elif key == "instructions" and isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]  # opencode unions instruction lists too
        else:
            out[key] = value
    return out


def instructions_file(text: str) -> Path:
    """A file holding the system prompt, at a path that depends only on its content.

    opencode appends instruction files to its own system prompt as ``Instructions from: <path>`` followed by
    the text, on every model call. The path is part of the system prompt, so it must stay the same from
    turn to turn (a new temp name per turn would change the prompt and defeat the provider's prompt cache),
    and it must survive while any turn using it runs (parallel sessions share one system prompt). Hence a
    content-addressed file in a private per-user directory, written once and not deleted after the turn.
    """
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    directory = _private_dir()
    path = directory / f"system-prompt-{digest}.md"
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    from caw.state.store import storage_errors

    with storage_errors("write", path):
        fd, tmp = tempfile.mkstemp(prefix=".system-prompt-", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old or the new file, never half of one
    return path


def _private_dir() -> Path:
    """``<tmp>/caw-<uid>-opencode`` (0700, ours). A directory someone else planted there is not used."""
    uid = os.getuid()
    path = Path(tempfile.gettempdir()) / f"caw-{uid}-opencode"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o077:
            return path
    except OSError:
        pass
    from caw.state.store import storage_errors

    with storage_errors("create a temp directory in", tempfile.gettempdir()):
        return Path(tempfile.mkdtemp(prefix=f"caw-{uid}-opencode-"))


# ---- parsing ---------------------------------------------------------------------------------------


def usage_from_step(part: Mapping[str, Any]) -> UsageStats:
    """One model call's usage. opencode's ``output`` excludes reasoning; caw's ``output_tokens`` is all output."""
    tokens = part.get("tokens") or {}
    cache = tokens.get("cache") or {}
    reasoning = int(tokens.get("reasoning") or 0)
    cost = part.get("cost")
    if cost == 0 and any(tokens.get(k) for k in ("input", "output", "reasoning")):
        cost = None  # issue 16: a model opencode has no price for reports 0, which is no cost figure at all
    return UsageStats(
        input_tokens=int(tokens.get("input") or 0),
        output_tokens=int(tokens.get("output") or 0) + reasoning,
        cache_read_tokens=int(cache.get("read") or 0),
        cache_write_tokens=int(cache.get("write") or 0),
        reasoning_tokens=reasoning,
        cost_usd=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    )


def _event_time(obj: Mapping[str, Any]) -> datetime:
    """The event's own ``timestamp`` (epoch ms): what a relative retry-after is counted from."""
    stamp = obj.get("timestamp")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        try:
            return datetime.fromtimestamp(stamp / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(timezone.utc)


def _openai_duration(text: str) -> float | None:
    """``x-ratelimit-reset-*`` values: ``"1s"``, ``"6m0s"``, ``"1h2m3.5s"``, ``"20ms"`` -> seconds."""
    text = text.strip()
    if not text:
        return None
    total, pos = 0.0, 0
    for m in _OPENAI_DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
        pos = m.end()
    return total if pos == len(text) else None


def reset_from_headers(headers: Mapping[str, Any], now: datetime) -> datetime | None:
    """When the server said the limit lifts, in opencode's own order of trust.

    ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date) -- what opencode itself waits for
    between retries --, then OpenAI's ``x-ratelimit-reset-*`` durations (the longest of the exhausted ones).
    Relative values count from ``now``, the error event's timestamp (the last response came just before it).
    """
    h = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        if "retry-after-ms" in h:
            return now + timedelta(milliseconds=float(h["retry-after-ms"]))
    except (ValueError, OverflowError):
        pass
    value = h.get("retry-after", "").strip()
    if value:
        try:
            return now + timedelta(seconds=float(value))
        except (ValueError, OverflowError):
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    resets: list[tuple[bool, float]] = []
    for key, raw in h.items():
        if key.startswith("x-ratelimit-reset-"):
            seconds = _openai_duration(raw)
            if seconds is not None:
                exhausted = h.get("x-ratelimit-remaining-" + key.removeprefix("x-ratelimit-reset-")) == "0"
                resets.append((exhausted, seconds))
    if not resets:
        return None
    chosen = [s for exhausted, s in resets if exhausted] or [s for _, s in resets]
    return now + timedelta(seconds=max(chosen))


def _inner_message(message: str) -> str:
    """``UnknownError`` sometimes carries a JSON error object as its message: keep its ``message``."""
    if message.startswith("{"):
        try:
            obj = json.loads(message)
        except ValueError:
            return message
        if isinstance(obj, dict) and isinstance(obj.get("message"), str):
            return str(obj["message"])
    return message


#: the tool errors opencode writes for a permission it refused: an auto-rejected ask, or a deny rule
_REFUSED = re.compile(r"rejected permission to use|specified a rule which prevents you from using", re.IGNORECASE)


class OpencodeParser(TurnParser):
    provider = "opencode"

    def __init__(self) -> None:
        super().__init__()
        self._session_id: str | None = None
        #: the model the turn runs (opencode prints none): ``--model``, else its config (``configured_model``)
        self.model: str | None = None
        self._step_open = False
        self._fatal: tuple[str, str] | None = None

    def on_json(self, obj: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        sid = obj.get("sessionID")
        if self._session_id is None and isinstance(sid, str) and sid:
            # every event carries the session id: the first one announces the conversation (also when the
            # first event is an error, so a limited turn can still be continued with --session)
            self._session_id = sid
            events.append(SessionStarted(provider=self.provider, session_id=sid, model=self.model))
        kind = obj.get("type")
        part = obj.get("part") or {}
        if kind == "step_start":
            if self._step_open:
                # a new model call before the previous one finished: opencode retried a broken stream
                events.append(RetryEvent(provider=self.provider, message="opencode retried the model call"))
            self._step_open = True
        elif kind == "step_finish":
            self._step_open = False
            events.append(UsageEvent(provider=self.provider, usage=usage_from_step(part)))
        elif kind == "text" and part.get("synthetic"):
            events.append(self._synthetic(part))
        elif kind == "text":
            events.append(TextEvent(provider=self.provider, text=str(part["text"]), message_id=part.get("messageID")))
        elif kind == "reasoning":
            events.append(
                ThinkingEvent(provider=self.provider, text=str(part["text"]), message_id=part.get("messageID"))
            )
        elif kind == "tool_use":
            events.append(self._tool(part))
            events += self._denial(part)
        elif kind == "error":
            events.extend(self._error(obj))
        else:
            events.append(RawEvent(provider=self.provider, data=obj))
        return events

    def _synthetic(self, part: Mapping[str, Any]) -> Event:
        """Text opencode wrote itself, not the model: the prompt it sends after compacting the conversation."""
        if (part.get("metadata") or {}).get("compaction_continue"):
            return WarningEvent(
                provider=self.provider,
                message="opencode compacted the conversation (its context was nearly full): the text before "
                "this notice is its summary, and it continued with: " + str(part.get("text") or ""),
            )
        return RawEvent(provider=self.provider, data={"type": "text", "part": dict(part)})

    def _denial(self, part: Mapping[str, Any]) -> list[Event]:
        """A tool use opencode's permissions refused (issue 12 item 5): an ask auto-rejected, or a deny rule."""
        state = part.get("state") or {}
        error = str(state.get("error") or "")
        if state.get("status") != "error" or not _REFUSED.search(error):
            return []
        call_id = str(part.get("callID") or part.get("id") or "")
        return [ToolDeniedEvent(provider=self.provider, id=call_id, name=str(part.get("tool") or "?"), message=error)]

    def _tool(self, part: Mapping[str, Any]) -> Event:
        state = part.get("state") or {}
        args = state.get("input")
        arguments = args if isinstance(args, dict) else {"input": args}
        call_id = str(part.get("callID") or part.get("id") or "")
        name = str(part.get("tool") or "")
        status = state.get("status")
        if status == "completed":
            output = state.get("output")
            return ToolResultEvent(
                provider=self.provider,
                id=call_id,
                output=output if isinstance(output, str) else json.dumps(output),
                name=name,
                arguments=arguments,
            )
        if status == "error":
            # includes "The user rejected permission to use this specific tool call." (auto-rejected ask)
            return ToolResultEvent(
                provider=self.provider,
                id=call_id,
                output=str(state.get("error") or "the tool failed"),
                is_error=True,
                name=name,
                arguments=arguments,
            )
        # pending/running are never printed by 1.18.33; should a later version do so, it is the call alone
        return ToolCallEvent(provider=self.provider, id=call_id, name=name, arguments=arguments)

    def _error(self, obj: Mapping[str, Any]) -> list[Event]:
        error = obj.get("error") or {}
        name = str(error.get("name") or "UnknownError")
        data = error.get("data") or {}
        message = _inner_message(str(data.get("message") or name))
        if self._fatal is not None:
            if self._fatal == (name, message):
                # ContextOverflowError comes twice: the turn's request, then the automatic compaction request
                return []
            return [ErrorEvent(provider=self.provider, kind="unknown", message=message, fatal=False)]
        self._fatal = (name, message)
        status = data.get("statusCode")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        body = str(data.get("responseBody") or "")
        kind = self._error_kind(name, status, message, body)
        limit = self._limit(obj, name, kind, message, body, data.get("responseHeaders"))
        if limit is not None:
            kind = "billing" if not limit.waitable else "rate_limit"
            return [limit, ErrorEvent(provider=self.provider, kind=kind, message=message, status=status)]
        return [ErrorEvent(provider=self.provider, kind=kind, message=message, status=status)]

    @staticmethod
    def _error_kind(name: str, status: int | None, message: str, body: str) -> ErrorKind:
        if name == "ContextOverflowError":
            return "context_overflow"
        if name == "ProviderAuthError":
            return "auth"
        if "insufficient_quota" in body:
            return "billing"  # OpenAI's out-of-credits answer is a 429 too
        if status == 429:
            return "rate_limit"
        if status in (401, 403):
            return "auth"
        if status is not None and status >= 500:
            return "server"
        if status is not None and 400 <= status < 500:
            return "invalid_request"
        if name == "APIError" and _CONNECT.search(message):
            return "server"
        return "unknown"

    def _limit(
        self, obj: Mapping[str, Any], name: str, kind: ErrorKind, message: str, body: str, headers: Any
    ) -> RateLimitEvent | None:
        """A rejected RateLimitEvent when the error is a rate/usage limit (by status or by its text)."""
        from caw.limits import detect_limit

        if kind not in ("rate_limit", "billing", "unknown"):
            return None  # auth, context, server and request errors are what their status says
        now = _event_time(obj)
        found = detect_limit(message, now=now) or (detect_limit(body, now=now) if body else None)
        if kind == "unknown" and found is None:
            return None
        resets_at = reset_from_headers(headers, now) if isinstance(headers, Mapping) else None
        waitable = kind != "billing" and (found is None or found.waitable)
        if resets_at is None and found is not None:
            resets_at = found.resets_at
        limit_kind = found.kind if found is not None else ("rate" if waitable else "credits")
        return RateLimitEvent(
            provider=self.provider,
            status="rejected",
            resets_at=resets_at if waitable else None,
            kind=limit_kind if waitable else "credits",
            waitable=waitable,
            message=message,
        )

    def finish(self, exit_code: int | None, stderr: str) -> list[Event]:
        # opencode's notices on stderr (auto-rejected permissions, an unknown --agent) are worth keeping
        events: list[Event] = [
            WarningEvent(provider=self.provider, message=line)
            for line in _stderr_lines(stderr)
            if _AUTO_REJECT.search(line) or _UNKNOWN_AGENT.search(line)
        ]
        if self.closed:
            return events
        if exit_code != 0 and not self.saw_output and _NOT_FOUND.search(stderr):
            self.closed = True
            message = last_meaningful_line(stderr).removeprefix("Error: ").strip() or "Session not found"
            return [*events, ErrorEvent(provider=self.provider, kind="not_found", message=message)]
        if exit_code != 0 and not self.saw_output and _MIGRATION_RACE.search(stderr):
            self.closed = True
            return [*events, ErrorEvent(provider=self.provider, kind="unknown", message=MIGRATION_RACE_MESSAGE)]
        # no terminal event exists: exit 0 without an error event is a finished turn (base class)
        return [*events, *super().finish(exit_code, stderr)]


def _stderr_lines(stderr: str) -> list[str]:
    from caw.text import strip_ansi

    lines = (strip_ansi(line).strip() for line in stderr.splitlines())
    return [line.lstrip("! ").strip() for line in lines if line]
