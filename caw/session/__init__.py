"""Session: run one turn on one provider (``turn``), fold its events into a ``Turn`` (``assemble``), and
keep a conversation (``Session``: FIFO sends, streaming, cancel, persistence), using the policies for
first-send failover and limit waits.

May import every layer below it: ``caw.errors``/``models``/``events``/``text``, ``caw.limits``,
``caw.state``, ``caw.policy``, ``caw.transport``, ``caw.providers``. Never the agent, interactive or cli.
"""

from caw.session.session import AsyncTurnStream, Logger, Session, SessionSetup, TurnStream

__all__ = ["AsyncTurnStream", "Logger", "Session", "SessionSetup", "TurnStream"]
