"""Hands the user's terminal to a CLI's own interactive UI (``Agent.interactive``, ``caw chat``).

Three steps, top to bottom in this file:

* **choose** the CLI: the first installed candidate, or the one picked in the menu (``caw.picker``);
* **build** its interactive command line (one small function per CLI): the same model, effort, system
  prompt, tools and MCP mapping as the scripted adapters, without their scripted-output flags, and a
  decision on how the initial prompt travels (argv, or ``InteractiveCommand.paste``);
* **bridge** the user's terminal to the CLI: the CLI runs on a fresh pseudo-terminal in a session of its
  own; caw copies bytes both ways in one ``select`` loop, forwards every window resize, keeps a tail of the
  output, and on *every* way out (the CLI exits or crashes, caw raises, SIGTERM/SIGHUP) stops the CLI,
  kills whatever it left behind and puts the user's terminal back exactly as it was.

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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import tty
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from caw.errors import ConfigurationError, ProviderNotInstalled
from caw.fallback import Candidate
from caw.providers import available_names, get_provider
from caw.providers.base import Invocation, Provider, RunConfig
from caw.providers.claude import config_args
from caw.transport import reaper

#: exit code of a cancelled picker (the shell's code for "stopped by Ctrl-C")
CANCELLED = 130

# one argv string is limited to 128 KiB on Linux; above this the prompt is pasted into the UI
_MAX_ARG = 100_000
_READ_CHUNK = 1 << 16
# how long the UI must stay silent after enabling bracketed paste before caw pastes the prompt, and how
# long to wait for that at most (a UI that never enables it still gets the prompt, typed plainly)
_SETTLE_S = 0.5
_READY_TIMEOUT_S = 60.0
# after the paste: how long to wait for the UI to settle before pressing Enter, at most
_SUBMIT_TIMEOUT_S = 10.0
# without a pidfd or signal handlers (not the main thread) the loop wakes this often to look around
_POLL_S = 0.25
# the CLI gets this long to exit on its own after SIGTERM before everything it started is SIGKILLed
_STOP_GRACE_S = 1.5

# `claude -- <name>` still runs subcommand <name> (commander dispatches on the first operand)
_CLAUDE_SUBCOMMANDS = frozenset(
    {
        "agents", "auth", "auto-mode", "doctor", "gateway", "help", "install", "mcp", "plugin", "plugins",
        "project", "setup-token", "ultrareview", "update", "upgrade",
    }
)  # fmt: skip


@dataclass(frozen=True)
class InteractiveResult:
    """How an interactive session ended: the CLI's exit code (128+N when killed by signal N; 130 when
    the picker was cancelled) and the tail of what it printed (raw terminal bytes, ``capture_bytes``)."""

    exit_code: int
    output: bytes = b""


@dataclass
class InteractiveCommand(Invocation):
    """An interactive invocation. ``paste``: the initial prompt, when it is typed into the UI instead of
    passed in argv."""

    paste: str | None = None
    #: text the UI shows once it takes input (None: bracketed-paste mode is the sign), see _PasteFeeder
    ready: bytes | None = None
    provider: str = ""


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
        from caw.picker import pick_provider

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
        return ProviderNotInstalled(first.name, first.binary_name)
    names = ", ".join(c.provider.binary_name for c in candidates)
    return ProviderNotInstalled(first.name, first.binary_name, f"none of {names} is installed")


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
    from caw.providers.codex import (
        ProfileSettings,
        codex_home_dir,
        mcp_overrides,
        sandbox_mode,
        toml_string,
        tool_flags,
        write_profile,
    )

    cmd = InteractiveCommand(argv=[*provider.executable(binary)])
    argv = cmd.argv
    argv += ["-c", "analytics.enabled=false", "-s", sandbox_mode(config.tools), *tool_flags(config.tools)]
    if "--remote" not in config.extra_args:
        # without it the UI installs a background server daemon (a copy of codex in CODEX_HOME) that
        # outlives the session, and caw would kill it on the way out like any other leftover
        argv.append("--no-daemon")
    if config.model:
        argv += ["-m", config.model]
    if config.reasoning:
        argv += ["-c", f"model_reasoning_effort={toml_string(config.reasoning)}"]
    profile = ProfileSettings()
    if config.system_prompt:
        value = toml_string(config.system_prompt)
        if len(value.encode()) > _MAX_ARG:
            profile.lines.append(f"developer_instructions = {value}")
        else:
            argv += ["-c", f"developer_instructions={value}"]
    argv += mcp_overrides(config.mcp_servers, profile)
    if profile.lines:
        name, path = write_profile(codex_home_dir({**os.environ, **config.env}), profile.lines)
        cmd.temp_paths.append(path)
        argv += ["-p", name]
    argv += list(config.extra_args)
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


# ---- signals -------------------------------------------------------------------------------------------
class _Terminated(BaseException):
    """Raised by caw's temporary SIGTERM/SIGHUP handler so every ``finally`` on the way out runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_Handler = Callable[[int, FrameType | None], Any] | int | None


class _SignalGuard:
    """While installed: SIGTERM/SIGHUP unwind caw (raising ``_Terminated`` once) instead of killing it with
    the terminal raw, and SIGWINCH wakes the bridge through a pipe. Inactive outside the main thread
    (Python allows handlers only there); the bridge then polls the window size instead."""

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.received: int | None = None
        #: set while cleaning up: a signal is then only recorded, so it cannot cut the cleanup short
        self.deferred = False
        self._previous: dict[int, _Handler] = {}

    def install(self) -> None:
        if not self.active:
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._on_terminate)
        self._previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._on_winch)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        for fd in (self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.wake_r, 512):
                pass

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"x")

    def _on_winch(self, signum: int, frame: FrameType | None) -> None:
        self._wake()

    def _on_terminate(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signum
        self._wake()
        if first and not self.deferred:
            raise _Terminated(signum)


class _FdWriter:
    """A tiny text writer on a file descriptor (the picker draws on the terminal caw bridges)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        _write_all(self.fd, text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        return None


# ---- terminal modes ------------------------------------------------------------------------------------
_DEC_MODE = re.compile(rb"\x1b\[\?([0-9;]+)([hl])")
_KITTY_PUSH = re.compile(rb"\x1b\[>[0-9]*u")
_KITTY_POP = re.compile(rb"\x1b\[<([0-9]*)u")
_MODIFY_KEYS = re.compile(rb"\x1b\[>4(?:;([0-9]+))?m")
_CSI_END = re.compile(rb"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
# DEC private modes a TUI switches on and must switch off again: alt screen, mouse, focus, paste...
_TRACKED = {1, 47, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 1016, 1047, 1049, 2004, 2027, 2031}
_ALT_SCREENS = (1049, 1047, 47)


class TerminalModes:
    """Follows the terminal modes the CLI switches in its output, so caw can switch off what a crashed
    CLI left on (alternate screen, mouse reporting, bracketed paste, hidden cursor, keyboard protocols).

    >>> m = TerminalModes(); m.feed(b"\\x1b[?1049h\\x1b[?25l"); m.reset_sequence()
    b'\\x1b[?1049l\\x1b[?25h'
    """

    def __init__(self) -> None:
        self.modes: dict[int, bool] = {}
        self.cursor_hidden = False
        self.kitty_depth = 0
        self.modify_keys = False
        self._tail = b""

    @property
    def bracketed_paste(self) -> bool:
        return self.modes.get(2004, False)

    def feed(self, data: bytes) -> None:
        buf = self._tail + data
        cut = buf.rfind(b"\x1b")
        if cut != -1 and len(buf) - cut < 32 and not _complete_escape(buf[cut:]):
            buf, self._tail = buf[:cut], buf[cut:]  # a sequence split across reads: finish it next time
        else:
            self._tail = b""
        for match in _DEC_MODE.finditer(buf):
            on = match.group(2) == b"h"
            for part in match.group(1).split(b";"):
                if not part.isdigit():
                    continue
                mode = int(part)
                if mode == 25:
                    self.cursor_hidden = not on
                elif mode in _TRACKED:
                    self.modes[mode] = on
        self.kitty_depth += len(_KITTY_PUSH.findall(buf))
        for match in _KITTY_POP.finditer(buf):
            self.kitty_depth = max(0, self.kitty_depth - int(match.group(1) or b"1"))
        for match in _MODIFY_KEYS.finditer(buf):
            self.modify_keys = bool(match.group(1)) and match.group(1) != b"0"

    def reset_sequence(self) -> bytes:
        out = b""
        for mode in _ALT_SCREENS:  # leave the alternate screen first: the rest applies to the main one
            if self.modes.get(mode):
                out += b"\x1b[?%dl" % mode
        for mode, on in sorted(self.modes.items()):
            if on and mode not in _ALT_SCREENS:
                out += b"\x1b[?%dl" % mode
        if self.kitty_depth:
            out += b"\x1b[<%du" % self.kitty_depth
        if self.modify_keys:
            out += b"\x1b[>4m"
        if self.cursor_hidden:
            out += b"\x1b[?25h"
        return out


def _complete_escape(seq: bytes) -> bool:
    if len(seq) < 2:
        return False
    if seq[1:2] != b"[":
        return True  # not a CSI: nothing caw tracks
    return _CSI_END.match(seq) is not None


# ---- the initial prompt as a paste ---------------------------------------------------------------------
class _PasteFeeder:
    """Types the initial prompt into the UI once, then presses Enter.

    The paste goes out once the UI is ready: it switched bracketed-paste mode on, showed its ``ready``
    text when the CLI has one (opencode enables its input modes seconds before it can take input, and
    drops what arrives in between), and then drew nothing for ``_SETTLE_S``. Enter follows once the UI
    has taken the paste in (quiet again). A UI that never gets there gets the prompt anyway after
    ``_READY_TIMEOUT_S``.
    """

    def __init__(self, text: str, now: float, ready: bytes | None = None) -> None:
        self._data = text.encode("utf-8", "surrogatepass")
        self.state = "waiting"  # waiting -> pasted -> done
        self._started = now
        self._pasted_at = 0.0
        self._last_output = now
        self._saw_output = False
        self._ready = ready
        self._ready_seen = ready is None
        self._tail = b""

    def on_output(self, now: float, data: bytes = b"") -> None:
        self._last_output = now
        self._saw_output = True
        if not self._ready_seen and self._ready is not None:
            window = self._tail + data
            self._ready_seen = self._ready in window
            self._tail = window[-len(self._ready) :]

    def deadline(self) -> float | None:
        """When ``due`` should be asked next (None: never again)."""
        if self.state == "waiting":
            return min(self._last_output + _SETTLE_S, self._started + _READY_TIMEOUT_S)
        if self.state == "pasted":
            return min(self._last_output + _SETTLE_S, self._pasted_at + _SUBMIT_TIMEOUT_S)
        return None

    def due(self, now: float, modes: TerminalModes, input_pending: bool) -> bytes:
        """Bytes to send to the UI now (b"" if none yet)."""
        quiet = now - self._last_output >= _SETTLE_S
        if self.state == "waiting":
            ready = modes.bracketed_paste and self._ready_seen and self._saw_output and quiet
            if ready or now - self._started >= _READY_TIMEOUT_S:
                self.state = "pasted"
                self._pasted_at = self._last_output = now
                if modes.bracketed_paste:
                    return b"\x1b[200~" + self._data + b"\x1b[201~"
                return self._data
        elif self.state == "pasted" and not input_pending and (quiet or now - self._pasted_at >= _SUBMIT_TIMEOUT_S):
            self.state = "done"
            return b"\r"
        return b""


# ---- bridging ------------------------------------------------------------------------------------------
def _winsize(fd: int) -> bytes | None:
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols = struct.unpack("HHHH", packed)[:2]
    return packed if rows and cols else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        except InterruptedError:
            continue
        view = view[n:]


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


class _Bridge:
    """One interactive run: spawn on a pty, copy bytes both ways, clean up on every way out."""

    def __init__(
        self, command: InteractiveCommand, in_fd: int, out_fd: int, capture_bytes: int, guard: _SignalGuard
    ) -> None:
        self.command = command
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.capture_bytes = capture_bytes
        self.guard = guard
        self.run_id = uuid.uuid4().hex
        self.modes = TerminalModes()
        self.captured = bytearray()
        self.to_child = bytearray()
        self.proc: subprocess.Popen[bytes] | None = None
        self.master: int | None = None
        self.pidfd: int | None = None
        self._winsize: bytes | None = None

    # -- lifecycle --
    def run(self) -> InteractiveResult:
        saved = termios.tcgetattr(self.in_fd)
        try:
            self._spawn(saved)
            tty.setraw(self.in_fd, termios.TCSANOW)
            self._loop()
            returncode = self._finish()
        finally:
            self.guard.deferred = True
            self._stop()
            self._restore_terminal(saved)
        tail = self.captured[-self.capture_bytes :] if self.capture_bytes else self.captured
        return InteractiveResult(_exit_code(returncode), bytes(tail))

    def _spawn(self, attrs: list[Any]) -> None:
        reaper.enable_subreaper()
        master, slave = os.openpty()
        try:
            # the CLI starts with the user's own settings and window size, like in a plain terminal
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            self._winsize = _winsize(self.out_fd) or _winsize(self.in_fd)
            if self._winsize:
                fcntl.ioctl(slave, termios.TIOCSWINSZ, self._winsize)
            env = {**os.environ, **self.command.env}
            env[reaper.MARKER_VAR] = self.run_id
            parent = os.getpid()

            def child_setup() -> None:
                # a session of its own with the pty as controlling terminal: job control, ^C and SIGWINCH
                # reach the CLI's process group and not caw
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                reaper.die_with_parent(parent)

            try:
                self.proc = subprocess.Popen(
                    self.command.argv,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    cwd=self.command.cwd,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=child_setup,
                )
            except OSError as exc:  # found, but exec failed (bad interpreter, no permission, a missing cwd)
                hint = f"it cannot be started: {exc.strerror}"
                raise ProviderNotInstalled(self.command.provider, self.command.argv[0], hint) from exc
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the child has its copies; ours would keep the pty open after it exits
        self.master = master
        os.set_blocking(master, False)
        with contextlib.suppress(AttributeError, OSError):
            self.pidfd = os.pidfd_open(self.proc.pid)

    def _finish(self) -> int | None:
        """After the loop: the CLI's exit status (it is given a moment when only its output ended)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            return None

    def _stop(self) -> None:
        """Stop the CLI if it still runs, then SIGKILL everything it started (found by the run marker)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
            self._drain_until_exit(proc, _STOP_GRACE_S)
        # by marker too: a signal may have cut _spawn short after the fork, before self.proc was set
        reaper.kill_tree(proc.pid if proc is not None else None, self.run_id)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        if self.master is not None:
            self._drain_output()
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None

    def _drain_until_exit(self, proc: subprocess.Popen[bytes], grace: float) -> None:
        # keep reading while the CLI shuts down: a CLI blocked on a full pty would never exit
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            if self.master is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                return
            with contextlib.suppress(InterruptedError):
                select.select([self.master], [], [], min(0.05, max(0.0, deadline - time.monotonic())))
            self._drain_output()

    def _restore_terminal(self, saved: list[Any]) -> None:
        # switch off what the CLI left on (it may have crashed mid-screen), then the exact saved settings
        with contextlib.suppress(OSError):
            reset = self.modes.reset_sequence()
            if reset:
                _write_all(self.out_fd, reset)
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self.in_fd, termios.TCSADRAIN, saved)

    # -- the loop --
    def _loop(self) -> None:
        assert self.master is not None and self.proc is not None
        master = self.master
        feeder = None
        if self.command.paste:
            feeder = _PasteFeeder(self.command.paste, time.monotonic(), self.command.ready)
        reading_input = True
        while True:
            now = time.monotonic()
            timeout: float | None = None
            if feeder is not None:
                deadline = feeder.deadline()
                if deadline is not None:
                    timeout = max(0.0, deadline - now)
            if self.pidfd is None or not self.guard.active:
                timeout = _POLL_S if timeout is None else min(timeout, _POLL_S)
            rlist = [master, self.guard.wake_r]
            if reading_input:
                rlist.append(self.in_fd)
            if self.pidfd is not None:
                rlist.append(self.pidfd)
            wlist = [master] if self.to_child else []
            try:
                readable, writable, _ = select.select(rlist, wlist, [], timeout)
            except InterruptedError:
                continue
            if self.guard.wake_r in readable:
                self.guard.drain()
            self._sync_winsize()
            if master in readable and not self._pump_output(feeder):
                return  # every writer closed the pty: the CLI is gone
            if reading_input and self.in_fd in readable:
                data = self._read_input()
                if data is None:
                    reading_input = False  # the terminal went away; SIGHUP follows
                else:
                    self.to_child += data
            if feeder is not None:
                self.to_child += feeder.due(time.monotonic(), self.modes, bool(self.to_child))
            if master in writable or (self.to_child and not wlist):
                self._pump_input()
            if self.proc.poll() is not None:
                self._drain_output()
                return

    def _read_input(self) -> bytes | None:
        try:
            data = os.read(self.in_fd, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None
        return data or None

    def _pump_output(self, feeder: _PasteFeeder | None) -> bool:
        assert self.master is not None
        try:
            data = os.read(self.master, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            if exc.errno == errno.EIO:  # Linux's EOF on a pty master
                return False
            raise
        if not data:
            return False
        self._emit(data)
        if feeder is not None:
            feeder.on_output(time.monotonic(), data)
        return True

    def _drain_output(self) -> None:
        if self.master is None:
            return
        for _ in range(64):  # bounded: a leftover process may keep printing
            try:
                data = os.read(self.master, _READ_CHUNK)
            except OSError:
                return
            if not data:
                return
            self._emit(data)

    def _emit(self, data: bytes) -> None:
        _write_all(self.out_fd, data)
        self.modes.feed(data)
        self.captured += data
        limit = self.capture_bytes
        if limit and len(self.captured) > 2 * limit:  # trimmed in steps, not on every read
            del self.captured[: len(self.captured) - limit]

    def _pump_input(self) -> None:
        assert self.master is not None
        try:
            n = os.write(self.master, self.to_child[:_READ_CHUNK])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                self.to_child.clear()
                return
            raise
        del self.to_child[:n]

    def _sync_winsize(self) -> None:
        """Copy the user's window size to the pty when it changed (the kernel then sends SIGWINCH to the
        CLI). Checked on every wake-up, so a resize is never lost even without a SIGWINCH handler."""
        size = _winsize(self.out_fd) or _winsize(self.in_fd)
        if size and size != self._winsize and self.master is not None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
            self._winsize = size


__all__ = ["CANCELLED", "InteractiveCommand", "InteractiveResult", "TerminalModes", "interactive_command", "launch"]
