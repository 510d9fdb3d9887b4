"""Policy: decisions over callables, no processes. First-send failover (which failures move on to the
next provider), and the auto-wait policy (wait out a usage limit, then retry), with its displays.

Never imports providers, the transport, the session, the agent or the cli; the session hands in the
``attempt`` callables. May import: ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text``,
``caw.limits``, ``caw.state``.
"""
