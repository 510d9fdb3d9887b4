"""A scripted stand-in for ``opencode serve`` (stdlib HTTP + SSE on 127.0.0.1) for the warm client's unit tests.

``FakeServe`` answers the endpoints ``OpencodeWarmClient`` uses (``POST /session``, ``GET /session/{id}``,
``POST /session/{id}/prompt_async``, ``POST /session/{id}/abort``, ``GET /session/status``,
``GET /session/{id}/message``, ``POST /permission/{id}/reply``, ``POST /question/{id}/reject``) and streams
``GET /event``. What happens after a prompt is the test's ``on_prompt(fake, sid, body)``: it emits events
(``emit``), drops the stream (``drop``), sets the status (``status``) and the stored messages (``messages``).
The event shapes below are copied from a real opencode 1.18.33 ``/event`` stream.

``binary(tmp_path)`` writes the "CLI": a shell script that prints the listening line with the fake's port and
then sleeps, so the client spawns, waits and kills a real process; it saves the password it was given.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SID = "ses_fake0001"
_DROP = object()


class FakeServe:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        self.password_file: Path | None = None
        self.on_prompt: Callable[[FakeServe, str, dict[str, Any]], None] | None = None
        self.on_connect: Callable[[FakeServe, int], list[dict[str, Any]]] | None = None
        self.sessions: dict[str, list[dict[str, Any]]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.prompts: list[dict[str, Any]] = []
        self.connects = 0
        self.unauthorized = 0
        self._streams: list[queue.SimpleQueue[Any]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> FakeServe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.drop()
        self.server.shutdown()
        self.server.server_close()

    def binary(self, tmp_path: Path) -> str:
        self.password_file = tmp_path / "password"
        script = tmp_path / "opencode"
        script.write_text(
            "#!/bin/sh\n"
            f'printf %s "$OPENCODE_SERVER_PASSWORD" > {self.password_file}\n'
            f'echo "opencode server listening on http://127.0.0.1:{self.port}"\n'
            "exec sleep 600\n"
        )
        script.chmod(0o755)
        return str(script)

    # ---- what a test scripts ---------------------------------------------------------------------
    def emit(self, *events: dict[str, Any]) -> None:
        with self._lock:
            streams = list(self._streams)
        for ev in events:
            for q in streams:
                q.put(ev)

    def drop(self) -> None:
        """Close every open event stream (the server lives on)."""
        with self._lock:
            streams, self._streams = list(self._streams), []
        for q in streams:
            q.put(_DROP)

    def status(self, sid: str, kind: str | None) -> None:
        if kind is None:
            self.statuses.pop(sid, None)
        else:
            self.statuses[sid] = {"type": kind}

    def messages(self, sid: str, messages: list[dict[str, Any]]) -> None:
        self.sessions[sid] = messages

    def streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.calls if method is None or m == method]

    # ---- serving ---------------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if self.password_file is None or not self.password_file.exists():
            return False
        expected = "Basic " + base64.b64encode(f"opencode:{self.password_file.read_text()}".encode()).decode()
        return header == expected

    def handle(self, h: _Handler, method: str) -> None:
        if not self.authorized(h.headers.get("Authorization")):
            self.unauthorized += 1
            h.reply(401, {"error": "unauthorized"})
            return
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        path = h.path
        self.calls.append((method, path, body))
        parts = path.split("?")[0].strip("/").split("/")
        if method == "GET" and path == "/event":
            self._stream(h)
        elif method == "POST" and parts == ["session"]:
            self.sessions.setdefault(SID, [])
            h.reply(200, {"id": SID, "title": (body or {}).get("title"), "directory": "/tmp"})
        elif method == "GET" and len(parts) == 2 and parts[0] == "session" and parts[1] != "status":
            if parts[1] in self.sessions:
                h.reply(200, {"id": parts[1]})
            else:
                h.reply(404, {"name": "NotFoundError", "data": {"message": f"Session not found: {parts[1]}"}})
        elif method == "GET" and parts == ["session", "status"]:
            h.reply(200, dict(self.statuses))
        elif method == "GET" and len(parts) == 3 and parts[2] == "message":
            h.reply(200, self.sessions.get(parts[1], []))
        elif method == "POST" and len(parts) == 3 and parts[2] == "prompt_async":
            if parts[1] not in self.sessions:
                h.reply(404, {"name": "NotFoundError", "data": {"message": "Session not found"}})
                return
            self.prompts.append(body or {})
            h.reply(204, None)
            if self.on_prompt is not None:
                self.on_prompt(self, parts[1], body or {})
        elif method == "POST" and (parts[-1] == "abort" or parts[0] in ("permission", "question")):
            h.reply(200, True)
        else:
            h.reply(404, {"error": "not found"})

    def _stream(self, h: _Handler) -> None:
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.connects += 1
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        first = [{"type": "server.connected", "properties": {}}]
        if self.on_connect is not None:
            first += self.on_connect(self, self.connects)
        with self._lock:
            self._streams.append(q)
        try:
            for ev in first:
                h.wfile.write(_frame(ev))
            h.wfile.flush()
            while True:
                ev = q.get()
                if ev is _DROP:
                    return
                h.wfile.write(ev if isinstance(ev, bytes) else _frame(ev))
                h.wfile.flush()
        except OSError:
            return
        finally:
            with self._lock:
                if q in self._streams:
                    self._streams.remove(q)


def _frame(ev: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(ev).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection; an event stream ends when it is closed

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self) -> None:
        self.server.fake.handle(self, "GET")  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.server.fake.handle(self, "POST")  # type: ignore[attr-defined]


# ---- event shapes (opencode 1.18.33) --------------------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def ev(etype: str, **props: Any) -> dict[str, Any]:
    return {"type": etype, "properties": props}


def status_ev(sid: str, kind: str, **extra: Any) -> dict[str, Any]:
    return ev("session.status", sessionID=sid, status={"type": kind, **extra})


def idle_ev(sid: str) -> dict[str, Any]:
    return ev("session.idle", sessionID=sid)


def user_info(sid: str, mid: str, created: int | None = None) -> dict[str, Any]:
    return {"id": mid, "role": "user", "sessionID": sid, "time": {"created": created or now_ms()}}


def assistant_info(
    sid: str, mid: str, parent: str, *, completed: bool = False, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    t: dict[str, Any] = {"created": now_ms()}
    if completed:
        t["completed"] = now_ms()
    info = {"id": mid, "parentID": parent, "role": "assistant", "sessionID": sid, "time": t, **extra}
    if finish:
        info["finish"] = finish
    return info


def message_ev(info: dict[str, Any]) -> dict[str, Any]:
    return ev("message.updated", sessionID=info["sessionID"], info=info)


def part_ev(part: dict[str, Any]) -> dict[str, Any]:
    return ev("message.part.updated", sessionID=part["sessionID"], part=part, time=now_ms())


def text_part(sid: str, mid: str, pid: str, text: str, *, done: bool = True, kind: str = "text") -> dict[str, Any]:
    t: dict[str, Any] = {"start": now_ms()}
    if done:
        t["end"] = now_ms()
    return {"id": pid, "messageID": mid, "sessionID": sid, "type": kind, "text": text if done else "", "time": t}


def step_start(sid: str, mid: str, pid: str) -> dict[str, Any]:
    return {"id": pid, "messageID": mid, "sessionID": sid, "type": "step-start"}


def step_finish(
    sid: str, mid: str, pid: str, *, inp: int, out: int, reasoning: int = 0, cost: float = 0.0
) -> dict[str, Any]:
    tokens = {"total": inp + out + reasoning, "input": inp, "output": out, "reasoning": reasoning,
              "cache": {"write": 0, "read": 0}}  # fmt: skip
    return {"id": pid, "reason": "stop", "messageID": mid, "sessionID": sid, "type": "step-finish",
            "tokens": tokens, "cost": cost}  # fmt: skip


def tool_part(
    sid: str, mid: str, pid: str, status: str, *, command: str = "echo hi", output: str = "hi\n"
) -> dict[str, Any]:
    state: dict[str, Any] = {"status": status, "input": {"command": command, "description": "Run it"}}
    if status == "completed":
        state.update(output=output, metadata={"output": output, "exit": 0}, title=command)
    elif status == "error":
        state["error"] = output
    return {"id": pid, "messageID": mid, "sessionID": sid, "type": "tool", "tool": "bash", "callID": "call_1",
            "state": state}  # fmt: skip
