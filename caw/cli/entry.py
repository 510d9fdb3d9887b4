"""The ``caw`` script's entry point: signals, the exit status, and the parser that reads the line.

``main`` hands a plain ``caw run`` line to ``caw.cli.fastpath`` (no typer import, issue 18) and every other
line, ``--help`` included, to the typer app in ``caw.cli.app``. Both paths end in ``caw.cli.runner.execute``
and the same exit-code contract.

May import: ``caw.cli`` modules (``app`` only when the line needs typer).
"""

from __future__ import annotations

import signal
import sys

from caw.cli.exit_codes import ExitCode


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``caw`` script and ``python -m caw``."""
    from caw.cli.runner import REPORTED

    # SIGTERM stops caw the way Ctrl-C does (exit 130), also when it comes after a run reported its end
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        code = _run(sys.argv[1:])
    except KeyboardInterrupt:
        if REPORTED:  # a late signal: the run's own report (and resume handle) is out already
            code = REPORTED[-1]
        else:
            sys.stderr.write("caw: error: interrupted\n")
            code = int(ExitCode.INTERRUPTED)
    # the outcome is reported: a signal from here on (a second Ctrl-C, a SIGTERM after the SIGINT) must not
    # turn the exit status the report gave into a death by signal while the interpreter shuts down
    # (ignored, not blocked: a mask is per thread, and the interpreter resets Python handlers at exit)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise SystemExit(code)


def _run(argv: list[str]) -> int:
    from caw.cli.fastpath import parse_run

    parsed = parse_run(argv)
    if parsed is None:
        return _run_app()
    from caw.cli.runner import CliContext, execute

    args, prompt, resume = parsed
    return execute(args, prompt, resume, CliContext())


def _run_app() -> int:
    from caw.cli.app import app
    from caw.cli.runner import REPORTED

    try:
        code = app(prog_name="caw", standalone_mode=False)
    except Exception as exc:
        # click's exceptions, by shape: typer vendors click in newer releases, so the classes move
        name = type(exc).__name__
        show = getattr(exc, "show", None)
        if name == "Abort":  # click's word for a KeyboardInterrupt
            if REPORTED:  # a late signal: the run's own report is out already
                return REPORTED[-1]
            sys.stderr.write("caw: error: interrupted\n")
            return int(ExitCode.INTERRUPTED)
        if name == "NoSuchOption" and str(getattr(exc, "option_name", "")).startswith("-"):
            # `caw run "-x ..."`: typer's own error is four lines and never mentions `--`
            option = exc.option_name  # type: ignore[attr-defined]
            sys.stderr.write(
                f"caw: error: no such option {option} — a prompt that starts with `-` goes after `--`, "
                f'e.g. caw run -- "{option} …"\n'
            )
            return int(ExitCode.USAGE)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()
            return int(exc.exit_code)  # type: ignore[attr-defined]
        raise
    return code if isinstance(code, int) else 0


__all__ = ["main"]
