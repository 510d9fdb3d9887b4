"""The official ``mcp`` client (the dev extra) as the conformance oracle for caw's stdlib endpoint (issue 15).

mcp 2.x opens with ``server/discover`` (protocol 2026-07-28), as claude 2.1.332 does; on caw's -32601 it
falls back to the ``initialize`` handshake, lists the tools and calls them over Streamable HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from mcp import Client

import caw
from caw.tools.endpoint import Tool, ToolEndpoint
from caw.tools.executor import ToolExecutor
from caw.tools.toolkit import ToolServer


class Shelf(caw.ToolKit):
    def __init__(self) -> None:
        self.items: list[str] = []

    @caw.tool
    def put(self, item: Annotated[str, "what to put on the shelf"]) -> dict[str, Any]:
        """Put an item on the shelf."""
        self.items.append(item)
        return {"items": self.items}

    @caw.tool
    async def broken(self) -> str:
        """Always fails."""
        raise KeyError("no such shelf")


@pytest.fixture
def served() -> Iterator[tuple[ToolEndpoint, Shelf, list[str]]]:
    shelf = Shelf()
    executor = ToolExecutor(timeout=10)
    endpoint = ToolEndpoint()
    server: ToolServer = shelf.as_server()
    endpoint.mount(
        server.name,
        [Tool(t.name, t.description, t.input_schema, lambda a, t=t: executor.run(t, a)) for t in server.tools],
    )
    seen: list[str] = []
    handle = endpoint.handle

    def logged(message: Any, path: str | None = None) -> Any:
        seen.append(message.get("method", "?") if isinstance(message, dict) else "batch")
        return handle(message, path)

    endpoint.handle = logged  # type: ignore[method-assign]
    endpoint.start()
    try:
        yield endpoint, shelf, seen
    finally:
        endpoint.stop()
        executor.close()


def test_the_official_client_lists_and_calls_caw_tools(served: tuple[ToolEndpoint, Shelf, list[str]]) -> None:
    endpoint, shelf, seen = served

    async def session() -> tuple[Any, Any, Any, Any, Any]:
        async with Client(endpoint.url_for("shelf")) as client:
            listed = await client.list_tools()
            ok = await client.call_tool("put", {"item": "jar"})
            bad_args = await client.call_tool("put", {"item": ["not", "a", "string"]})
            failed = await client.call_tool("broken", {})
            unknown = await client.call_tool("nope", {})
            return listed, ok, bad_args, failed, unknown

    listed, ok, bad_args, failed, unknown = asyncio.run(session())
    assert seen[:3] == ["server/discover", "initialize", "notifications/initialized"]
    tools = {t.name: t for t in listed.tools}
    assert sorted(tools) == ["broken", "put"] and tools["put"].description == "Put an item on the shelf."
    assert tools["put"].input_schema["properties"]["item"] == {
        "type": "string",
        "description": "what to put on the shelf",
    }
    assert not ok.is_error and ok.content[0].text == '{"items": ["jar"]}' and shelf.items == ["jar"]
    assert bad_args.is_error and "invalid arguments for put: item:" in bad_args.content[0].text
    assert failed.is_error and failed.content[0].text == "KeyError: 'no such shelf'"
    assert unknown.is_error and "unknown tool 'nope'" in unknown.content[0].text
