"""A scripted stand-in for `codex app-server` (stdio, JSON lines, no "jsonrpc" member, as 0.171).

The unit tests of `caw.providers.codex_warm` run it as the "codex" binary (`app_server_binary(tmp)` writes a
wrapper script). It speaks the subset of the protocol caw uses and misbehaves on request: a word in the
prompt picks the scenario, so one process can play several turns.

    early      turn/completed before the turn/start reply
    slowreply  the turn/start reply (the turn id) comes 0.3 s late; combine with `sleep`
    reject     turn/start answered with an error (codex's 1 MiB input cap): no turn runs
    nocomplete thread status idle, no turn/completed; thread/read tells how the turn ended
    tool       a commandExecution item (started, completed) before the answer
    sleep      a commandExecution that starts `sleep 60` and waits for turn/interrupt (which leaves it running,
               as codex does)
    approval   asks item/commandExecution/requestApproval; the answer's decision is the reply text
    dyntool    asks item/tool/call; the answer's text is the reply text
    unknownreq asks a method nobody knows; the error code is the reply text
    garbled    a line that is not JSON and an unknown notification before the answer
    retry      an `error` with willRetry=true, then the answer
    limit      an `error` (usage limit, willRetry=false) and turn/completed failed
    opaque401  a failure whose text says nothing; codexErrorInfo carries HTTP 401
    die        exits in the middle of the turn
    (other)    `ECHO <prompt>`

Every turn adds 100 input / 10 output tokens (2 model requests of 50/5) to the thread's running total.
`thread/resume` of a thread id containing `missing` answers "no rollout found", of one containing `hang` never
answers; a resumed thread first replays its last turn's usage, as codex does. `FAKE_APP_SERVER_LOG` names a file
that receives every line caw sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_log = os.environ.get("FAKE_APP_SERVER_LOG")


def send(msg: dict[str, Any]) -> None:
    with _lock:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()


def raw(line: str) -> None:
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Server:
    def __init__(self) -> None:
        self.thread_id = ""
        self.total = [0, 0]  # input, output
        self.turns = 0
        self.next_request = 1000
        self.replies: dict[int, dict[str, Any]] = {}
        self.reply_ready = threading.Condition()
        self.current_turn: str | None = None
        self.interrupted = threading.Event()
        self.finished: dict[str, dict[str, Any]] = {}

    def notify(self, method: str, params: dict[str, Any]) -> None:
        send({"method": method, "params": params, "emittedAtMs": int(time.time() * 1000)})

    def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_request += 1
        rid = self.next_request
        send({"id": rid, "method": method, "params": params})
        with self.reply_ready:
            self.reply_ready.wait_for(lambda: rid in self.replies, timeout=10)
        return self.replies.pop(rid, {"error": "no reply"})

    def usage(self, turn_id: str, inp: int, out: int) -> None:
        self.total[0] += inp
        self.total[1] += out

        def stats(i: int, o: int) -> dict[str, int]:
            return {"totalTokens": i + o, "inputTokens": i, "cachedInputTokens": 0, "outputTokens": o}

        self.notify(
            "thread/tokenUsage/updated",
            {
                "threadId": self.thread_id,
                "turnId": turn_id,
                "tokenUsage": {"total": stats(*self.total), "last": stats(inp, out)},
            },
        )

    # ---- requests ----------------------------------------------------------------------------
    def handle(self, msg: dict[str, Any]) -> None:
        if "method" not in msg:
            with self.reply_ready:
                self.replies[int(msg["id"])] = msg
                self.reply_ready.notify_all()
            return
        method, rid, params = msg["method"], msg.get("id"), msg.get("params") or {}
        if method == "initialize":
            send({"id": rid, "result": {"userAgent": "fake/0.171.0", "platformOs": "linux"}})
        elif method == "thread/start":
            self.thread_id = "thr-" + os.urandom(4).hex()
            send({"id": rid, "result": {"thread": {"id": self.thread_id, "model": params.get("model") or "fake"}}})
        elif method == "thread/resume":
            tid = params["threadId"]
            if "hang" in tid:
                return
            if "missing" in tid:
                send({"id": rid, "error": {"code": -32600, "message": f"no rollout found for thread id {tid}"}})
                return
            self.thread_id = tid
            self.total = [1000, 100]
            send({"id": rid, "result": {"thread": {"id": tid, "model": "fake"}}})
            self.notify(
                "thread/tokenUsage/updated",
                {
                    "threadId": tid,
                    "turnId": "old-turn",
                    "tokenUsage": {
                        "total": {"inputTokens": 1000, "outputTokens": 100},
                        "last": {"inputTokens": 400, "outputTokens": 40},
                    },
                },
            )
        elif method == "turn/start":
            text = params["input"][0]["text"]
            if "reject" in text:
                message = "Input exceeds the maximum length of 1048576 characters."
                send({"id": rid, "error": {"code": -32602, "message": message}})
                return
            threading.Thread(target=self.turn, args=(rid, text), daemon=True).start()
        elif method == "turn/interrupt":
            send({"id": rid, "result": {}})
            self.interrupted.set()
        elif method == "thread/read":
            turns = list(self.finished.values())
            send({"id": rid, "result": {"thread": {"id": self.thread_id, "turns": turns}}})
        elif rid is not None:
            send({"id": rid, "error": {"code": -32601, "message": f"unknown method {method}"}})

    # ---- one turn ----------------------------------------------------------------------------
    def turn(self, rid: int, text: str) -> None:
        self.turns += 1
        turn_id = f"turn-{self.turns}"
        self.current_turn = turn_id
        self.interrupted.clear()
        tid = self.thread_id
        turn = {"id": turn_id, "items": [], "status": "inProgress", "error": None}
        if "slowreply" in text:
            time.sleep(0.3)  # the fake's own pacing: the client must hold an interrupt until it knows the turn
        if "early" not in text:
            send({"id": rid, "result": {"turn": turn}})
        self.notify("thread/status/changed", {"threadId": tid, "status": {"type": "active", "activeFlags": []}})
        self.notify("turn/started", {"threadId": tid, "turn": turn})
        self.notify(
            "item/started",
            {"threadId": tid, "turnId": turn_id, "item": {"type": "userMessage", "id": "u1", "content": []}},
        )
        if "die" in text:
            os._exit(3)
        reply = f"ECHO {text}"
        if "tool" in text or "sleep" in text:
            cmd = {
                "type": "commandExecution",
                "id": f"call-{self.turns}",
                "command": "/bin/bash -lc 'echo hi'",
                "status": "inProgress",
                "aggregatedOutput": None,
                "exitCode": None,
            }
            self.notify("item/started", {"threadId": tid, "turnId": turn_id, "item": cmd})
            if "sleep" in text:
                subprocess.Popen(["sleep", "60"], start_new_session=True)
                self.usage(turn_id, 50, 5)
                self.interrupted.wait(30)
                self.notify("thread/status/changed", {"threadId": tid, "status": {"type": "idle"}})
                done = {**turn, "status": "interrupted"}
                self.notify("turn/completed", {"threadId": tid, "turn": done})
                return
            done_cmd = {**cmd, "status": "completed", "aggregatedOutput": "hi\n", "exitCode": 0}
            self.notify("item/completed", {"threadId": tid, "turnId": turn_id, "item": done_cmd})
        if "approval" in text:
            answer = self.ask(
                "item/commandExecution/requestApproval",
                {"threadId": tid, "turnId": turn_id, "itemId": "x", "command": "rm -rf /tmp/x"},
            )
            reply = f"decision={answer.get('result', {}).get('decision')}"
        if "dyntool" in text:
            answer = self.ask(
                "item/tool/call",
                {"threadId": tid, "turnId": turn_id, "callId": "c1", "tool": "lookup", "arguments": {"q": 1}},
            )
            result = answer.get("result", {})
            reply = f"success={result.get('success')} text={result.get('contentItems', [{}])[0].get('text')}"
        if "unknownreq" in text:
            answer = self.ask("item/brandNew/request", {"threadId": tid, "turnId": turn_id})
            reply = f"error={answer.get('error', {}).get('code')}"
        if "garbled" in text:
            raw("this is not json {")
            self.notify("item/brandNew/notification", {"threadId": tid, "turnId": turn_id, "x": 1})
        if "retry" in text:
            self.notify(
                "error",
                {
                    "threadId": tid,
                    "turnId": turn_id,
                    "willRetry": True,
                    "error": {
                        "message": "Reconnecting... 1/5",
                        "codexErrorInfo": {"responseStreamDisconnected": {"httpStatusCode": 502}},
                    },
                },
            )
        if "opaque401" in text:
            # wording no classifier knows; only codexErrorInfo says what it was
            error = {
                "message": "the request was refused",
                "codexErrorInfo": {"httpConnectionFailed": {"httpStatusCode": 401}},
            }
            self.notify("error", {"threadId": tid, "turnId": turn_id, "willRetry": False, "error": error})
            self.notify("turn/completed", {"threadId": tid, "turn": {**turn, "status": "failed", "error": error}})
            return
        if "limit" in text:
            error = {
                "message": "You\u2019ve hit your usage limit. Try again at 11:59 PM.",
                "codexErrorInfo": "usageLimitExceeded",
            }
            self.notify("error", {"threadId": tid, "turnId": turn_id, "willRetry": False, "error": error})
            self.notify("thread/status/changed", {"threadId": tid, "status": {"type": "idle"}})
            self.notify("turn/completed", {"threadId": tid, "turn": {**turn, "status": "failed", "error": error}})
            return
        self.usage(turn_id, 50, 5)
        self.usage(turn_id, 50, 5)
        message = {"type": "agentMessage", "id": f"msg-{self.turns}", "text": reply}
        self.notify("item/started", {"threadId": tid, "turnId": turn_id, "item": {**message, "text": ""}})
        self.notify("item/agentMessage/delta", {"threadId": tid, "turnId": turn_id, "itemId": "m", "delta": reply})
        self.notify("item/completed", {"threadId": tid, "turnId": turn_id, "item": message})
        done = {**turn, "status": "completed", "items": [message]}
        self.finished[turn_id] = done
        self.notify("thread/status/changed", {"threadId": tid, "status": {"type": "idle"}})
        if "nocomplete" in text:
            return
        self.notify("turn/completed", {"threadId": tid, "turn": done})
        if "early" in text:
            time.sleep(0.05)
            send({"id": rid, "result": {"turn": turn}})


def main() -> None:
    server = Server()
    log = open(_log, "a", encoding="utf-8") if _log else None  # noqa: SIM115 (lives as long as the process)
    for line in sys.stdin:
        if log is not None:
            log.write(line)
            log.flush()
        line = line.strip()
        if line:
            server.handle(json.loads(line))


def app_server_binary(directory: Path) -> str:
    """An executable that runs this fake (the client appends `app-server --listen stdio://`)."""
    path = directory / "fake-codex"
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} "$@"\n')
    path.chmod(0o755)
    return str(path)


if __name__ == "__main__":
    main()
