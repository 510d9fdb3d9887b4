"""The loopback fake model server every provider fake builds on.

`FakeModelServer` owns everything that is not wire format: the HTTP server on 127.0.0.1 (random
port, daemon thread), the FIFO of replies, the request log, the CONNECT sink, 404s for unknown
paths, the `/_control/*` endpoints for other processes, and the standalone `__main__` runner.
Subclasses (`anthropic.py`, `openai_responses.py`, `openai_chat.py`) only say which paths are model
endpoints, how to read a request body (user texts, tool results) and how to render a reply.

    with AnthropicFake() as srv:
        srv.enqueue(Text("hello"))
        ...run claude with ANTHROPIC_BASE_URL=srv.url...
        assert srv.model_requests[0].path.startswith("/v1/messages")
"""

from __future__ import annotations

import abc
import argparse
import json
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from tests.fakes.replies import Drop, Echo, Error, Hang, Reply, Text, reply_from_dict, reply_kind

LOOPBACK = "127.0.0.1"
_F = TypeVar("_F", bound="FakeModelServer")
# Hang replies never sleep longer than this, so a forgotten Hang cannot wedge a test run.
MAX_HANG_S = 600.0


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake received.

    `kind`: `model` (a model call), `title` (opencode title generation), `connect` (CONNECT tunnel
    attempt), `proxy` (absolute-form plain-HTTP proxy request), `not_found` (404) or `other`.
    `reply` names what was answered (`text`, `tool_call`, `error`, ... or a status).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw_len: int
    t: float
    kind: str = "other"
    reply: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StopServing(Exception):
    """Raised inside a handler when the server is stopping or the client went away."""


class Responder:
    """Writes one HTTP response: JSON, or an SSE stream in chunked transfer encoding."""

    def __init__(self, handler: _Handler, stopping: threading.Event) -> None:
        self._h = handler
        self._stopping = stopping

    def wait(self, seconds: float) -> None:
        """Sleep `seconds`, but return at once (raising) when the server stops."""
        if seconds > 0 and self._stopping.wait(min(seconds, MAX_HANG_S)):
            raise StopServing

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h = self._h
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def send_truncated_json(self, text: str) -> None:
        """200 with a Content-Length the body never reaches, then a hang-up (non-streaming Drop)."""
        data = json.dumps({"partial": text}).encode()
        h = self._h
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data) * 2))
        h.end_headers()
        h.wfile.write(data)
        self.drop()

    def start_stream(self, headers: dict[str, str] | None = None) -> None:
        h = self._h
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()

    def _chunk(self, data: bytes) -> None:
        try:
            self._h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self._h.wfile.flush()
        except OSError as exc:  # client hung up (e.g. the CLI was killed mid-stream)
            raise StopServing from exc

    def event(self, data: Any, event: str | None = None) -> None:
        """One SSE event; `data` is JSON-encoded unless it is already a string."""
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        prefix = f"event: {event}\n" if event else ""
        self._chunk(f"{prefix}data: {text}\n\n".encode())

    def end_stream(self) -> None:
        self._chunk(b"")  # the zero-length chunk terminates the body

    def drop(self) -> None:
        """Close the connection abruptly, without the terminating chunk."""
        h = self._h
        h.close_connection = True
        try:
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, fake: FakeModelServer) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        # keep-alive connections otherwise keep their handler threads parked in readline()
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so SSE can use chunked encoding and clients can keep connections alive.
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "FakeModelServer/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet; the fake has its own log
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        return b""

    def _dispatch(self) -> None:
        try:
            raw = self._read_body() if self.command not in ("GET", "HEAD", "CONNECT") else b""
            self.server.fake._handle(self, raw)
        except StopServing:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def do_CONNECT(self) -> None:
        self.server.fake._log(self, None, 0, kind="connect", reply="403")
        self.close_connection = True
        body = b"CONNECT refused by fake model server\n"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class FakeModelServer(abc.ABC):
    """A fake model API on 127.0.0.1; subclasses render replies in one wire format.

    Thread-safe: the queue and the log may be used from the test thread while the CLI talks to
    the server. Use as a context manager or call `start()` / `stop()`.
    """

    #: paths (without query string) answered as model calls
    model_paths: ClassVar[frozenset[str]] = frozenset()
    #: name used by the standalone runner
    name: ClassVar[str] = "fake"

    def __init__(self, port: int = 0, log_path: str | Path | None = None) -> None:
        self._requested_port = port
        self._log_path = Path(log_path) if log_path else None
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[LoggedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0
        #: reply used when the queue is empty; None = Echo, or "Tool said: ..." after a tool result
        self.default: Reply | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self: _F) -> _F:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._requested_port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self: _F) -> _F:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fake server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # --- queue and log ------------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies; each model request consumes one (FIFO)."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Snapshot of every logged request (model calls, titles, CONNECTs, 404s), oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def model_requests(self) -> list[LoggedRequest]:
        """Only the model calls (no opencode title requests, no CONNECTs, no 404s)."""
        return [r for r in self.requests if r.kind == "model"]

    def reset(self) -> None:
        """Forget the log and the queue (the default reply stays)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def non_loopback_attempts(self) -> list[LoggedRequest]:
        """CONNECT tunnels and absolute-form proxy requests: anything that tried to leave 127.0.0.1."""
        return [r for r in self.requests if r.kind in ("connect", "proxy")]

    def count_occurrences(self, text: str, *, anywhere: bool = False) -> int:
        """How many model requests carried `text` as (part of) their newest user text.

        With `anywhere=True`, count requests where any user text contains it (history included).
        "The original prompt reached the model exactly once" is `count_occurrences(p) == 1`;
        "the resumed request carries the earlier history" is `count_occurrences(p, anywhere=True) == 2`.
        """
        hits = 0
        for req in self.model_requests:
            if req.body is None:
                continue
            texts = self.user_texts(req.body) if anywhere else [self.last_user_text(req.body)]
            hits += any(text in t for t in texts)
        return hits

    # --- wire-format hooks --------------------------------------------------------------------

    @abc.abstractmethod
    def user_texts(self, body: dict[str, Any]) -> list[str]:
        """All user texts of a model request body, in order."""

    @abc.abstractmethod
    def last_user_text(self, body: dict[str, Any]) -> str:
        """The newest user text of a model request body ("" if none)."""

    @abc.abstractmethod
    def message_count(self, body: dict[str, Any]) -> int:
        """Number of conversation messages/items in a model request body."""

    @abc.abstractmethod
    def tool_result_text(self, body: dict[str, Any]) -> str | None:
        """The text of the tool result when the request ends with one, else None."""

    @abc.abstractmethod
    def error_body(self, reply: Error) -> dict[str, Any]:
        """The provider's JSON error shape for an `Error` reply."""

    @abc.abstractmethod
    def render(self, out: Responder, reply: Reply, body: dict[str, Any], raw_len: int) -> None:
        """Write the response for a (resolved, non-Hang, non-Error) reply."""

    def classify(self, method: str, path: str, body: dict[str, Any] | None) -> str:
        """`model` for model calls; subclasses add e.g. `title`."""
        return "model" if method == "POST" and path in self.model_paths else "other"

    def handle_other(self, out: Responder, method: str, path: str, body: dict[str, Any] | None) -> bool:
        """Answer a non-model request (e.g. `GET /v1/models`); False means 404."""
        return False

    def handle_side_call(self, out: Responder, kind: str, body: dict[str, Any]) -> None:
        """Answer a model-endpoint call that is not a model request (opencode titles)."""
        raise NotImplementedError(kind)

    # --- helpers for subclasses ---------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            n = self._ids
        return f"{prefix}{os.getpid():x}{n:06d}{int(time.time() * 1000) % 100000:05d}"

    def echo_text(self, body: dict[str, Any]) -> str:
        last = self.last_user_text(body)
        return f"ECHO messages={self.message_count(body)} last_len={len(last)} last={last[:120]}"

    def default_reply(self, body: dict[str, Any]) -> Reply:
        if self.default is not None:
            return self.default
        result = self.tool_result_text(body)
        if result is not None:
            return Text(f"Tool said: {result[:200]}")
        return Echo()

    @staticmethod
    def split_text(text: str, chunks: int) -> list[str]:
        """Split `text` into at most `chunks` non-empty pieces (at least one, possibly empty)."""
        n = max(1, min(chunks, len(text)))
        size = -(-len(text) // n) if text else 0
        pieces = [text[i : i + size] for i in range(0, len(text), size)] if text else [""]
        return pieces

    # --- request handling ---------------------------------------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            queued = self._queue.popleft() if self._queue else None
        return queued if queued is not None else self.default_reply(body)

    def _log(
        self, h: _Handler, body: dict[str, Any] | None, raw_len: int, kind: str, reply: str | None
    ) -> LoggedRequest:
        entry = LoggedRequest(
            method=h.command,
            path=h.path,
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
            raw_len=raw_len,
            t=time.time(),
            kind=kind,
            reply=reply,
        )
        with self._lock:
            self._requests.append(entry)
            if self._log_path is not None:
                with self._log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(entry.to_dict()) + "\n")
        return entry

    def _handle(self, h: _Handler, raw: bytes) -> None:
        out = Responder(h, self._stopping)
        path = urlsplit(h.path).path
        body: dict[str, Any] | None = None
        if raw:
            try:
                parsed = json.loads(raw)
                body = parsed if isinstance(parsed, dict) else {"_json": parsed}
            except ValueError:
                body = None
        if h.path.startswith(("http://", "https://")):
            # absolute-form request = someone used us as a plain-HTTP proxy: trying to leave
            self._log(h, body, len(raw), "proxy", "403")
            out.send_json(403, {"error": {"message": "proxying refused by fake model server"}})
            return
        if path.startswith("/_control/"):
            self._control(out, h.command, path, raw)
            return
        kind = self.classify(h.command, path, body)
        if kind == "model" and body is not None:
            reply = self._next_reply(body)
            self._log(h, body, len(raw), kind, reply_kind(reply))
            self._answer(out, reply, body, len(raw))
        elif kind != "other" and body is not None:
            self._log(h, body, len(raw), kind, kind)
            self.handle_side_call(out, kind, body)
        elif self.handle_other(out, h.command, path, body):
            self._log(h, body, len(raw), "other", "ok")
        else:
            self._log(h, body, len(raw), "not_found", "404")
            out.send_json(404, {"error": {"message": f"not found: {h.command} {path}", "type": "not_found"}})

    def _answer(self, out: Responder, reply: Reply, body: dict[str, Any], raw_len: int) -> None:
        while isinstance(reply, Hang):
            out.wait(reply.seconds)
            reply = reply.then if reply.then is not None else self.default_reply(body)
        if isinstance(reply, Error):
            payload: Any = reply.body if reply.body is not None else self.error_body(reply)
            if isinstance(payload, str):
                payload = payload.encode()
            out.send_json(reply.status, payload, reply.headers)
            return
        if isinstance(reply, Drop) and not body.get("stream"):
            out.send_truncated_json(reply.partial_text)
            return
        self.render(out, reply, body, raw_len)

    def _control(self, out: Responder, method: str, path: str, raw: bytes) -> None:
        if method == "POST" and path == "/_control/enqueue":
            data = json.loads(raw or b"[]")
            items = data if isinstance(data, list) else [data]
            self.enqueue(*(reply_from_dict(d) for d in items))
            out.send_json(200, {"queued": len(items), "pending": self.pending})
        elif method == "POST" and path == "/_control/default":
            data = json.loads(raw or b"null")
            self.default = reply_from_dict(data) if data else None
            out.send_json(200, {"ok": True})
        elif method == "GET" and path == "/_control/requests":
            out.send_json(200, [r.to_dict() for r in self.requests])
        elif method == "POST" and path == "/_control/reset":
            self.reset()
            out.send_json(200, {"ok": True})
        else:
            out.send_json(404, {"error": {"message": f"unknown control endpoint {method} {path}"}})


def iter_text_blocks(content: Any, block_type: str = "text") -> Iterator[str]:
    """Texts of a `content` that is a string or a list of `{"type": block_type, "text": ...}` blocks."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == block_type and isinstance(block.get("text"), str):
                yield block["text"]


def serve_main(cls: type[FakeModelServer], argv: Sequence[str] | None = None) -> int:
    """`python -m tests.fakes.<provider> --port-file F [--log requests.jsonl] [--port N]`.

    Writes the port to `--port-file` (atomically) once listening, prints `PORT <n>`, and serves
    until SIGTERM/SIGINT.
    """
    parser = argparse.ArgumentParser(prog=f"python -m tests.fakes.{cls.name}", description=cls.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--log", type=Path, help="append every request as a JSON line")
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    srv = cls(port=args.port, log_path=args.log)
    srv.start()
    try:
        if args.port_file:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(str(srv.port))
            tmp.replace(args.port_file)
        print(f"PORT {srv.port}", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        srv.stop()
    return 0
