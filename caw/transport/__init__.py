"""The process layer: spawn a CLI on a pty, frame its output into lines, watchdogs, process-tree cleanup.

Knows nothing of JSON or providers. May import ``caw.text``, the standard library, ptyprocess and pexpect;
nothing else of caw.
"""

from caw.text import strip_ansi
from caw.transport.framing import LineFramer, clean_line
from caw.transport.process import AgentProcess, ProcessSpec, SpawnError, WatchdogExpired, Watchdogs

__all__ = [
    "AgentProcess",
    "LineFramer",
    "ProcessSpec",
    "SpawnError",
    "WatchdogExpired",
    "Watchdogs",
    "clean_line",
    "strip_ansi",
]
