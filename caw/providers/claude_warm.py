"""claude's long-lived mode (issue 14): ``--input-format stream-json`` without ``-p`` and its control protocol.

One process holds one conversation. caw writes one JSON line per message on stdin and reads the same
stream-json lines a cold ``-p`` run prints, so each turn's lines go through the cold ``ClaudeParser``.
What only this mode has (shared/reference/warm-sessions.md §2a, observed on 2.1.332 against the fake):

* the ``initialize`` control request is the handshake: its ``control_response`` says the CLI is ready
  (≈0.4 s after spawn); ``system/init`` comes with each message, not before the first;
* one ``result`` per message ends the turn, and the process takes the next message;
* ``result.usage`` is the turn's, but ``total_cost_usd`` and ``modelUsage`` add up over the process's
  life: the client turns them into this turn's share before the parser sees them;
* the CLI may ask caw things (``control_request``): ``can_use_tool`` is answered from the tools config,
  ``mcp_message`` gets a JSON-RPC "method not found" (caw runs no in-process MCP server), any other
  subtype an error reply; ``control_cancel_request`` and ``keep_alive`` need no answer;
* ``interrupt`` is a control request: the CLI stops the model and its tool (its Bash tool's process goes),
  ends the turn with an aborted ``result`` and stays up.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from caw.errors import ConversationNotFound, FirstOutputTimeout, ProviderNotInstalled
from caw.events import Event, RawEvent, SessionStarted
from caw.providers.base import Invocation, RunConfig, TurnRequest, WarmClient, WarmClosed
from caw.text import clip, last_meaningful_line
from caw.transport import ProcessSpec, SpawnError, clean_line
from caw.transport.longlived import EOF, LongLivedProcess

if TYPE_CHECKING:
    from caw.providers.base import Provider, TurnParser

#: how long ``start`` waits for the ``initialize`` answer when the caller gives no deadline (seconds);
#: MCP servers start inside it (the SDK waits 60 s too)
HANDSHAKE_TIMEOUT = 60.0
#: the ``modelUsage`` figures that add up over a process's life
_CUMULATIVE = (
    "inputTokens",
    "outputTokens",
    "cacheReadInputTokens",
    "cacheCreationInputTokens",
    "webSearchRequests",
    "costUSD",
    "thinkingTokens",
    "cacheCreationEphemeral5mInputTokens",
    "cacheCreationEphemeral1hInputTokens",
)

#: an in-process MCP server: a JSON-RPC request in, its response out (``ClaudeWarmClient.sdk_servers``)
SdkServer = Callable[[dict[str, Any]], dict[str, Any]]


class ClaudeWarmClient(WarmClient):
    """One ``claude --input-format stream-json`` process (see the module doc); ``ClaudeProvider.warm_client``.

    ``invocation`` builds the command line for a start (``ClaudeProvider.warm_invocation``), ``parser`` makes
    one turn's parser (``ClaudeParser``), ``allowed_tools`` are the tool names ``can_use_tool`` allows.
    """

    def __init__(
        self,
        provider: Provider,
        binary: str,
        config: RunConfig,
        env: Mapping[str, str],
        *,
        invocation: Callable[[TurnRequest], Invocation],
        parser: Callable[[], TurnParser],
        allowed_tools: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(provider, binary, config, env)
        self._invocation = invocation
        self._new_parser = parser
        self._allowed = allowed_tools
        self._proc: LongLivedProcess | None = None
        self._inv: Invocation | None = None
        self._parser: TurnParser | None = None
        self._done = True
        self._interrupting = False
        self._session_id: str | None = None
        self._ids = itertools.count(1)
        self._cost_seen = 0.0
        self._models_seen: dict[str, dict[str, Any]] = {}
        self._close_lock = threading.Lock()
        #: server name -> handler, for ``mcp_message`` requests (none by default: "method not found")
        self.sdk_servers: dict[str, SdkServer] = {}

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def start(self, request: TurnRequest, *, timeout: float | None) -> None:
        inv = self._invocation(request)
        self._inv = inv
        self._session_id = request.resume_key
        cwd = inv.cwd or self.config.cwd
        proc = LongLivedProcess(ProcessSpec(inv.argv, {**self.env, **inv.env}, cwd, None))
        self._proc = proc
        try:
            proc.start()
        except SpawnError as exc:
            self.close(0.0)
            raise ProviderNotInstalled(self.provider.name, self.binary, str(exc)) from exc
        rid = self._request("initialize", {"hooks": None})
        limit = HANDSHAKE_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close(0.0)
                message = f"{self.provider.name} did not answer caw's initialize request within {limit:g}s"
                raise FirstOutputTimeout(message, provider=self.provider.name, seconds=limit)
            line = proc.read_line(left)
            if line is EOF:
                raise self._gone("exited during its start")
            obj = _json(line)
            if obj is None:
                continue
            if obj.get("type") == "control_response":
                response = obj.get("response") or {}
                if response.get("request_id") == rid:
                    if response.get("subtype") == "error":
                        self.close(0.0)
                        raise self._gone(f"refused caw's initialize request: {response.get('error')}")
                    return
            elif obj.get("type") == "control_request":
                self._answer(obj)

    def begin(self, request: TurnRequest) -> None:
        proc = self._proc
        if proc is None or not proc.alive:
            raise self._gone("is not running")
        self._parser = self._new_parser()
        self._done = False
        self._interrupting = False
        message = {
            "type": "user",
            "message": {"role": "user", "content": request.prompt},
            "parent_tool_use_id": None,
            "session_id": self._session_id or "",
        }
        if not proc.write_line(json.dumps(message, ensure_ascii=False)):
            raise self._gone("closed its input")

    def poll(self, timeout: float) -> list[Event]:
        proc = self._proc
        if proc is None:
            raise WarmClosed(f"{self.provider.name} was never started")
        out: list[Event] = []
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._done:
            line = proc.read_line(0 if out else max(0.0, deadline - time.monotonic()))
            if line is EOF:
                if out:
                    return out  # the next poll raises
                raise self._gone("exited")
            if line == "":
                break
            out += self._on_line(line)
        return out

    @property
    def turn_done(self) -> bool:
        return self._done

    def interrupt(self) -> None:
        if self._done or not self.alive:
            return
        self._interrupting = True
        self._request("interrupt", {})

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive

    @property
    def resume_key(self) -> str | None:
        return self._session_id

    @property
    def last_activity(self) -> float | None:
        return self._proc.last_output_at if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stderr_tail(self) -> str:
        return self._proc.stderr_tail() if self._proc is not None else ""

    def tool_pids(self) -> set[int]:
        return self._proc.descendants() if self._proc is not None else set()

    def kill_tools_since(self, before: set[int]) -> list[int]:
        return self._proc.kill_new_descendants(before) if self._proc is not None else []

    def close(self, grace_s: float = 2.0) -> None:
        with self._close_lock:
            if self._proc is not None:
                self._proc.stop(grace_s)
            if self._inv is not None:
                self._inv.cleanup()
                self._inv = None
            self._done = True

    # ---- the protocol ------------------------------------------------------------------------------------
    def _request(self, subtype: str, body: dict[str, Any]) -> str:
        rid = f"caw_{next(self._ids)}"
        self._send({"type": "control_request", "request_id": rid, "request": {"subtype": subtype, **body}})
        return rid

    def _send(self, obj: dict[str, Any]) -> None:
        if self._proc is not None:
            self._proc.write_line(json.dumps(obj))

    def _reply(self, rid: Any, response: dict[str, Any] | None = None, *, error: str | None = None) -> None:
        if error is not None:
            body: dict[str, Any] = {"subtype": "error", "request_id": rid, "error": error}
        else:
            body = {"subtype": "success", "request_id": rid, "response": response or {}}
        self._send({"type": "control_response", "response": body})

    def _answer(self, obj: dict[str, Any]) -> None:
        """Every control request the CLI sends gets an answer (an unanswered one stalls the turn)."""
        rid = obj.get("request_id")
        request = obj.get("request") if isinstance(obj.get("request"), dict) else {}
        assert isinstance(request, dict)
        subtype = request.get("subtype")
        if subtype == "can_use_tool":
            self._reply(rid, self._permission(request))
        elif subtype == "mcp_message":
            self._reply(rid, {"mcp_response": self._mcp(request)})
        else:
            self._reply(rid, error=f"caw does not handle control requests of subtype {subtype!r}")

    def _permission(self, request: dict[str, Any]) -> dict[str, Any]:
        """``can_use_tool``: the tools the config grants are allowed, anything else refused (as ``-p`` would)."""
        name = str(request.get("tool_name") or "")
        if name in self._allowed:
            tool_input = request.get("input")
            return {"behavior": "allow", "updatedInput": tool_input if isinstance(tool_input, dict) else {}}
        return {"behavior": "deny", "message": f"caw's tools configuration does not allow {name or 'this tool'}"}

    def _mcp(self, request: dict[str, Any]) -> dict[str, Any]:
        message = request.get("message") if isinstance(request.get("message"), dict) else {}
        assert isinstance(message, dict)
        server = self.sdk_servers.get(str(request.get("server_name") or ""))
        if "id" not in message:
            return {"jsonrpc": "2.0", "result": {}}  # a notification: acknowledged
        if server is not None:
            try:
                return server(message)
            except Exception as exc:  # a broken handler is the tool's error, never the turn's crash
                return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32603, "message": str(exc)}}
        return {
            "jsonrpc": "2.0",
            "id": message["id"],
            "error": {"code": -32601, "message": f"caw serves no SDK MCP server {request.get('server_name')!r}"},
        }

    def _on_line(self, line: str) -> list[Event]:
        text = clean_line(line)
        if not text:
            return []
        obj = _json(text)
        if obj is None:
            return [RawEvent(provider=self.provider.name, data={"line": clip(text, 2000)})]
        kind = obj.get("type")
        if kind == "control_request":
            self._answer(obj)
            return []
        if kind in ("control_response", "control_cancel_request", "keep_alive"):
            return []
        parser = self._parser
        if parser is None:  # nothing was asked yet: keep it, never crash
            return [RawEvent(provider=self.provider.name, data=obj)]
        if kind == "result":
            obj = self._this_turns_share(obj)
        events = parser.feed(obj)
        for ev in events:
            if isinstance(ev, SessionStarted) and ev.session_id:
                self._session_id = ev.session_id
        if kind == "result":
            self._done = True
            if not parser.closed and not self._interrupting:
                events += parser.finish(0, self.stderr_tail())  # interrupted by someone else
        return events

    def _this_turns_share(self, obj: dict[str, Any]) -> dict[str, Any]:
        """``total_cost_usd`` and ``modelUsage`` add up over the process's life: keep this turn's part."""
        obj = dict(obj)
        cost = obj.get("total_cost_usd")
        if isinstance(cost, int | float):
            obj["total_cost_usd"] = round(max(0.0, float(cost) - self._cost_seen), 9)
            self._cost_seen = float(cost)
        usage = obj.get("modelUsage")
        if isinstance(usage, dict):
            share: dict[str, Any] = {}
            for model, figures in usage.items():
                if not isinstance(figures, dict):
                    share[model] = figures
                    continue
                before = self._models_seen.get(model, {})
                share[model] = {k: _minus(v, before.get(k)) if k in _CUMULATIVE else v for k, v in figures.items()}
                self._models_seen[model] = dict(figures)
            obj["modelUsage"] = share
        return obj

    def _gone(self, what: str) -> WarmClosed:
        """The error for a process that went away (``ConversationNotFound``, raised here, for a bad resume)."""
        proc = self._proc
        code = proc.wait(1.0) if proc is not None else None
        stderr = proc.stderr_tail() if proc is not None else ""
        if "No conversation found" in stderr:
            self.close(0.0)
            raise ConversationNotFound(
                self.provider.name, last_meaningful_line(stderr), exit_code=code, stderr_tail=stderr
            )
        tail = last_meaningful_line(stderr)
        message = f"{self.provider.name} {what}" + (f": {tail}" if tail else "")
        return WarmClosed(message, exit_code=code, stderr_tail=stderr)


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _minus(now: Any, before: Any) -> Any:
    if isinstance(now, int | float) and isinstance(before, int | float):
        value = now - before
        return round(value, 9) if isinstance(value, float) else value
    return now


__all__ = ["HANDSHAKE_TIMEOUT", "ClaudeWarmClient", "SdkServer"]
