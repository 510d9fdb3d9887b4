"""codex's warm mode: one ``codex app-server`` per Session, one thread, one turn at a time (issue 14).

The app-server speaks JSON-RPC over stdio, one object per line, with **no** ``"jsonrpc"`` member (0.171).
caw sends ``initialize`` + ``initialized``, then ``thread/start`` (or ``thread/resume`` for a resume key) and a
``turn/start`` per user message; ``turn/interrupt`` cancels. The notifications are translated into the shape of
``codex exec --json`` and fed to a ``CodexParser``, so a warm turn maps text, reasoning, tool items, denials,
retries and failures exactly as a cold turn does (docs/dev/warm-sessions.md, "codex app-server").

Protocol facts this client relies on (observed on 0.171.0 against the loopback fake):

* ``thread/start`` takes what ``codex exec`` gets as flags: ``sandbox``, ``model``, ``approvalPolicy`` and a
  ``config`` object of dotted keys with JSON values (``features.shell_tool: false`` is ``--disable shell_tool``);
  caw's system prompt is ``developerInstructions``. MCP env values travel in that object over stdin, not argv;
* ``thread/tokenUsage/updated`` carries the thread's running ``total`` and the last *model request*'s ``last``:
  a turn's usage is its final total minus the total before its first request;
* ``thread/resume`` replays the previous turn's ``thread/tokenUsage/updated`` right after its reply (the turn
  id is the old turn's): usage is accounted per turn id, so that replay never counts;
* a thread that never ran a turn has no rollout: ``thread/resume`` answers ``no rollout found`` (-32600), so the
  resume key is reported only once a turn has ended;
* ``turn/interrupt`` ends the turn (``turn/completed`` status ``interrupted``) but leaves the turn's shell
  command running (the model is told "unified exec processes may still be running"): the session kills it
  through ``kill_tools_since``;
* ``turn/completed`` may arrive before the ``turn/start`` reply, and may not arrive at all: ``thread/status``
  ``idle`` while a turn is open starts a grace period, then ``thread/read`` says how the turn ended;
* ``thread/resume`` can hang (openai/codex#37047): it has its own timeout and becomes ``FirstOutputTimeout``.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import tomllib

from caw.errors import ConversationNotFound, FirstOutputTimeout, ProviderCrashed, ProviderNotInstalled
from caw.events import (
    ErrorEvent,
    ErrorKind,
    Event,
    RawEvent,
    ResultEvent,
    RetryEvent,
    TextEvent,
    UsageEvent,
    WarningEvent,
)
from caw.models import ToolGroup, UsageStats
from caw.providers.base import Provider, RunConfig, TurnParser, TurnRequest, WarmClient, WarmClosed
from caw.structured.strict import to_strict
from caw.transport.longlived import EOF, LongLivedProcess
from caw.transport.process import ProcessSpec, SpawnError
from caw.version import __version__

#: seconds ``thread/resume`` may take before caw gives up on it (it can hang: openai/codex#37047)
RESUME_TIMEOUT_S = 30.0
#: seconds the handshake may take when the session gives no first-output deadline (a hung start never returns)
START_TIMEOUT_S = 120.0
#: seconds after ``thread/status/changed`` idle before a missing ``turn/completed`` is looked up
IDLE_GRACE_S = 1.0

#: a server->client request caw answers with a JSON-RPC error: its method is not one caw handles
METHOD_NOT_FOUND = -32601

#: ``item/tool/call`` handler: ``params`` in, a ``DynamicToolCallResponse`` (``contentItems``, ``success``) out
DynamicToolHandler = Callable[[dict[str, Any]], dict[str, Any]]

# notifications that carry nothing a caw event shows (deltas repeat what the completed item says)
_QUIET = frozenset(
    {
        "thread/started",
        "thread/readState/changed",
        "thread/goal/cleared",
        "thread/goal/updated",
        "thread/name/updated",
        "thread/settings/updated",
        "remoteControl/status/changed",
        "mcpServer/startupStatus/updated",
        "account/rateLimits/updated",
        "serverRequest/resolved",
        "deprecationNotice",
        "turn/diff/updated",
        "turn/plan/updated",
        "item/agentMessage/delta",
        "item/reasoning/summaryTextDelta",
        "item/reasoning/summaryPartAdded",
        "item/reasoning/textDelta",
        "item/commandExecution/outputDelta",
        "item/fileChange/outputDelta",
        "item/plan/delta",
        "item/mcpToolCall/progress",
    }
)

# v2 item type -> the ``codex exec --json`` item type the cold parser knows
_ITEM_TYPES = {
    "agentMessage": "agent_message",
    "reasoning": "reasoning",
    "commandExecution": "command_execution",
    "fileChange": "file_change",
    "mcpToolCall": "mcp_tool_call",
    "webSearch": "web_search",
}
# `thread/resume` of a thread codex has no rollout for (never ran a turn, ephemeral, another CODEX_HOME)
_NOT_FOUND = re.compile(r"no rollout found|thread not found", re.IGNORECASE)
_STATUS = {"inProgress": "in_progress", "completed": "completed", "failed": "failed", "declined": "declined"}


# ---- settings ------------------------------------------------------------------------------------


@dataclass
class AppServerSettings:
    """What ``codex exec`` gets as flags, in the app-server's terms (``thread/start`` / ``thread/resume``)."""

    sandbox: str
    model: str | None = None
    developer_instructions: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def thread_params(self, cwd: str) -> dict[str, Any]:
        params: dict[str, Any] = {"cwd": cwd, "approvalPolicy": "never", "sandbox": self.sandbox}
        if self.model:
            params["model"] = self.model
        if self.developer_instructions:
            params["developerInstructions"] = self.developer_instructions
        if self.config:
            params["config"] = self.config
        return params


def app_server_settings(config: RunConfig, flags: list[str]) -> AppServerSettings | None:
    """The cold path's flags as app-server parameters; None when ``extra_args`` hold an option the app-server
    has no equivalent for (the session then runs cold).

    ``flags`` are caw's own ``codex exec`` flags for ``config`` without its system prompt, MCP servers' env and
    ``extra_args`` (``caw.providers.codex.warm_flags``). ``-c k=v`` becomes ``config[k]`` (the value parsed as
    TOML, as codex does, else the literal string), ``--enable/--disable F`` ``config["features.F"]``, ``-s``
    the sandbox and ``-m`` the model; then ``extra_args`` the same way. The system prompt is
    ``developerInstructions`` (the cold path's ``developer_instructions``) and the MCP servers' env values go in
    ``config`` (over stdin: no profile file, nothing on argv).
    """
    settings = AppServerSettings(sandbox="read-only", developer_instructions=config.system_prompt)
    if not _apply_flags(settings, flags):
        return None
    for server in config.mcp_servers:
        if server.env:
            settings.config[f"mcp_servers.{server.name}.env"] = dict(server.env)
    if not _apply_flags(settings, list(config.extra_args)):
        return None
    return settings


#: exec's switches without a value that the app-server can honour (the others make the session run cold)
_SWITCHES = {"--dangerously-bypass-approvals-and-sandbox": "danger-full-access", "--skip-git-repo-check": None}


def _apply_flags(settings: AppServerSettings, argv: list[str]) -> bool:
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag in _SWITCHES:
            sandbox = _SWITCHES[flag]
            settings.sandbox = sandbox or settings.sandbox  # the git check is exec's own: nothing to pass
            i += 1
            continue
        name, eq, inline = flag.partition("=")
        if flag.startswith("--") and eq:
            value: str | None = inline
        else:
            name, value = flag, (argv[i + 1] if i + 1 < len(argv) else None)
            i += 1
        i += 1
        if value is None:
            return False
        if name in ("-c", "--config"):
            key, sep, raw = value.partition("=")
            if not sep:
                return False
            settings.config[key.strip()] = _toml_value(raw.strip())
        elif name in ("--enable", "--disable"):
            settings.config[f"features.{value}"] = name == "--enable"
        elif name in ("-s", "--sandbox"):
            settings.sandbox = value
        elif name in ("-m", "--model"):
            settings.model = value
        else:
            return False
    return True


def _toml_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # codex too takes a value that is not TOML as a literal string


# ---- the client ----------------------------------------------------------------------------------


@dataclass
class _TurnUsage:
    """One turn's ``thread/tokenUsage/updated``: the total before its first request, and the newest total."""

    before: UsageStats
    latest: UsageStats


class CodexWarmClient(WarmClient):
    """A ``codex app-server`` holding one thread (see the module docstring for the protocol facts).

    ``dynamic_tool_handler`` answers ``item/tool/call`` (a tool registered with ``thread/start``'s
    ``dynamicTools``); without one the call gets an error result, so the model is told and the turn goes on.
    """

    def __init__(
        self,
        provider: Provider,
        binary: str,
        config: RunConfig,
        env: Mapping[str, str],
        *,
        settings: AppServerSettings,
        clock: Callable[[], float] = time.monotonic,
        resume_timeout_s: float = RESUME_TIMEOUT_S,
        idle_grace_s: float = IDLE_GRACE_S,
        dynamic_tool_handler: DynamicToolHandler | None = None,
    ) -> None:
        super().__init__(provider, binary, config, env)
        self.settings = settings
        self._clock = clock
        self.resume_timeout_s = resume_timeout_s
        self.idle_grace_s = idle_grace_s
        self.dynamic_tool_handler = dynamic_tool_handler
        self._spawn_env = {**self.env, **config.env}
        self._proc: LongLivedProcess | None = None
        self._next_id = 0
        self._pending: dict[int, str] = {}  # request id -> method
        self._lock = threading.Lock()
        self._thread_id: str | None = None
        self._persisted = False  # the thread has a rollout (a turn ended, or it was resumed)
        self._closed_error: WarmClosed | None = None
        self._closed = False
        # the current turn
        self._parser: TurnParser | None = None
        self._turn_id: str | None = None
        self._start_request: int | None = None
        self._done = True
        self._active = False  # turn/started or thread status active seen for this turn
        self._idle_at: float | None = None
        self._read_request: int | None = None
        self._interrupt_requested = False
        self._interrupt_sent = False
        self._last_error: tuple[str, Any] | None = None  # (message, codexErrorInfo) of the newest fatal `error`
        self._last_text: str | None = None
        self._announced = False
        self._usage: dict[str, _TurnUsage] = {}
        self._ended_turns: set[str] = set()

    # ---- WarmClient --------------------------------------------------------------------------
    def start(self, request: TurnRequest, *, timeout: float | None) -> None:
        cwd = os.path.abspath(self.config.cwd)
        argv = [*self.provider.executable(self.binary), "app-server", "--listen", "stdio://"]
        proc = LongLivedProcess(ProcessSpec(argv, {**self._spawn_env, "PWD": cwd}, cwd), clock=self._clock)
        try:
            proc.start()
        except SpawnError as exc:
            raise ProviderNotInstalled(self.provider.name, self.binary, reason=str(exc)) from exc
        self._proc = proc
        deadline = self._clock() + (START_TIMEOUT_S if timeout is None else timeout)
        try:
            self._call(
                "initialize",
                {
                    "clientInfo": {"name": "caw", "title": None, "version": __version__},
                    "capabilities": {"experimentalApi": True},
                },
                deadline,
                "initialize",
            )
            self._send({"method": "initialized"})
            params = self.settings.thread_params(cwd)
            if request.resume_key:
                resume_deadline = min(self._clock() + self.resume_timeout_s, deadline)
                result = self._call(
                    "thread/resume",
                    {"threadId": request.resume_key, "excludeTurns": True, **params},
                    resume_deadline,
                    "thread/resume",
                )
                self._persisted = True
            else:
                result = self._call("thread/start", params, deadline, "thread/start")
            thread = result.get("thread") or {}
            self._thread_id = str(thread.get("id") or request.resume_key or "")
            if not self._thread_id:
                raise ProviderCrashed(self.provider.name, "codex app-server named no thread")
        except BaseException:
            self.close(0)
            raise

    def begin(self, request: TurnRequest) -> None:
        if self._thread_id is None:
            raise WarmClosed("codex app-server was not started")
        # the cold parser, with the context it gets for a cold turn (CODEX_HOME, TZ, the model): the warm
        # turn's notifications are fed to it in the shape of `codex exec --json`
        resume = self._thread_id if self._persisted else None
        parser = self.provider.parser(self.config, TurnRequest(prompt=request.prompt, resume_key=resume))
        self._parser = parser
        self._turn_id = None
        self._done = False
        self._active = False
        self._idle_at = None
        self._read_request = None
        self._interrupt_requested = self._interrupt_sent = False
        self._last_error = None
        self._last_text = None
        self._announced = False
        text = {"type": "text", "text": request.prompt, "text_elements": []}
        params: dict[str, Any] = {"threadId": self._thread_id, "input": [text]}
        if request.output_schema is not None:
            # exec's --output-schema, per turn: the same OpenAI-strict form the cold path writes to its file
            params["outputSchema"] = to_strict(request.output_schema)
        self._start_request = self._request("turn/start", params)

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        if self._closed_error is not None:
            raise self._closed_error
        proc = self._require_proc()
        deadline = self._clock() + max(0.0, timeout)
        while not events and not self._done:
            now = self._clock()
            wait = deadline - now
            if self._idle_at is not None and self._read_request is None:
                due = self._idle_at + self.idle_grace_s
                if now >= due:
                    self._read_request = self._request(
                        "thread/read", {"threadId": self._thread_id, "includeTurns": True}
                    )
                    continue
                wait = min(wait, due - now)
            line = proc.read_line(max(0.0, wait))
            if line is EOF:  # every event before it was returned (the loop stops at the first)
                self._closed_error = self._gone("codex app-server exited in the middle of a turn")
                raise self._closed_error
            if line:
                events += self._handle_line(line)
            elif self._clock() >= deadline:
                break
        return events

    @property
    def turn_done(self) -> bool:
        return self._done

    def interrupt(self) -> None:
        if self._done:
            return
        self._interrupt_requested = True
        self._send_interrupt()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive and self._closed_error is None and not self._closed

    @property
    def resume_key(self) -> str | None:
        return self._thread_id if self._persisted else None

    @property
    def last_activity(self) -> float | None:
        return self._proc.last_output_at if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stderr_tail(self) -> str:
        return self._proc_tail()

    def tool_pids(self) -> set[int]:
        return self._proc.descendants() if self._proc is not None else set()

    def kill_tools_since(self, before: set[int]) -> list[int]:
        return self._proc.kill_new_descendants(before) if self._proc is not None else []

    def close(self, grace_s: float = 2.0) -> None:
        self._closed = True
        if self._proc is not None:
            self._proc.stop(grace_s)

    # ---- wire --------------------------------------------------------------------------------
    def _require_proc(self) -> LongLivedProcess:
        if self._proc is None:
            raise WarmClosed("codex app-server was not started")
        return self._proc

    def _send(self, message: dict[str, Any]) -> None:
        if not self._require_proc().write_line(json.dumps(message)):
            self._closed_error = self._gone("codex app-server closed its input")
            raise self._closed_error

    def _request(self, method: str, params: dict[str, Any]) -> int:
        with self._lock:  # interrupt() sends from the cancelling thread while poll() runs
            self._next_id += 1
            rid = self._next_id
            self._pending[rid] = method
        self._send({"id": rid, "method": method, "params": params})
        return rid

    def _gone(self, message: str) -> WarmClosed:
        proc = self._require_proc()
        proc.wait(0.5)
        code = proc.exit_code
        note = f" (exit code {code})" if code is not None and code >= 0 else ""
        if code is not None and code < 0:
            note = f" (killed by signal {-code})"
        return WarmClosed(message + note, exit_code=code, stderr_tail=proc.stderr_tail())

    def _call(self, method: str, params: dict[str, Any], deadline: float | None, what: str) -> dict[str, Any]:
        """One request during the handshake: its result (server requests are answered meanwhile)."""
        proc = self._require_proc()
        rid = self._request(method, params)
        started = self._clock()
        while True:
            wait = None if deadline is None else deadline - self._clock()
            if wait is not None and wait <= 0:
                raise FirstOutputTimeout(
                    f"codex app-server did not answer {what} within {self._clock() - started:.1f}s",
                    provider=self.provider.name,
                    seconds=self._clock() - started,
                )
            line = proc.read_line(wait)
            if line is EOF:
                raise self._gone(f"codex app-server exited during {what}")
            msg = _parse(line) if line else None
            if msg is None:
                continue
            if "method" in msg and "id" in msg:
                self._answer(msg)
            elif msg.get("id") == rid:
                self._pending.pop(rid, None)
                if "error" in msg:
                    raise self._handshake_error(what, msg["error"])
                result = msg.get("result")
                return result if isinstance(result, dict) else {}

    def _handshake_error(self, what: str, error: Any) -> Exception:
        message = str(error.get("message") if isinstance(error, dict) else error)
        if what == "thread/resume" and _NOT_FOUND.search(message):
            return ConversationNotFound(self.provider.name, message)
        return ProviderCrashed(self.provider.name, f"{what} failed: {message}", stderr_tail=self._proc_tail())

    def _proc_tail(self) -> str:
        return self._proc.stderr_tail() if self._proc is not None else ""

    # ---- server -> client requests -----------------------------------------------------------
    def _answer(self, msg: dict[str, Any]) -> None:
        """Reply to every server request (an unanswered one would hang the turn)."""
        method = str(msg.get("method"))
        params = _dict(msg.get("params"))
        result = self._decide(method, params)
        if result is None:
            reply: dict[str, Any] = {
                "id": msg["id"],
                "error": {"code": METHOD_NOT_FOUND, "message": f"caw does not handle {method}"},
            }
        else:
            reply = {"id": msg["id"], "result": result}
        self._send(reply)

    def _decide(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        tools = self.config.tools
        exec_ok = tools is None or ToolGroup.EXEC in tools
        write_ok = tools is None or ToolGroup.WRITER in tools
        if method == "item/commandExecution/requestApproval":
            return {"decision": "accept" if exec_ok else "decline"}
        if method == "item/fileChange/requestApproval":
            return {"decision": "accept" if write_ok else "decline"}
        if method == "execCommandApproval":
            return {"decision": "approved" if exec_ok else "denied"}
        if method == "applyPatchApproval":
            return {"decision": "approved" if write_ok else "denied"}
        if method == "item/permissions/requestApproval":
            return {"permissions": {}, "scope": "turn"}  # grant nothing beyond the sandbox caw chose
        if method == "item/tool/requestUserInput":
            return {"answers": {}}  # nobody is there to answer (as `exec`)
        if method == "mcpServer/elicitation/request":
            return {"action": "decline"}
        if method == "item/tool/call":
            if self.dynamic_tool_handler is not None:
                try:
                    return self.dynamic_tool_handler(params)
                except Exception as exc:  # a handler's bug is the tool's error, not the session's
                    return _tool_error(f"{params.get('tool')}: {type(exc).__name__}: {exc}")
            return _tool_error(f"caw has no handler for the tool {params.get('tool')!r}")
        return None

    # ---- notifications -----------------------------------------------------------------------
    def _handle_line(self, line: str) -> list[Event]:
        msg = _parse(line)
        if msg is None:
            return [RawEvent(provider=self.provider.name, data={"line": line})]
        try:
            return self._handle(msg)
        except (KeyError, TypeError, ValueError, AttributeError):
            return [RawEvent(provider=self.provider.name, data=msg)]

    def _handle(self, msg: dict[str, Any]) -> list[Event]:
        method = msg.get("method")
        if method is not None and "id" in msg:
            self._answer(msg)
            return []
        if method is None:
            return self._response(msg) if "id" in msg else [RawEvent(provider=self.provider.name, data=msg)]
        params = _dict(msg.get("params"))
        thread = params.get("threadId")
        if thread is not None and thread != self._thread_id:
            return []  # another thread's news (a subagent's, say)
        if method == "thread/tokenUsage/updated":
            return self._token_usage(params)
        turn = params.get("turnId")
        if method == "turn/completed":
            turn = _dict(params.get("turn")).get("id")
        if turn is not None and (turn in self._ended_turns or (self._turn_id is not None and turn != self._turn_id)):
            return []  # a late line of an earlier (interrupted) turn
        if self._done:
            return []
        if method == "turn/started":
            self._adopt_turn(str(params["turn"]["id"]))
            self._active = True
            return self._announce()
        if method in ("turn/completed", "item/started", "item/completed", "error"):
            return [*self._announce(), *self._notification(str(method), params)]
        return self._notification(str(method), params, msg)

    def _notification(self, method: str, params: dict[str, Any], msg: dict[str, Any] | None = None) -> list[Event]:
        if method == "thread/status/changed":
            return self._status(params.get("status") or {})
        if method == "turn/completed":
            return self._turn_completed(params["turn"])
        if method in ("item/started", "item/completed"):
            return self._item(str(method).split("/", 1)[1], params["item"])
        if method == "error":
            return self._error(params)
        if method in ("warning", "configWarning"):
            text = params.get("message") or params.get("summary") or ""
            return [WarningEvent(provider=self.provider.name, message=str(text))]
        if method in _QUIET:
            return []
        return [RawEvent(provider=self.provider.name, data=msg or {"method": method, "params": params})]

    def _response(self, msg: dict[str, Any]) -> list[Event]:
        rid = msg.get("id")
        method = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if method == "turn/start" and rid == self._start_request:
            if "error" in msg:
                if self._done:
                    return []
                error = msg["error"]
                message = str(error.get("message") if isinstance(error, dict) else error)
                return self._close_turn(self._fatal(message, None))
            turn = (msg.get("result") or {}).get("turn") or {}
            if turn.get("id") and not self._done:
                self._adopt_turn(str(turn["id"]))
            return []
        if method == "thread/read" and rid == self._read_request:
            return self._recovered(msg.get("result") or {})
        return []  # turn/interrupt's `{}`, or a reply to a request of an earlier turn

    def _adopt_turn(self, turn_id: str) -> None:
        if self._turn_id is None:
            self._turn_id = turn_id
            if self._interrupt_requested:
                self._send_interrupt()

    def _announce(self) -> list[Event]:
        """``SessionStarted`` once the turn really runs (cold parity: exec's ``thread.started``, every turn).

        Not before: a thread whose first turn never started has no rollout, and a session that took its id
        as the resume key would resume a thread codex cannot find."""
        if self._announced or self._parser is None:
            return []
        self._announced = True
        return self._parser.feed({"type": "thread.started", "thread_id": self._thread_id})

    def _send_interrupt(self) -> None:
        with self._lock:
            if self._interrupt_sent or self._turn_id is None or self._thread_id is None:
                return  # sent once the turn id is known (the turn/start reply or turn/started)
            self._interrupt_sent = True
        try:
            self._request("turn/interrupt", {"threadId": self._thread_id, "turnId": self._turn_id})
        except WarmClosed:
            pass  # poll reports the dead process

    def _token_usage(self, params: dict[str, Any]) -> list[Event]:
        """Record the turn's running total; the open turn's growth is a non-final ``UsageEvent`` at once.

        codex sends this after every model request, so a budget sees a turn's tokens as they are spent (the
        input of each request dominates, and no streamed text shows it) instead of only at turn/completed."""
        usage = params.get("tokenUsage") or {}
        total = _usage(usage.get("total") or {})
        last = _usage(usage.get("last") or {})
        turn = str(params.get("turnId") or "")
        seen = self._usage.get(turn)
        if seen is None:
            seen = self._usage[turn] = _TurnUsage(before=total - last, latest=total)
            grown = last
        else:
            grown = total - seen.latest
            seen.latest = total
        if self._done or not turn or turn != self._turn_id or turn in self._ended_turns or not grown.total_tokens:
            return []  # a replay of an earlier turn's figures (thread/resume), or nothing new
        return [UsageEvent(provider=self.provider.name, usage=grown, final=False)]

    def _status(self, status: dict[str, Any]) -> list[Event]:
        kind = status.get("type")
        if kind == "active":
            self._active = True
            self._idle_at = None
        elif kind in ("idle", "systemError") and (self._active or self._turn_id is not None):
            # usually turn/completed follows at once; if it never comes, poll asks thread/read
            self._idle_at = self._clock()
        return []

    def _item(self, phase: str, item: dict[str, Any]) -> list[Event]:
        assert self._parser is not None
        converted = exec_item(item)
        if converted is None:
            if item.get("type") in ("userMessage", "hookPrompt", "plan", "contextCompaction"):
                return []
            if phase != "completed":
                return []
            return [RawEvent(provider=self.provider.name, data={"method": f"item/{phase}", "item": item})]
        events = self._parser.feed({"type": f"item.{phase}", "item": converted})
        for ev in events:
            if isinstance(ev, TextEvent):
                self._last_text = ev.text
        return events

    def _error(self, params: dict[str, Any]) -> list[Event]:
        error = params.get("error") or {}
        message = str(error.get("message") or "")
        info = error.get("codexErrorInfo")
        if params.get("willRetry"):
            assert self._parser is not None
            events = self._parser.feed({"type": "error", "message": message})
            if events:
                return events
            # not the `Reconnecting... n/N` wording the cold parser reads: still a transient notice
            return [RetryEvent(provider=self.provider.name, status=_http_status(info), message=message)]
        self._last_error = (message, info)  # turn/completed (status failed) decides, as turn.failed does
        return []

    def _turn_completed(self, turn: dict[str, Any]) -> list[Event]:
        turn_id = str(turn.get("id") or "")
        if turn_id and self._turn_id is None:
            self._turn_id = turn_id  # turn/completed before the turn/start reply
        status = turn.get("status")
        if status == "completed":
            return self._close_turn(
                [*self._usage_events(), ResultEvent(provider=self.provider.name, text=self._last_text)]
            )
        if status == "interrupted":
            events = self._usage_events()
            if not self._interrupt_requested:
                message = "codex interrupted the turn"
                events.append(ErrorEvent(provider=self.provider.name, kind="cli", message=message))
            return self._close_turn(events)
        error = turn.get("error") or {}
        message = str(error.get("message") or (self._last_error[0] if self._last_error else "") or "the turn failed")
        info = error.get("codexErrorInfo") or (self._last_error[1] if self._last_error else None)
        return self._close_turn(self._fatal(message, info))

    def _recovered(self, result: dict[str, Any]) -> list[Event]:
        """The answer to ``thread/read`` after an idle thread sent no ``turn/completed``."""
        if self._done:
            return []
        turns = (result.get("thread") or {}).get("turns") or []
        mine = [t for t in turns if isinstance(t, dict) and t.get("id") == self._turn_id] or turns[-1:]
        if mine and mine[0].get("status") in ("completed", "failed", "interrupted"):
            turn = mine[0]
            if self._last_text is None:
                for item in turn.get("items") or []:
                    if isinstance(item, dict) and item.get("type") == "agentMessage":
                        self._last_text = str(item.get("text", ""))
            return self._turn_completed(turn)
        if self._last_text is not None:
            return self._close_turn(
                [*self._usage_events(), ResultEvent(provider=self.provider.name, text=self._last_text)]
            )
        message = "codex app-server went idle without finishing the turn"
        return self._close_turn([ErrorEvent(provider=self.provider.name, kind="cli", message=message)])

    def _usage_events(self) -> list[Event]:
        seen = self._usage.get(self._turn_id or "")
        usage = seen.latest - seen.before if seen is not None else UsageStats()
        return [UsageEvent(provider=self.provider.name, usage=usage, final=True)]

    def _fatal(self, message: str, info: Any) -> list[Event]:
        assert self._parser is not None
        events = self._parser.feed({"type": "turn.failed", "error": {"message": message}})
        kind = _kind_from_info(info)
        if kind is not None:
            for i, ev in enumerate(events):
                if isinstance(ev, ErrorEvent) and ev.kind == "unknown":
                    events[i] = ev.model_copy(update={"kind": kind, "status": ev.status or _http_status(info)})
        return events

    def _close_turn(self, events: list[Event]) -> list[Event]:
        self._done = True
        self._idle_at = None
        if self._turn_id:
            self._ended_turns.add(self._turn_id)
            self._usage.pop(self._turn_id, None)
        if self._announced:
            self._persisted = True  # a turn ran: codex has written the thread's rollout
        return events


# ---- translation ---------------------------------------------------------------------------------


def exec_item(item: dict[str, Any]) -> dict[str, Any] | None:
    """A v2 ``ThreadItem`` in the shape of ``codex exec --json``'s item (None: a type exec has no item for)."""
    itype = _ITEM_TYPES.get(str(item.get("type")))
    if itype is None:
        return None
    out: dict[str, Any] = {"id": item.get("id", ""), "type": itype}
    status = item.get("status")
    if isinstance(status, str):
        out["status"] = _STATUS.get(status, status)
    if itype == "agent_message":
        out["text"] = item.get("text") or ""
    elif itype == "reasoning":
        parts = item.get("summary") or item.get("content") or []
        out["text"] = "\n\n".join(str(p) for p in parts)
    elif itype == "command_execution":
        out.update(command=item.get("command", ""), aggregated_output=item.get("aggregatedOutput") or "")
        out["exit_code"] = item.get("exitCode")
    elif itype == "file_change":
        changes = []
        for change in item.get("changes") or []:
            if isinstance(change, dict):
                kind = change.get("kind")
                changes.append(
                    {"path": change.get("path", ""), "kind": kind.get("type") if isinstance(kind, dict) else kind}
                )
        out["changes"] = changes
    elif itype == "mcp_tool_call":
        out.update(server=item.get("server", ""), tool=item.get("tool", ""), arguments=item.get("arguments"))
        out.update(result=item.get("result"), error=item.get("error"))
    else:  # web_search
        out.update(query=item.get("query") or "", action=item.get("action"))
    return out


def _usage(raw: Mapping[str, Any]) -> UsageStats:
    """A v2 ``TokenUsageBreakdown``; like exec's usage, ``inputTokens`` counts the cached input (caw's does not)."""

    def n(key: str) -> int:
        value = raw.get(key)
        return int(value) if isinstance(value, int) else 0

    cached = n("cachedInputTokens")
    return UsageStats(
        input_tokens=max(0, n("inputTokens") - cached),
        output_tokens=n("outputTokens"),
        cache_read_tokens=cached,
        cache_write_tokens=n("cacheWriteInputTokens"),
        reasoning_tokens=n("reasoningOutputTokens"),
    )


def _http_status(info: Any) -> int | None:
    if isinstance(info, dict):
        for value in info.values():
            if isinstance(value, dict) and isinstance(value.get("httpStatusCode"), int):
                return int(value["httpStatusCode"])
    return None


_INFO_KINDS: dict[str, ErrorKind] = {
    "usageLimitExceeded": "rate_limit",
    "rateLimitExceeded": "rate_limit",
    "contextWindowExceeded": "context_overflow",
    "unauthorized": "auth",
    "serverOverloaded": "server",
    "internalServerError": "server",
    "flexUnavailable": "server",
    "policyCapacityUnavailable": "server",
    "badRequest": "invalid_request",
    "modelNotFound": "invalid_request",
}


def _kind_from_info(info: Any) -> ErrorKind | None:
    """What ``codexErrorInfo`` says when the text did not (the cold path has only the text)."""
    if isinstance(info, str):
        return _INFO_KINDS.get(info)
    status = _http_status(info)
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status is not None and status >= 500:
        return "server"
    return None


def _tool_error(text: str) -> dict[str, Any]:
    return {"contentItems": [{"type": "inputText", "text": text}], "success": False}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parse(line: str) -> dict[str, Any] | None:
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


__all__ = ["AppServerSettings", "CodexWarmClient", "DynamicToolHandler", "app_server_settings", "exec_item"]
