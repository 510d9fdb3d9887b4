"""Figures behind docs/dev/tools.md: caw's stdlib MCP endpoint against the official ``mcp`` package.

    .venv/bin/python scripts/measure_tools.py [--codex]

Prints, for each: the import time (median of 5 fresh interpreters, ``-X importtime``), the start-up of a
server on 127.0.0.1, the round trip of one ``tools/call`` over HTTP (median of 200), and the sequence the
official ``mcp`` client sends to caw's endpoint. The ``mcp`` rows need the dev extra (``pip install mcp``).
``--codex`` adds what caw's model catalogue costs a codex turn (the pinned codex against the loopback fake).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit


def import_ms(module: str, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
        ).stderr.splitlines()
        samples.append(int(out[-1].split("|")[1]) / 1000)
    return statistics.median(samples)


def round_trip_ms(url: str, calls: int = 200) -> float:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    samples = []
    for i in range(calls):
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "tools/call",
                "params": {"name": "add", "arguments": {"a": i, "b": 1}},
            }
        )
        start = time.perf_counter()
        conn.request("POST", parts.path, body, headers)
        resp = conn.getresponse()
        resp.read()
        samples.append((time.perf_counter() - start) * 1000)
        assert resp.status == 200, resp.status
    conn.close()
    return statistics.median(samples)


def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


def caw_endpoint() -> tuple[Any, str, float]:
    from caw.tools.endpoint import Tool, ToolEndpoint
    from caw.tools.executor import ToolExecutor
    from caw.tools.functions import function_tool

    executor = ToolExecutor()
    spec = function_tool(add)
    start = time.perf_counter()
    endpoint = ToolEndpoint()
    endpoint.mount("caw", [Tool(spec.name, spec.description, spec.input_schema, lambda a: executor.run(spec, a))])
    endpoint.start()
    return endpoint, endpoint.url_for("caw"), (time.perf_counter() - start) * 1000


def mcp_server() -> tuple[Any, str, float]:
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    start = time.perf_counter()
    server = MCPServer("bench")
    server.tool()(add)
    app = server.streamable_http_app(stateless_http=True, json_response=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.005)
    return (uv, thread), f"http://127.0.0.1:{port}/mcp", (time.perf_counter() - start) * 1000


async def client_sequence(url: str) -> float:
    from mcp import Client

    start = time.perf_counter()
    async with Client(url) as client:
        await client.list_tools()
        await client.call_tool("add", {"a": 1, "b": 2})
    return (time.perf_counter() - start) * 1000


def codex_catalogue_cost(runs: int = 6) -> tuple[float, float]:
    """Median seconds of a one-turn codex run (real binary, loopback fake) with an MCP server, deferred
    (codex's own catalogue) and direct (caw's ``model_catalog_json``), alternating."""
    import os
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import caw
    from caw.tools.endpoint import Tool, ToolEndpoint
    from tests.fakes.env import CODEX_MODEL, codex_env, full_env
    from tests.fakes.openai_responses import ResponsesFake
    from tests.fakes.replies import Text

    saved = dict(os.environ)
    fake = ResponsesFake().start()
    endpoint = ToolEndpoint()
    endpoint.mount("t", [Tool("x", "x", {"type": "object"}, lambda a: ("1", False))])
    endpoint.start()
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        with tempfile.TemporaryDirectory() as root:
            os.environ.clear()
            os.environ.update(full_env(codex_env(fake.url, Path(root))))
            for i in range(2 * runs):
                defer = i % 2 == 0
                agent = caw.Agent(provider="codex", model=CODEX_MODEL, cwd=root)
                agent.add_mcp_server(caw.MCPServer(name="t", url=endpoint.url_for("t"), defer_tools=defer))
                fake.enqueue(Text("hi"))
                start = time.perf_counter()
                agent.completion("hello")
                times[defer].append(time.perf_counter() - start)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        endpoint.stop()
        fake.stop()
    return statistics.median(times[True]), statistics.median(times[False])


def main() -> int:
    import logging

    logging.disable(logging.INFO)  # the mcp server logs every request at INFO
    print(f"import caw.tools.endpoint: {import_ms('caw.tools.endpoint'):.0f} ms")
    endpoint, url, started = caw_endpoint()
    print(f"caw endpoint: start {started:.1f} ms, tools/call round trip {round_trip_ms(url):.2f} ms (median of 200)")
    seen: list[str] = []
    handle = endpoint.handle

    def logged(message: Any, path: str | None = None) -> Any:
        seen.append(message.get("method", "?") if isinstance(message, dict) else "batch")
        return handle(message, path)

    endpoint.handle = logged
    try:
        took = asyncio.run(client_sequence(url))
        print(f"official mcp client against caw's endpoint: {' -> '.join(seen)} ({took:.0f} ms)")
    except ImportError:
        print("official mcp client: not installed (pip install mcp)")
    endpoint.stop()
    try:
        print(f"import mcp.server.mcpserver: {import_ms('mcp.server.mcpserver'):.0f} ms")
        print(f"import mcp.client.session: {import_ms('mcp.client.session'):.0f} ms")
        (uv, thread), url, started = mcp_server()
        print(f"mcp MCPServer on uvicorn: start {started:.1f} ms, tools/call round trip {round_trip_ms(url):.2f} ms")
        uv.should_exit = True
        thread.join(5)
    except ImportError:
        print("mcp: not installed (pip install mcp)")
    if "--codex" in sys.argv:
        deferred, direct = codex_catalogue_cost()
        print(
            f"codex one-turn run with an MCP server: deferred {deferred:.3f} s, direct (caw's catalogue) {direct:.3f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
