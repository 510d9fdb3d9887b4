"""The ``caw`` command: the only layer that imports typer and rich.

``app`` (the typer commands), ``args`` (options shared by run/resume, parsed into Agent keywords),
``entry`` (``main``: signals, exit status, which parser reads the line), ``fastpath`` (a plain ``caw run``
line parsed without typer), ``runner`` (one turn from the command line: signals, the view, the end;
``CliContext``, the Agent options a program embedding the app, or a test, hands in), ``exit_codes`` (the one place an
exception becomes an exit code), ``views`` (plain / quiet / json / jsonl output), ``live`` (the rich live
view, loaded only for a terminal), ``reports``
(``caw traj show``, doctor and sessions tables), ``countdown`` (the rich limit-wait display), ``ci``
(GitHub step summary and outputs).

May import every layer below it, ``caw.agent`` included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from caw.cli.entry import main
from caw.lazy import lazy_exports

if TYPE_CHECKING:
    from caw.cli.app import app
    from caw.cli.args import parse_tools
    from caw.cli.exit_codes import ExitCode, Failure, failure_for
    from caw.cli.runner import CliContext

# PEP 562: the `caw` script imports `main` only; typer loads when a command line needs it (issue 18)
_HOMES = {
    "app": "caw.cli.app",
    "parse_tools": "caw.cli.args",
    "ExitCode": "caw.cli.exit_codes",
    "Failure": "caw.cli.exit_codes",
    "failure_for": "caw.cli.exit_codes",
    "CliContext": "caw.cli.runner",
}

__all__ = ["CliContext", "ExitCode", "Failure", "app", "failure_for", "main", "parse_tools"]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
