"""``can_use_tool``: a Python callback that allows or denies each tool use the CLI would ask about.

claude runs it through ``--permission-prompt-tool mcp__caw_permissions__decide``: before a tool use that
its own rules (permission mode, allowed tools) would prompt for, it calls that MCP tool with
``{"tool_name", "input", "tool_use_id"}`` and expects one text block holding
``{"behavior": "allow", "updatedInput": …}`` or ``{"behavior": "deny", "message": …}``
(docs/dev/permissions.md). The callback gets the tool's name and arguments and returns ``True`` to allow,
``False`` to deny, or a string to deny with that message for the model. A callback that raises denies
(with the exception's message): a broken guard must not open the door.

    >>> def guard(tool: str, arguments: dict) -> bool | str:
    ...     return tool != "Bash" or "rm " not in arguments.get("command", "") or "no deleting here"
    >>> decide(guard, {"tool_name": "Bash", "input": {"command": "rm -rf /"}})
    ('{"behavior": "deny", "message": "no deleting here"}', False)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Union

from caw.tools.endpoint import Tool

#: the callback: (tool name, arguments) -> True (allow), False (deny) or a message (deny with it)
PermissionCallback = Callable[[str, dict[str, Any]], Union[bool, str]]

SERVER_NAME = "caw_permissions"
TOOL_NAME = "decide"
#: the name claude's --permission-prompt-tool takes
PROMPT_TOOL = f"mcp__{SERVER_NAME}__{TOOL_NAME}"
DEFAULT_DENIAL = "denied by the caller's can_use_tool callback"

_SCHEMA = {
    "type": "object",
    "properties": {"tool_name": {"type": "string"}, "input": {"type": "object"}, "tool_use_id": {"type": "string"}},
    "required": ["tool_name", "input"],
}


def decide(callback: PermissionCallback, arguments: dict[str, Any]) -> tuple[str, bool]:
    """Ask ``callback`` about one tool use; the permission tool's reply text (never an MCP error)."""
    tool = str(arguments.get("tool_name") or "")
    given = arguments.get("input")
    tool_input: dict[str, Any] = given if isinstance(given, dict) else {}
    try:
        verdict = callback(tool, tool_input)
    except Exception as exc:
        verdict = f"the can_use_tool callback failed, so the tool use is denied: {type(exc).__name__}: {exc}"
    if verdict is True:
        payload: dict[str, Any] = {"behavior": "allow", "updatedInput": tool_input}
    else:
        message = verdict if isinstance(verdict, str) and verdict.strip() else DEFAULT_DENIAL
        payload = {"behavior": "deny", "message": message}
    return json.dumps(payload), False


def permission_tool(callback: PermissionCallback) -> Tool:
    """The MCP tool that carries ``callback`` (serve it on a ``ToolEndpoint`` named ``SERVER_NAME``)."""
    return Tool(
        name=TOOL_NAME,
        description="Decides whether a tool use may run (caw's can_use_tool callback).",
        input_schema=_SCHEMA,
        call=lambda arguments: decide(callback, arguments),
    )


__all__ = ["DEFAULT_DENIAL", "PROMPT_TOOL", "SERVER_NAME", "PermissionCallback", "decide", "permission_tool"]
