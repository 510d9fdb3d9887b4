"""Tools: Python code that takes part in a turn, served to the CLIs over a loopback MCP endpoint.

``endpoint`` is the per-session MCP server (tools only, standard library, 127.0.0.1, an unguessable
path); ``permissions`` turns a ``can_use_tool`` callback into the tool claude asks before a tool use its
rules would prompt for.

May import ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text``, ``caw.version`` and the standard
library; never providers, the session, the agent or the cli.
"""
