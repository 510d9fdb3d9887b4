"""The ``caw`` command: the only layer that imports typer and rich.

``app`` (the typer commands), ``args`` (options shared by run/resume, parsed into Agent keywords),
``runner`` (one turn from the command line: signals, the view, the end; ``CliContext``, the Agent options
a program embedding the app, or a test, hands in), ``exit_codes`` (the one place an
exception becomes an exit code), ``views`` (plain / quiet / json / jsonl output), ``live`` (the rich live
view, loaded only for a terminal), ``reports``
(``caw traj show``, doctor and sessions tables), ``countdown`` (the rich limit-wait display), ``ci``
(GitHub step summary and outputs).

May import every layer below it, ``caw.agent`` included.
"""

from caw.cli.app import app, main
from caw.cli.args import parse_tools
from caw.cli.exit_codes import ExitCode, Failure, failure_for
from caw.cli.runner import CliContext

__all__ = ["CliContext", "ExitCode", "Failure", "app", "failure_for", "main", "parse_tools"]
