"""Hands the user's terminal to a CLI's own interactive UI (``Agent.interactive``, ``caw chat``).

Three steps, one module each:

* **choose** the CLI (here, ``launch``): the first installed candidate, or the one picked in the menu
  (``caw.interactive.picker``);
* **build** its interactive command line (``Provider.interactive_command``, one method per CLI, called
  through ``commands``): the same model, effort, system prompt, tools and MCP mapping as the scripted
  adapters, without their scripted-output flags, and a decision on how the initial prompt travels (argv,
  or ``InteractiveCommand.paste``);
* **bridge** the user's terminal to the CLI (``bridge``; terminal modes and signals in ``terminal``): the
  CLI runs on a fresh pseudo-terminal in a session of its own; caw copies bytes both ways in one
  ``select`` loop, forwards every window resize, keeps a tail of the output, and on *every* way out (the
  CLI exits or crashes, caw raises, SIGTERM/SIGHUP) stops the CLI, kills whatever it left behind and puts
  the user's terminal back exactly as it was.

How the initial prompt reaches the agent verbatim, whatever its size or first character:

* in argv when it fits (< 100 KB; one argv string is limited to 128 KiB): after ``--`` for claude and
  codex (both parse a leading ``-`` as a flag otherwise), as ``--prompt=<text>`` for opencode;
* otherwise typed into the UI as one *bracketed paste* followed by Enter, once the UI is ready (see
  ``_PasteFeeder``). Also used for a claude prompt that is exactly one of claude's subcommand names
  (``claude -- update`` would run the updater: the argument parser dispatches subcommands even after
  ``--``). opencode trims the end of a paste and adds a space: its only deviation from verbatim.

    >>> from caw import Agent
    >>> Agent(provider="claude").interactive("Explain this repo")     # doctest: +SKIP
    InteractiveResult(exit_code=0, output=b'...')

May import every layer below it (``caw.providers``, ``caw.session.candidate``, ``caw.state``,
``caw.transport``), ptyprocess and pexpect; never the agent or the cli.
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
from collections.abc import Sequence
from dataclasses import replace

from caw.errors import ConfigurationError, ProviderNotInstalled
from caw.interactive.bridge import CANCELLED, InteractiveResult, _Bridge, _PasteFeeder
from caw.interactive.commands import InteractiveCommand, interactive_command
from caw.interactive.terminal import TerminalModes, _FdWriter, _SignalGuard, _Terminated
from caw.providers import available_names, get_provider
from caw.session.candidate import Candidate


# ---- choosing ------------------------------------------------------------------------------------------
def launch(
    candidates: Sequence[Candidate],
    initial_prompt: str = "",
    *,
    capture_bytes: int = 0,
    select_provider: bool = False,
    stdin_fd: int | None = None,
    stdout_fd: int | None = None,
) -> InteractiveResult:
    """Run the first installed candidate's (or the picked one's) interactive UI on this terminal.

    Raises ``ConfigurationError`` without a terminal, ``ProviderNotInstalled`` when no candidate's CLI is
    installed. A cancelled picker returns ``InteractiveResult(130)`` without launching anything.
    """
    if capture_bytes < 0:
        raise ConfigurationError(f"capture_bytes must be >= 0, not {capture_bytes!r}")
    if not candidates:
        raise ConfigurationError("no provider to launch")
    in_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    out_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
    if not os.isatty(in_fd):
        raise ConfigurationError(
            "an interactive session needs a terminal, and stdin is not one; "
            "for scripted use run a turn instead (Agent.completion / `caw run`)"
        )
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()  # whatever caw printed before must land above the UI
    saved = termios.tcgetattr(in_fd)
    guard = _SignalGuard()
    result: InteractiveResult | None = None
    try:
        guard.install()
        result = _choose_and_run(candidates, initial_prompt, capture_bytes, select_provider, in_fd, out_fd, guard)
    except _Terminated:
        pass  # everything below ran on the way out: the CLI is stopped, the terminal is back
    finally:
        guard.deferred = True
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)  # the safety net under every exit
        guard.restore()
        if guard.received is not None:
            # deliver SIGTERM/SIGHUP again now that the caller's handler is back: the default one ends
            # caw with the usual status, a custom one decides for itself
            os.kill(os.getpid(), guard.received)
    if guard.received is not None:  # the caller's handler let caw live: report it like a shell would
        return InteractiveResult(128 + guard.received, result.output if result else b"")
    assert result is not None
    return result


def _choose_and_run(
    candidates: Sequence[Candidate],
    prompt: str,
    capture_bytes: int,
    select_provider: bool,
    in_fd: int,
    out_fd: int,
    guard: _SignalGuard,
) -> InteractiveResult:
    if select_provider:
        from caw.interactive.picker import pick_provider

        menu = [c for c in _menu_candidates(candidates) if c.installed()]
        if not menu:
            raise _not_installed(candidates)
        chosen = pick_provider(menu, input_fd=in_fd, output=_FdWriter(out_fd))
        if chosen is None:
            return InteractiveResult(CANCELLED, b"")
    else:
        chosen = next((c for c in candidates if c.installed()), None)
        if chosen is None:
            raise _not_installed(candidates)
    binary = chosen.binary()
    assert binary is not None  # installed() located it
    command = interactive_command(chosen.provider, binary, chosen.config, prompt)
    command.env = {**chosen.config.env, **command.env}
    try:
        return _Bridge(command, in_fd, out_fd, capture_bytes, guard).run()
    finally:
        command.cleanup()


def _menu_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The configured order first, then every other registered provider (with no model: a model name
    belongs to one provider's catalogue)."""
    out = list(candidates)
    names = {c.provider.name for c in out}
    base = candidates[0].config
    for name in available_names():
        if name not in names:
            out.append(Candidate(get_provider(name), replace(base, model=None, extra_args=())))
    return out


def _not_installed(candidates: Sequence[Candidate]) -> ProviderNotInstalled:
    first = candidates[0].provider
    if len(candidates) == 1:
        return first.not_installed({**os.environ, **candidates[0].config.env})
    names = ", ".join(c.provider.binary_name for c in candidates)
    return ProviderNotInstalled(first.name, first.binary_name, f"none of {names} is installed")


__all__ = [
    "CANCELLED",
    "InteractiveCommand",
    "InteractiveResult",
    "TerminalModes",
    "_PasteFeeder",
    "interactive_command",
    "launch",
]
