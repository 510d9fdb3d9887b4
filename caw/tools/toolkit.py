"""``caw.ToolKit`` (tools that share state) and ``ToolServer`` (a named set of tools one MCP server serves).

Subclass ``ToolKit`` and mark methods with ``@caw.tool``; the instance's attributes are the state its tools
share, across calls and turns (the tools run in this process, on this very object).

    >>> class Counter(ToolKit):
    ...     def __init__(self) -> None:
    ...         self.count = 0
    ...     @tool
    ...     def bump(self, by: int = 1) -> int:
    ...         '''Add to the counter.'''
    ...         self.count += by
    ...         return self.count
    >>> server = Counter().as_server()
    >>> server.name, [t.name for t in server.tools]
    ('counter', ['bump'])

``Agent(tool_servers=[kit])`` / ``add_tool_server(kit)`` take the ToolKit itself or its ``as_server()``;
each becomes one MCP server (``name``) on the session's endpoint, so the model sees ``mcp__counter__bump``
on claude and codex, ``counter_bump`` on opencode.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from caw.errors import ConfigurationError
from caw.tools.functions import FunctionTool, check_name, function_tool, is_tool, tool

#: the server that serves ``stateless_tools`` and subagents
DEFAULT_SERVER = "caw"


@dataclass
class ToolServer:
    """A named set of tools, served as one MCP server on the session's endpoint (``ToolKit.as_server()``)."""

    name: str
    tools: list[FunctionTool] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_name(self.name)
        seen: set[str] = set()
        for t in self.tools:
            if t.name in seen:
                raise ConfigurationError(f"tool server {self.name!r} has two tools named {t.name!r}")
            seen.add(t.name)

    @classmethod
    def of(cls, name: str, functions: Iterable[Callable[..., Any] | FunctionTool]) -> ToolServer:
        """A server over plain or ``@tool``-marked functions (``FunctionTool`` kept as it is)."""
        return cls(name, [f if isinstance(f, FunctionTool) else function_tool(f) for f in functions])


class ToolKit:
    """Base class for tools that share state: mark methods with ``@caw.tool``.

    ``server_name`` (class attribute) names its MCP server; the default is the class name in snake case.
    """

    server_name: str = ""

    def tools(self) -> list[FunctionTool]:
        """This instance's tools: its ``@tool`` methods, bound to it, in definition order."""
        out: list[FunctionTool] = []
        seen: set[str] = set()
        for klass in type(self).__mro__:
            for attr, value in vars(klass).items():
                if attr in seen or not is_tool(value):
                    continue
                seen.add(attr)
                out.append(function_tool(getattr(self, attr)))
        return out

    def as_server(self, name: str | None = None) -> ToolServer:
        """This kit as a ``ToolServer`` (``name`` overrides ``server_name``)."""
        return ToolServer(name or self.server_name or snake_case(type(self).__name__), self.tools())


def snake_case(name: str) -> str:
    """``MyNotes`` -> ``my_notes`` (a server name the CLIs accept)."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"[^a-z0-9_-]", "_", text).strip("_") or "toolkit"


def as_tool_server(handle: Any) -> ToolServer | None:
    """A ``ToolKit`` or ``ToolServer`` as a ``ToolServer``; None for anything else (a URL, an MCPServer)."""
    if isinstance(handle, ToolServer):
        return handle
    if isinstance(handle, ToolKit):
        return handle.as_server()
    if isinstance(handle, type) and issubclass(handle, ToolKit):
        raise ConfigurationError(f"pass an instance of {handle.__name__} (its state is what the tools share)")
    return None


__all__ = ["DEFAULT_SERVER", "ToolKit", "ToolServer", "as_tool_server", "snake_case", "tool"]
