"""A loopback MCP endpoint (tools only) that runs Python callables in the caller's process.

One ``ToolEndpoint`` per session: a standard-library HTTP server on 127.0.0.1 at a random port, at an
unguessable path (``/<token>/mcp``), speaking the MCP Streamable HTTP transport's plain-JSON form (a POST
carries one JSON-RPC message or a batch; the reply is ``application/json``; notifications get 202). It
answers ``initialize``, ``ping``, ``tools/list`` and ``tools/call``, and ``-32601`` for anything else
(claude 2.1.332 sends ``server/discover`` first and expects exactly that). A request to another path is a
404, so a process that does not know the token learns nothing.

A tool is a ``Tool(name, description, input_schema, call)``; ``call(arguments)`` returns the result text
and whether it is an error. An exception in ``call`` becomes an error result with its message: the model
(or the CLI) sees it, the turn goes on.

    >>> endpoint = ToolEndpoint([Tool("echo", "echo", {"type": "object"}, lambda a: (str(a), False))])
    >>> endpoint.start().startswith("http://127.0.0.1:")              # doctest: +SKIP
    True
    >>> endpoint.stop()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from caw.version import __version__

#: protocol versions this endpoint speaks (codex asks for 2025-06-18, claude and opencode for 2025-11-25)
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
_MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class Tool:
    """One tool: its MCP name, description and JSON input schema, and the callable that runs it."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    call: Callable[[dict[str, Any]], tuple[str, bool]]


class ToolEndpoint:
    """Serves ``tools`` on 127.0.0.1 until ``stop()``; ``url`` is where a CLI's MCP client connects."""

    def __init__(self, tools: Iterable[Tool] = (), *, name: str = "caw") -> None:
        self.name = name
        self._tools = {t.name: t for t in tools}
        self._token = secrets.token_urlsafe(24)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        #: more MCP servers on the same port: path -> (server name, its tools); see ``mount``
        self._mounts: dict[str, tuple[str, dict[str, Tool]]] = {self.path: (name, self._tools)}

    @property
    def path(self) -> str:
        return f"/{self._token}/mcp"

    def mount(self, name: str, tools: Iterable[Tool]) -> str:
        """Serve ``tools`` as another MCP server named ``name`` on this port; its path (its URL once started).

        One endpoint per session serves every tool server the session has (caw's tools, each ToolKit, the
        permission tool): one port, one token, one path per server.
        """
        path = f"/{self._token}/{name}/mcp"
        self._mounts[path] = (name, {t.name: t for t in tools})
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        """The URL of the server mounted as ``name`` ('' before ``start()``)."""
        if not self.url:
            return ""
        for path, (mounted, _) in reversed(self._mounts.items()):  # the latest mount of a name wins
            if mounted == name:
                return self.url[: -len(self.path)] + path
        raise KeyError(name)

    @property
    def port(self) -> int | None:
        """The port it listens on (None when stopped)."""
        return self._server.server_address[1] if self._server is not None else None

    def start(self) -> str:
        """Bind a random loopback port and serve on a daemon thread; the URL (idempotent)."""
        if self._server is not None:
            return self.url
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        # a short poll: stop() (Session.end) waits for the serving loop to notice
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="caw-tool-endpoint", daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}{self.path}"
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket: nothing is left listening (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # ---- JSON-RPC ------------------------------------------------------------------------------------
    def handle(self, message: Any, path: str | None = None) -> dict[str, Any] | None:
        """The response to one JSON-RPC message to the server at ``path`` (None for a notification)."""
        name, tools = self._mounts.get(path or self.path, (self.name, self._tools))
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            if isinstance(message, dict) and "id" in message and ("result" in message or "error" in message):
                return None  # a response to a request we never send: ignore
            return _error(None, -32600, "invalid request")
        mid = message.get("id")
        method = message["method"]
        given = message.get("params")
        params: dict[str, Any] = given if isinstance(given, dict) else {}
        if mid is None:
            return None  # notifications/initialized, notifications/cancelled, ...
        if method == "initialize":
            asked = params.get("protocolVersion")
            version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
            return _result(
                mid,
                {
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": {"name": name, "version": __version__},
                },
            )
        if method == "ping":
            return _result(mid, {})
        if method == "tools/list":
            listed = [
                {"name": t.name, "description": t.description, "inputSchema": dict(t.input_schema)}
                for t in tools.values()
            ]
            return _result(mid, {"tools": listed})
        if method == "tools/call":
            return _result(mid, self._call(tools, params))
        return _error(mid, -32601, f"method not found: {method}")

    def _call(self, tools: Mapping[str, Tool], params: Mapping[str, Any]) -> dict[str, Any]:
        tool = tools.get(str(params.get("name")))
        arguments = params.get("arguments")
        if tool is None:
            text, is_error = f"unknown tool {params.get('name')!r}", True
        elif arguments is not None and not isinstance(arguments, dict):
            text, is_error = "arguments must be a JSON object", True
        else:
            try:
                text, is_error = tool.call(dict(arguments or {}))
            except Exception as exc:  # the caller's code: its failure is the model's error result
                text, is_error = f"{type(exc).__name__}: {exc}", True
        return {"content": [{"type": "text", "text": text}], "isError": is_error}


class _Handler(BaseHTTPRequestHandler):
    owner: ToolEndpoint
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without this, Nagle + delayed ACK add 40 ms to every reply on a
        # kept-alive connection (measured: scripts/measure_tools.py, 44 ms -> 0.5 ms per tools/call)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # never log: tool arguments may carry secrets

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            # the CLI hung up (a cancelled turn's tool call, a killed CLI): nobody to answer, and no
            # socketserver traceback on the user's stderr
            self.close_connection = True

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _mount(self) -> str | None:
        path = self.path.split("?", 1)[0]
        return path if path in self.owner._mounts else None

    def do_POST(self) -> None:
        mount = self._mount()
        if mount is None:
            self._send(404, b'{"error": "not found"}')
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > _MAX_BODY:
            self._send(400, json.dumps(_error(None, -32700, "empty or oversized body")).encode())
            return
        try:
            message = json.loads(self.rfile.read(length))
        except ValueError:
            self._send(400, json.dumps(_error(None, -32700, "parse error")).encode())
            return
        if isinstance(message, list):
            replies = [r for r in (self.owner.handle(m, mount) for m in message) if r is not None]
            self._send(200, json.dumps(replies).encode()) if replies else self._send(202)
            return
        reply = self.owner.handle(message, mount)
        self._send(200, json.dumps(reply).encode()) if reply is not None else self._send(202)

    def do_GET(self) -> None:
        # no server-initiated stream: the transport lets a server refuse the optional GET with 405
        self._send(405 if self._mount() is not None else 404)

    def do_DELETE(self) -> None:
        self._send(200 if self._mount() is not None else 404)


def _result(mid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": mid, "result": result}


def _error(mid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": mid, "error": {"code": code, "message": message}}


__all__ = ["PROTOCOL_VERSIONS", "Tool", "ToolEndpoint"]
