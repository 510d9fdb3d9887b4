"""A CLI that hangs up before a tool call's reply (the turn was cancelled mid-tool) is no error.

Found by QA on opencode: cancelling a cold turn while a `@caw.tool` function ran printed a socketserver
`BrokenPipeError` traceback from caw's endpoint on the user's stderr once the function returned.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from caw.tools.endpoint import Tool, ToolEndpoint


def _handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_reply_to_a_client_that_hung_up_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()

    def slow(arguments: dict[str, Any]) -> tuple[str, bool]:
        entered.set()
        release.wait(10)
        returned.set()
        return "x" * 65536, False  # bigger than a socket buffer: the write must reach the closed peer

    endpoint = ToolEndpoint([Tool("slow", "waits", {"type": "object"}, slow)])
    url = urlsplit(endpoint.start())
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow"}}).encode()
        sock = socket.create_connection((url.hostname, url.port), timeout=5)
        head = f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        assert entered.wait(5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        sock.close()
        release.set()
        assert returned.wait(5)
        # the handler thread writes after the tool returns; wait for it to be done (observed, no clock)
        deadline = time.monotonic() + 5
        while _handler_threads() and time.monotonic() < deadline:
            time.sleep(0.01)
        # the endpoint still answers
        conn = socket.create_connection((url.hostname, url.port), timeout=5)
        probe = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode()
        conn.sendall(f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(probe)}\r\n\r\n".encode() + probe)
        assert conn.recv(100).split(b"\r\n", 1)[0].endswith(b" 200 OK")
        conn.close()
    finally:
        endpoint.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err
