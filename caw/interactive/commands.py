"""The interactive command line of each CLI, and how the initial prompt travels (argv or a paste)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from caw.errors import ConfigurationError
from caw.providers.base import Invocation, Provider, RunConfig
from caw.providers.claude import config_args

# one argv string is limited to 128 KiB on Linux; above this the prompt is pasted into the UI
_MAX_ARG = 100_000

# `claude -- <name>` still runs subcommand <name> (commander dispatches on the first operand)
_CLAUDE_SUBCOMMANDS = frozenset(
    {
        "agents", "auth", "auto-mode", "doctor", "gateway", "help", "install", "mcp", "plugin", "plugins",
        "project", "setup-token", "ultrareview", "update", "upgrade",
    }
)  # fmt: skip


@dataclass
class InteractiveCommand(Invocation):
    """An interactive invocation. ``paste``: the initial prompt, when it is typed into the UI instead of
    passed in argv."""

    paste: str | None = None
    #: text the UI shows once it takes input (None: bracketed-paste mode is the sign), see _PasteFeeder
    ready: bytes | None = None
    provider: str = ""


# ---- building ------------------------------------------------------------------------------------------
Builder = Callable[[Provider, str, RunConfig, str], InteractiveCommand]


def interactive_command(provider: Provider, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
    """The command line that starts ``provider``'s interactive UI with caw's configuration.

    >>> from caw.providers import get_provider
    >>> interactive_command(get_provider("claude"), "claude", RunConfig(model="opus"), "-x").argv
    ['claude', '--model', 'opus', '--permission-mode', 'default', '--', '-x']
    """
    builder = _BUILDERS.get(provider.name)
    if builder is None:
        raise ConfigurationError(f"caw does not know how to start {provider.name}'s interactive UI")
    command = builder(provider, binary, config, prompt)
    command.provider = provider.name
    command.cwd = command.cwd or config.cwd
    return command


def _fits_argv(prompt: str) -> bool:
    return "\0" not in prompt and len(prompt.encode("utf-8", "surrogatepass")) <= _MAX_ARG


def _claude(provider: Provider, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
    # the same mapping as ClaudeProvider.build (scripted), without -p/--output-format/--verbose
    cmd = InteractiveCommand(argv=[*provider.executable(binary)])
    argv = cmd.argv
    argv += config_args(config, cmd.temp_paths)
    if prompt:
        if _fits_argv(prompt) and prompt not in _CLAUDE_SUBCOMMANDS:
            argv += ["--", prompt]  # `--`: a prompt may start with "-"; it also ends the variadic --tools
        else:
            cmd.paste = prompt
    return cmd


def _codex(provider: Provider, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
    # the mapping of CodexProvider.build (scripted) without exec/--json/stdin; the approval policy is left
    # to codex's interactive default (a person is there to answer), the sandbox is the same
    from caw.providers.codex import config_args as codex_config_args

    cmd = InteractiveCommand(argv=[*provider.executable(binary)])
    argv = cmd.argv
    if "--remote" not in config.extra_args:
        # without it the UI installs a background server daemon (a copy of codex in CODEX_HOME) that
        # outlives the session, and caw would kill it on the way out like any other leftover
        argv.append("--no-daemon")
    argv += codex_config_args(config, cmd.temp_paths)
    if prompt:
        if _fits_argv(prompt):
            argv += ["--", prompt]  # `--`: a prompt may start with "-" (clap takes it for an option)
        else:
            cmd.paste = prompt
    return cmd


def _opencode(provider: Provider, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
    # the mapping of OpencodeProvider.build (scripted) for the full-screen UI (`opencode [project]`)
    from caw.providers.opencode import (
        CONFIG_CONTENT_VAR,
        PERMISSION_VAR,
        check_model,
        config_additions,
        merge_config_content,
        permission_json,
    )

    cmd = InteractiveCommand(argv=[*provider.executable(binary)])
    argv = cmd.argv
    user_env = {**os.environ, **config.env}
    if config.model:
        argv += ["--model", check_model(config.model)]
    if config.tools is not None:
        cmd.env[PERMISSION_VAR] = permission_json(config.tools, user_env.get(PERMISSION_VAR))
    additions = config_additions(config)
    if config.reasoning:
        # the UI has no --variant (only `run` has): an agent's default variant applies when the agent runs
        # its configured model, so caw configures both for opencode's two primary agents
        agent: dict[str, str] = {"variant": config.reasoning}
        if config.model:
            agent["model"] = config.model
        additions["agent"] = {"build": agent, "plan": dict(agent)}
    if additions:
        cmd.env[CONFIG_CONTENT_VAR] = merge_config_content(user_env.get(CONFIG_CONTENT_VAR), additions)
    argv += list(config.extra_args)
    if prompt:
        if _fits_argv(prompt):
            argv.append(f"--prompt={prompt}")  # one token: a leading "-" cannot be taken for a flag
        else:
            # the input box's placeholder: opencode drops keys that arrive before it is drawn; it also
            # trims the end of a paste and adds one space (seen on 1.18.33), which caw cannot avoid
            cmd.paste, cmd.ready = prompt, b"Ask anything"
    return cmd


_BUILDERS: dict[str, Builder] = {"claude": _claude, "codex": _codex, "opencode": _opencode}
