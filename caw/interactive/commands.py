"""The interactive command line of the chosen CLI: its provider builds it (``Provider.interactive_command``),
this module adds what every CLI gets (the working directory and its ``PWD``)."""

from __future__ import annotations

import os

from caw.providers.base import InteractiveCommand, Provider, RunConfig


def interactive_command(provider: Provider, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
    """The command line that starts ``provider``'s interactive UI with caw's configuration.

    Raises ``ConfigurationError`` for a provider without an interactive UI.

    >>> from caw.providers import get_provider
    >>> interactive_command(get_provider("claude"), "claude", RunConfig(model="opus"), "-x").argv
    ['claude', '--model', 'opus', '--permission-mode', 'default', '--', '-x']
    """
    command = provider.interactive_command(binary, config, prompt)
    command.provider = provider.name
    command.cwd = command.cwd or config.cwd
    # issue 12: opencode takes its project directory from $PWD, not from its working directory
    command.env["PWD"] = os.path.abspath(command.cwd)
    return command


__all__ = ["InteractiveCommand", "interactive_command"]
