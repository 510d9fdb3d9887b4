"""Tools: Python code that takes part in a turn, served to the CLIs over a loopback MCP endpoint.

``functions`` turns a function into a tool (``@caw.tool``: the schema from its type hints through pydantic,
the result as text); ``toolkit`` has ``ToolKit`` (tools sharing an object's state) and ``ToolServer`` (a named
set of tools); ``executor`` runs the calls (bounded daemon threads, an event loop thread, a per-call timeout,
every failure an error result); ``endpoint`` is the per-session MCP server (tools only, standard library,
127.0.0.1, an unguessable path, one mount per tool server); ``subagents`` records subagent runs and links
them to the turn's ``ToolUse`` (the subagent tool itself is built by ``caw.agent``); ``permissions`` turns a
``can_use_tool`` callback into the tool claude asks before a tool use its rules would prompt for.

May import ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text``, ``caw.version``, pydantic and the
standard library; never providers, the session, the agent or the cli. See docs/dev/tools.md.
"""
