"""opencode's warm mode (issue 14): one ``opencode serve`` per Session, driven over loopback HTTP + SSE.

``OpencodeWarmClient`` starts ``opencode serve --hostname 127.0.0.1 --port <free port>`` in the session's
directory with the environment a cold ``opencode run`` gets (``caw.providers.opencode.run_env``: permissions,
system prompt, MCP servers) plus a random ``OPENCODE_SERVER_PASSWORD`` (HTTP basic auth, user ``opencode``),
waits for its ``opencode server listening on http://...`` line, subscribes to ``GET /event`` (SSE) and then
creates the conversation (``POST /session``) or checks the one to resume (``GET /session/{id}``). A turn is
``POST /session/{id}/prompt_async``; cancel is ``POST /session/{id}/abort``. The first-start lock
(``OpencodeProvider.first_start_lock``) is held by the runner around ``start``, which covers the database
migration of a fresh data home (the server migrates when the first session is created or read).

Events are translated into the objects ``opencode run --format json`` prints and fed to the cold
``OpencodeParser``, so a warm turn yields exactly the events a cold one does for the same content:

* ``message.part.updated`` of the turn's assistant messages: ``step-start`` -> ``step_start``, a ``text`` /
  ``reasoning`` part once it has ``time.end`` -> ``text`` / ``reasoning``, a ``tool`` part once it is
  ``completed`` or ``error`` -> ``tool_use``, ``step-finish`` -> ``step_finish`` (per-call usage and cost;
  ``tokens`` in serve are per message, never cumulative). Each part is emitted once (by part id);
  ``message.part.delta`` (streamed text) is not, as the cold parser has no deltas;
* ``session.error`` -> ``error`` (so limits, auth, context overflow, ... map as in the cold parser, with
  ``caw.limits``); ``MessageAbortedError`` after caw's own ``abort`` is the cancel, not an error;
* ``session.status`` ``retry`` -> ``RetryEvent`` (``attempt``, ``message``, ``delay_ms`` from ``next``);
* ``permission.asked`` / ``question.asked`` are rejected at once, as ``run`` does (``serve`` would wait for an
  answer forever), with the warning ``run`` prints;
* any other event for this session, and any event that is not JSON, -> ``RawEvent``; other sessions' events
  and the server's own bookkeeping (``plugin.added``, ``server.heartbeat``, ``session.diff``, ...) are dropped.

The turn's end is ``session.idle`` or ``session.status`` ``idle`` **after** the turn was seen running
(``busy``/``retry``, or an assistant message answering the turn's prompt). Traps guarded (opencode 1.18.33):

* ``GET /session/status`` says nothing (idle) for ~2 s after ``prompt_async`` of a server's first prompt,
  while it boots the project instance: idle before busy is not the end (``test_opencode_status_idle_before_busy``);
* a stale idle arrives (an ``abort`` of an idle session, or ``session.idle`` sent on connect,
  anomalyco/opencode#26635): ignored for the same reason (``test_opencode_idle_sent_on_connect_is_ignored``);
* ``session.idle`` may never come (KochC/opencode-llm-proxy#95) and the SSE stream can close mid-turn
  (anomalyco/opencode#38458): after ``status_poll_s`` without an event of the turn (or at once after a
  reconnect), ``GET /session/status`` is asked; once the session is not busy, ``GET /session/{id}/message``
  is read and every part not yet emitted is emitted from it, and the turn ends when the last assistant
  message has ``time.completed`` (``test_opencode_missing_session_idle``, ``test_opencode_sse_dropped_mid_turn``).
  The SSE stream is reconnected whenever it drops;
* ``prompt_async`` may accept a prompt that never reaches the session (#26635): idle, and no user message
  newer than the prompt after ``discard_after_s``, fails the turn
  (``test_opencode_prompt_async_silently_discarded_is_a_turn_failure``).

Structured output: set ``client.output_format = {"type": "json_schema", "schema": {...}, "retryCount": 2}``
(or pass ``output_format=`` to the constructor) and every prompt carries it as opencode's ``format`` field;
the final assistant message's ``structured`` value is then the turn's ``ResultEvent.structured`` (and
``last_structured``).

Nothing here leaves 127.0.0.1: the client only ever connects to the address the server printed, which must
be a loopback one.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from caw.errors import ConfigurationError, ConversationNotFound, FirstOutputTimeout
from caw.events import ErrorEvent, Event, RawEvent, ResultEvent, RetryEvent, SessionStarted, WarningEvent
from caw.providers.base import Provider, RunConfig, TurnParser, TurnRequest, WarmClient, WarmClosed
from caw.transport.longlived import EOF, LongLivedProcess
from caw.transport.process import ProcessSpec

PASSWORD_VAR = "OPENCODE_SERVER_PASSWORD"
USERNAME = "opencode"
_LISTENING = re.compile(r"listening on (http://[^\s]+)")
#: what ``opencode run`` denies in its sessions ([code] 1.18.33): nobody is there to answer them
_RUN_DENIES = ("question", "plan_enter", "plan_exit")
#: events that say nothing about a turn (the server's bookkeeping, other subsystems)
_IGNORED = frozenset(
    {
        "server.connected", "server.heartbeat", "session.created", "session.updated", "session.diff",
        "session.deleted", "session.compacted", "plugin.added", "catalog.updated", "reference.updated",
        "integration.updated", "message.part.delta", "message.removed", "message.part.removed",
        "permission.replied", "question.replied", "question.rejected", "todo.updated", "file.edited",
        "file.watcher.updated", "lsp.updated", "lsp.client.diagnostics", "installation.updated",
        "vcs.branch.updated", "project.updated", "command.executed", "mcp.tools.changed",
    }
)  # fmt: skip
#: part types ``run --format json`` never prints
_SILENT_PARTS = frozenset({"patch", "snapshot", "file", "agent", "subtask", "compaction", "retry"})
_TITLE_LEN = 50
#: the longest a start may take when the turn has no first-output deadline (``start(timeout=None)``)
START_TIMEOUT_S = 300.0
#: ms of rounding between caw's clock and the server's (both are this machine's wall clock)
_SKEW_MS = 50.0


class OpencodeWarmClient(WarmClient):
    """One ``opencode serve`` holding one conversation (see the module doc).

    Made by ``OpencodeProvider.warm_client``, which passes what it computes for a cold ``run`` too:
    ``serve_env`` (the variables caw adds to opencode's environment) and ``model`` (``providerID``, ``modelID``).
    ``status_poll_s``: seconds without an event of the running turn after which the status is asked (the
    backstop for a dropped stream or a missing idle). ``discard_after_s``: seconds after which a prompt the
    server accepted but never stored (and the session is idle) fails the turn. ``clock`` is the monotonic clock.
    """

    def __init__(
        self,
        provider: Provider,
        binary: str,
        config: RunConfig,
        env: Mapping[str, str],
        *,
        serve_env: Mapping[str, str] | None = None,
        model: tuple[str, str] | None = None,
        output_format: Mapping[str, Any] | None = None,
        status_poll_s: float = 2.0,
        discard_after_s: float = 60.0,
        http_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(provider, binary, config, env)
        #: opencode's ``format`` for every prompt, e.g. ``{"type": "json_schema", "schema": {...}}`` (None: text)
        self.output_format: dict[str, Any] | None = dict(output_format) if output_format else None
        #: the ``structured`` value of the last turn's final assistant message (with ``output_format``)
        self.last_structured: Any = None
        self.status_poll_s = status_poll_s
        self.discard_after_s = discard_after_s
        self.http_timeout_s = http_timeout_s
        self._clock = clock
        self._password = secrets.token_urlsafe(24)
        self._auth = "Basic " + base64.b64encode(f"{USERNAME}:{self._password}".encode()).decode()
        self._proc: LongLivedProcess | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._sid: str | None = None
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._close_lock = threading.Lock()
        self._sse: _SseReader | None = None
        self._last_activity: float | None = None
        self._serve_env = dict(serve_env or {})
        self._model = {"providerID": model[0], "modelID": model[1]} if model else None
        self._turn: _TurnState | None = None
        #: how many times the event stream was opened again after it dropped
        self.reconnects = 0

    # ---- the contract ----------------------------------------------------------------------------
    def start(self, request: TurnRequest, *, timeout: float | None) -> None:
        # a start is one blocking call the runner's watchdogs do not cover: never wait for ever
        timeout = START_TIMEOUT_S if timeout is None else timeout
        deadline = self._clock() + timeout
        cwd = os.path.abspath(self.config.cwd)
        env = {**self.env, **self.config.env}
        env.update(self._serve_env)
        env[PASSWORD_VAR] = self._password
        env.pop("OPENCODE_SERVER_USERNAME", None)
        env["PWD"] = cwd
        argv = [*self.provider.executable(self.binary), "serve", "--hostname", "127.0.0.1", "--port", str(_free_port())]
        self._proc = LongLivedProcess(ProcessSpec(argv, env, cwd), clock=self._clock)
        self._proc.start()  # SpawnError: the runner says the CLI is not installed
        self._wait_listening(deadline, timeout)
        self._sse = _SseReader(self)
        self._sse.start()
        self._wait_connected(deadline, timeout)
        if request.resume_key:
            status, _ = self._call("GET", f"/session/{quote(request.resume_key)}")
            if status == 404:
                raise ConversationNotFound(self.provider.name, f"Session not found: {request.resume_key}")
            self._sid = request.resume_key
        else:
            title = " ".join(request.prompt.split())[:_TITLE_LEN] or "caw"
            rules = [{"permission": p, "pattern": "*", "action": "deny"} for p in _RUN_DENIES]
            status, body = self._call("POST", "/session", {"title": title, "permission": rules})
            if status != 200 or not isinstance(body, dict) or not isinstance(body.get("id"), str):
                raise WarmClosed(f"opencode serve did not create a session (HTTP {status})", **self._died())
            self._sid = body["id"]

    def begin(self, request: TurnRequest) -> None:
        sid = self._sid
        if sid is None or not self.alive:
            raise WarmClosed("opencode serve is not running", **self._died())
        parser = self.provider.parser(self.config, request)
        state = _TurnState(parser, begun_ms=time.time() * 1000.0, started_at=self._clock())
        # the cold parser announces the session from its first event's sessionID; caw knows it already (and a
        # turn cancelled before any part has none): the objects fed to it carry no sessionID
        model = getattr(parser, "model", None)
        state.pending.append(SessionStarted(provider=self.provider.name, session_id=sid, model=model))
        self._turn = state
        self.last_structured = None
        body: dict[str, Any] = {"parts": [{"type": "text", "text": request.prompt}]}
        if self._model is not None:
            body["model"] = self._model
        if self.config.reasoning:
            body["variant"] = self.config.reasoning
        if request.output_schema is not None:  # output= (issue 16): this turn's schema, opencode's own retries
            body["format"] = {"type": "json_schema", "schema": request.output_schema, "retryCount": 1}
        elif self.output_format is not None:
            body["format"] = self.output_format
        status, answer = self._call("POST", f"/session/{quote(sid)}/prompt_async", body)
        if status == 404:
            state.done = True
            raise ConversationNotFound(self.provider.name, f"Session not found: {sid}")
        if status >= 300:
            state.done = True
            raise WarmClosed(f"opencode serve refused the prompt (HTTP {status}: {_short(answer)})", **self._died())

    def poll(self, timeout: float) -> list[Event]:
        state = self._turn
        if state is None or state.done:
            return []
        out: list[Event] = state.pending
        state.pending = []
        # the wait is real time (the queue's); the injected clock is the turn's (backstop, discard allowance)
        deadline = time.monotonic() + max(0.0, timeout)
        while not state.done:
            wait = deadline - time.monotonic()
            try:
                kind, item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                out += self._backstop(state)
                if out or state.done or time.monotonic() >= deadline:
                    break
                continue
            out += self._handle(state, kind, item)
            if out and self._queue.empty():
                break
        if not state.done and not out:
            out += self._backstop(state)
        if not out and not state.done and not self.alive:
            raise WarmClosed("opencode serve exited", **self._died())
        return out

    @property
    def turn_done(self) -> bool:
        return self._turn is None or self._turn.done

    def interrupt(self) -> None:
        state, sid = self._turn, self._sid
        if state is None or state.done or sid is None:
            return
        state.interrupted = True
        try:
            self._call("POST", f"/session/{quote(sid)}/abort", timeout=5.0)
        except WarmClosed:
            pass

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive and not self._closing.is_set()

    @property
    def resume_key(self) -> str | None:
        return self._sid

    @property
    def last_activity(self) -> float | None:
        return self._last_activity

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def port(self) -> int:
        """The port the server listens on (0 before it does)."""
        return self._port

    def stderr_tail(self) -> str:
        return self._proc.stderr_tail() if self._proc is not None else ""

    def tool_pids(self) -> set[int]:
        return self._proc.descendants() if self._proc is not None and self._proc.alive else set()

    def kill_tools_since(self, before: set[int]) -> list[int]:
        return self._proc.kill_new_descendants(before) if self._proc is not None else []

    def close(self, grace_s: float = 2.0) -> None:
        with self._close_lock:
            self._closing.set()
            if self._sse is not None:
                self._sse.stop()
            if self._proc is not None:
                self._proc.stop(grace_s)
            if self._sse is not None:
                self._sse.join(2.0)

    # ---- start-up --------------------------------------------------------------------------------
    def _wait_listening(self, deadline: float | None, timeout: float | None) -> None:
        assert self._proc is not None
        while True:
            left = None if deadline is None else deadline - self._clock()
            if left is not None and left <= 0:
                self.close(0.0)
                raise FirstOutputTimeout(
                    f"opencode: `opencode serve` did not listen within {timeout:g}s",
                    provider=self.provider.name,
                    seconds=timeout or 0.0,
                )
            line = self._proc.read_line(left)
            if line is EOF:
                self._proc.stop(0.0)  # it is gone: this reaps it and lets the stderr reader finish
                raise WarmClosed("opencode serve exited before it listened", **self._died())
            match = _LISTENING.search(line or "")
            if match:
                url = urlsplit(match.group(1))
                if url.hostname not in ("127.0.0.1", "localhost", "::1") or url.port is None:
                    self.close(0.0)
                    raise ConfigurationError(f"opencode serve listens on {match.group(1)}, not on loopback")
                self._host, self._port = "127.0.0.1" if url.hostname == "localhost" else url.hostname, url.port
                return

    def _wait_connected(self, deadline: float | None, timeout: float | None) -> None:
        """Wait for the stream's ``server.connected``: events before it would be lost."""
        while True:
            left = None if deadline is None else deadline - self._clock()
            if left is not None and left <= 0:
                self.close(0.0)
                raise FirstOutputTimeout(
                    f"opencode: `opencode serve` did not open its event stream within {timeout:g}s",
                    provider=self.provider.name,
                    seconds=timeout or 0.0,
                )
            try:
                kind, item = self._queue.get(timeout=min(left, 0.5) if left is not None else 0.5)
            except queue.Empty:
                if not (self._proc is not None and self._proc.alive):
                    raise WarmClosed("opencode serve exited before its event stream opened", **self._died()) from None
                continue
            if kind == "event" and isinstance(item, dict) and item.get("type") == "server.connected":
                return

    # ---- HTTP ------------------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        return {"Authorization": self._auth, "Content-Type": "application/json"}

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _call(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> tuple[int, Any]:
        """One request; (status, parsed JSON or None). ``WarmClosed`` when the server cannot be reached."""
        conn = self.connection(timeout or self.http_timeout_s)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=self.headers())
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise WarmClosed(f"opencode serve did not answer {method} {path}: {exc}", **self._died()) from None
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, parsed

    def _died(self) -> dict[str, Any]:
        proc = self._proc
        if proc is None:
            return {}
        return {"exit_code": proc.exit_code, "stderr_tail": proc.stderr_tail()}

    # ---- one turn --------------------------------------------------------------------------------
    def _handle(self, state: _TurnState, kind: str, item: Any) -> list[Event]:
        name = self.provider.name
        if kind == "garbled":
            return [RawEvent(provider=name, data={"sse": str(item)[:4000]})]
        if kind == "dropped":
            state.dropped = True
            return []
        if kind == "connected":
            state.check_now = True  # events may have been lost while the stream was down
            state.verify_idle = True  # and a fresh stream may open with a stale idle (#26635)
            return []
        obj: dict[str, Any] = item
        etype = str(obj.get("type") or "")
        props = obj.get("properties")
        props = props if isinstance(props, dict) else {}
        sid = props.get("sessionID")
        if sid is None and isinstance(props.get("info"), dict):
            sid = props["info"].get("sessionID")
        if sid is None and isinstance(props.get("part"), dict):
            sid = props["part"].get("sessionID")
        if sid is not None and sid != self._sid:
            return []
        if sid is not None:
            self._last_activity = self._clock()
            state.last_event_at = self._clock()
        if etype in _IGNORED:
            return []
        if sid is not None and etype not in ("session.idle", "session.status"):
            state.verify_idle = False  # the new stream carries the turn: its idle is news again
        try:
            return self._map(state, etype, props, obj)
        except (KeyError, TypeError, ValueError, AttributeError):
            return [RawEvent(provider=name, data=obj)]

    def _map(self, state: _TurnState, etype: str, props: dict[str, Any], obj: dict[str, Any]) -> list[Event]:
        name = self.provider.name
        if etype == "message.updated":
            self._message(state, props["info"])
            return []
        if etype == "message.part.updated":
            part = props["part"]
            if state.roles.get(str(part.get("messageID"))) != "assistant":
                return []  # the prompt's own parts, or a message of an earlier turn
            return self._part(state, part)
        if etype == "session.error":
            return self._error(state, props.get("error") or {})
        if etype == "session.status":
            status = props["status"]
            stype = status.get("type")
            if stype in ("busy", "retry"):
                state.running = True
            if stype == "retry":
                nxt = status.get("next")
                delay = max(0.0, float(nxt) - time.time() * 1000.0) if isinstance(nxt, (int, float)) else None
                attempt = status.get("attempt")
                return [
                    RetryEvent(
                        provider=name,
                        attempt=attempt if isinstance(attempt, int) else None,
                        delay_ms=delay,
                        message=str(status.get("message") or "opencode is retrying the model call"),
                    )
                ]
            if stype == "idle":
                return self._idle(state)
            return []
        if etype == "session.idle":
            return self._idle(state)
        if etype == "permission.asked":
            return self._refuse_permission(props)
        if etype == "question.asked":
            self._post_quietly(f"/question/{quote(str(props['id']))}/reject", None)
            return [WarningEvent(provider=name, message="opencode asked a question; caw rejected it (nobody answers)")]
        return [RawEvent(provider=name, data=obj)]

    def _message(self, state: _TurnState, info: Mapping[str, Any]) -> None:
        mid, role = str(info["id"]), info.get("role")
        fresh = state.fresh(info)
        if role == "user":
            if mid not in state.roles and fresh and state.user_id is None:
                state.user_id = mid  # the turn's prompt (created after caw sent it)
            state.roles.setdefault(mid, "user")
            return
        if role != "assistant":
            return
        if mid not in state.roles:
            mine = info.get("parentID") == state.user_id if state.user_id is not None else fresh
            state.roles[mid] = "assistant" if mine else "earlier"
        if state.roles[mid] != "assistant":
            return  # a late update of an earlier turn's answer
        state.running = True
        if (info.get("time") or {}).get("completed") or info.get("error"):
            state.answered = True
        if info.get("structured") is not None:
            self.last_structured = info["structured"]

    def _part(self, state: _TurnState, part: Mapping[str, Any]) -> list[Event]:
        pid, ptype = str(part.get("id") or ""), part.get("type")
        if pid in state.emitted:
            return []
        if ptype == "step-start":
            cold = "step_start"
        elif ptype == "step-finish":
            cold = "step_finish"
        elif ptype in ("text", "reasoning"):
            if not (part.get("time") or {}).get("end"):
                return []  # still streaming (the cold parser sees a part once, finished)
            cold = str(ptype)
        elif ptype == "tool":
            if (part.get("state") or {}).get("status") not in ("completed", "error"):
                return []
            cold = "tool_use"
        elif ptype in _SILENT_PARTS:
            return []
        else:
            state.emitted.add(pid)
            return [RawEvent(provider=self.provider.name, data={"type": "message.part.updated", "part": dict(part)})]
        state.emitted.add(pid)
        state.running = True
        return state.parser.feed({"type": cold, "timestamp": _now_ms(), "part": dict(part)})

    def _error(self, state: _TurnState, error: Mapping[str, Any]) -> list[Event]:
        if error.get("name") == "MessageAbortedError" and state.interrupted:
            return []  # caw's own abort: the runner ends the turn as cancelled
        key = json.dumps(error, sort_keys=True, default=str)
        if key in state.errors:
            return []
        state.errors.add(key)
        return state.parser.feed({"type": "error", "timestamp": _now_ms(), "error": dict(error)})

    def _idle(self, state: _TurnState) -> list[Event]:
        if not (state.running or state.interrupted):
            return []  # idle before the turn ran: a stale one, or the server still preparing the prompt
        if state.verify_idle or not (state.answered or state.errors or state.interrupted):
            # first words of a reconnected stream, or an idle while no answer of the turn is complete (a stale
            # one, from an earlier abort): the status and the stored messages decide (the backstop)
            state.check_now = True
            return []
        out: list[Event] = []
        if state.dropped:
            out += self._reconcile(state, final=True)
        return out + self._finish(state)

    def _finish(self, state: _TurnState) -> list[Event]:
        if state.done:
            return []
        state.done = True
        events = state.parser.finish(0, "")
        if self.last_structured is not None:
            # the answer to ``format`` (json_schema): the final assistant message's ``structured`` value
            events = [
                e.model_copy(update={"structured": self.last_structured}) if isinstance(e, ResultEvent) else e
                for e in events
            ]
        return events

    def _refuse_permission(self, props: Mapping[str, Any]) -> list[Event]:
        request_id = str(props["id"])
        self._post_quietly(f"/permission/{quote(request_id)}/reply", {"reply": "reject"})
        patterns = ", ".join(str(p) for p in props.get("patterns") or [])
        what = f"{props.get('permission')} ({patterns})" if patterns else str(props.get("permission"))
        return [WarningEvent(provider=self.provider.name, message=f"permission requested: {what}; auto-rejecting")]

    def _post_quietly(self, path: str, body: Any) -> None:
        try:
            self._call("POST", path, body if body is not None else {}, timeout=5.0)
        except WarmClosed:
            pass

    # ---- the backstop ----------------------------------------------------------------------------
    def _backstop(self, state: _TurnState) -> list[Event]:
        """Ask the server when the stream said nothing for a while (or came back after a drop)."""
        now = self._clock()
        quiet = now - max(state.last_event_at, state.last_check_at, state.started_at)
        if state.done or not (state.check_now or quiet >= self.status_poll_s) or self._sid is None:
            return []
        state.check_now = False
        state.last_check_at = now
        try:
            status, body = self._call("GET", "/session/status", timeout=5.0)
        except WarmClosed:
            return []  # poll raises once the process is gone
        mine = body.get(self._sid) if isinstance(body, dict) else None
        if isinstance(mine, dict) and mine.get("type") in ("busy", "retry"):
            state.running = True
            return []
        if status != 200:
            return []
        return self._reconcile(state, final=False)

    def _reconcile(self, state: _TurnState, *, final: bool) -> list[Event]:
        """Emit from the stored messages what the stream did not deliver; end the turn once it is over."""
        if self._sid is None:
            return []
        try:
            status, body = self._call("GET", f"/session/{quote(self._sid)}/message?limit=50", timeout=10.0)
        except WarmClosed:
            return []
        if status != 200 or not isinstance(body, list):
            return []
        messages = [m for m in body if isinstance(m, dict) and isinstance(m.get("info"), dict)]
        user = None
        for m in reversed(messages):
            info = m["info"]
            if info.get("role") == "user" and (
                info.get("id") == state.user_id or (state.user_id is None and state.fresh(info))
            ):
                user = info.get("id")
                break
        if user is None:
            if final:
                return []
            if state.interrupted:
                return self._finish(state)
            if not state.running and self._clock() - state.started_at >= self.discard_after_s:
                # anomalyco/opencode#26635: prompt_async said 204, and the prompt never reached the session
                state.done = True
                message = (
                    f"opencode serve accepted the prompt but did not store or run it within {self.discard_after_s:g}s"
                )
                return [ErrorEvent(provider=self.provider.name, kind="unknown", message=message)]
            return []
        state.user_id = str(user)
        out: list[Event] = []
        answers = [m for m in messages if m["info"].get("role") == "assistant" and m["info"].get("parentID") == user]
        for m in answers:
            info = m["info"]
            state.roles[str(info["id"])] = "assistant"
            if info.get("structured") is not None:
                self.last_structured = info["structured"]
            for part in m.get("parts") or []:
                if isinstance(part, dict):
                    out += self._part(state, part)
            error = info.get("error")
            if isinstance(error, dict):
                out += self._error(state, error)
        # the session is not busy (asked just before): the turn is over once its last answer is complete (a
        # "tool-calls" finish included: a refused permission stops the loop there), failed, or cancelled
        last = answers[-1]["info"] if answers else None
        over = last is not None and bool((last.get("time") or {}).get("completed") or last.get("error"))
        if not final and (over or state.interrupted or (state.running and last is None)):
            out += self._finish(state)
        return out


class _TurnState:
    def __init__(self, parser: TurnParser, *, begun_ms: float, started_at: float) -> None:
        self.parser = parser
        self.begun_ms = begun_ms
        self.started_at = started_at
        self.pending: list[Event] = []
        self.roles: dict[str, str] = {}
        self.user_id: str | None = None
        self.emitted: set[str] = set()
        self.errors: set[str] = set()
        self.running = False  # seen busy/retry, or an answer: an idle from now on is the turn's end
        self.interrupted = False
        self.dropped = False
        self.check_now = False
        self.verify_idle = False
        self.answered = False  # an assistant message of the turn completed (or failed)
        self.done = False
        self.last_event_at = started_at
        self.last_check_at = started_at

    def fresh(self, info: Mapping[str, Any]) -> bool:
        """The message was created after caw sent this turn's prompt (same machine, same wall clock)."""
        created = (info.get("time") or {}).get("created")
        return isinstance(created, (int, float)) and created >= self.begun_ms - _SKEW_MS


class _SseReader(threading.Thread):
    """Reads ``GET /event`` and queues each event; reconnects when the stream drops, until the client closes."""

    def __init__(self, client: OpencodeWarmClient) -> None:
        super().__init__(name="caw-opencode-sse", daemon=True)
        self.client = client
        # the stream's socket: http.client lets go of it (conn.sock = None) once a close-delimited response starts
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self) -> None:
        client, q = self.client, self.client._queue
        first = True
        while not client._closing.is_set():
            try:
                self._read_once(q, first)
            except (OSError, http.client.HTTPException):
                pass
            first = False
            if client._closing.is_set():
                break
            q.put(("dropped", None))
            proc = client._proc
            if proc is None or not proc.alive:
                break
            client._closing.wait(0.1)  # the server may be restarting its listener: try again shortly

    def _read_once(self, q: queue.SimpleQueue[tuple[str, Any]], first: bool) -> None:
        # 30 s > the server's 10 s heartbeat: a silent socket that long is a dead stream
        conn = self.client.connection(30.0)
        try:
            conn.connect()
            with self._lock:
                self._sock = conn.sock
            if self.client._closing.is_set():
                return
            conn.request("GET", "/event", headers={**self.client.headers(), "Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                resp.read()
                return
            if not first:
                self.client.reconnects += 1
                q.put(("connected", None))
            data: list[str] = []
            while True:
                raw = resp.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif not line and data:
                    _queue_event(q, "\n".join(data))
                    data = []
                elif line and not line.startswith((":", "event:", "id:", "retry:")):
                    q.put(("garbled", line))
        finally:
            with self._lock:
                self._sock = None
            conn.close()


def _queue_event(q: queue.SimpleQueue[tuple[str, Any]], text: str) -> None:
    try:
        obj = json.loads(text)
    except ValueError:
        q.put(("garbled", text))
        return
    if isinstance(obj, dict):
        q.put(("event", obj))
    else:
        q.put(("garbled", text))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _now_ms() -> float:
    return time.time() * 1000.0


def _short(value: Any) -> str:
    return (value if isinstance(value, str) else json.dumps(value))[:200]


__all__ = ["OpencodeWarmClient"]
