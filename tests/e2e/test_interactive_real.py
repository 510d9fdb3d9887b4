"""Each real CLI's own interactive UI, started by caw and driven through a terminal like a person would.

The same terminal set-up as tests/integration/test_interactive.py (``stty -a`` before and after caw in one
pexpect terminal, a driver calling ``Agent(...).interactive``), with the real CLI talking to its loopback
fake model server. Per CLI: it starts, the initial prompt (starting with ``-``) reaches the model verbatim
and the reply appears on screen, a resize reaches the CLI's terminal and it redraws, quitting the way a
person would returns the CLI's exit code, and the terminal settings are unchanged afterwards.

What each CLI needs pre-seeded for an offline interactive start (caw never writes these for users):
* claude: ``~/.claude.json`` marking onboarding done, the API key approved and the project trusted, plus
  ``CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL=1`` (shared/reference/claude-cli.md §1);
* codex: the project trusted (``[projects."<cwd>"] trust_level``) and the model-upgrade notice marked as
  seen (``[notice.model_migrations]``), else a "Meet GPT-6 Sol" dialog waits for a choice; its
  announcement-tip fetch (raw.githubusercontent.com) has no switch and is refused by the proxy sink;
* opencode: nothing beyond the scripted environment (its TUI has no trust or onboarding screen).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.fakes.anthropic import AnthropicFake
from tests.fakes.base import FakeModelServer
from tests.fakes.env import FAKE_ANTHROPIC_KEY, claude_env, codex_env, full_env, opencode_env
from tests.fakes.openai_chat import ChatFake
from tests.fakes.openai_responses import ResponsesFake
from tests.fakes.replies import Text
from tests.integration.test_interactive import DRIVER, REPO, _settings

REPLY = "caw_interactive_reply_ok"
# a terminal a person might use; the CLIs draw differently (or not at all) on TERM=dumb
TERM = "xterm-256color"


def _seed_claude(env: dict[str, str], work: Path) -> None:
    state = {
        "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [FAKE_ANTHROPIC_KEY[-20:]]},
        "projects": {str(work): {"hasTrustDialogAccepted": True}},
    }
    (Path(env["HOME"]) / ".claude.json").write_text(json.dumps(state))
    env["CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL"] = "1"


def _seed_codex(env: dict[str, str], work: Path) -> None:
    config = Path(env["CODEX_HOME"]) / "config.toml"
    # TOML tables must come after the top-level keys: prepend nothing, append the tables
    config.write_text(
        config.read_text()
        + f'\n[notice.model_migrations]\n"gpt-5.5" = "gpt-6-sol"\n\n[projects.{json.dumps(str(work))}]\n'
        + 'trust_level = "trusted"\n'
    )


def _seed_nothing(env: dict[str, str], work: Path) -> None:
    return None


def _verbatim(prompt: str) -> str:
    return prompt


@dataclass(frozen=True)
class RealCli:
    name: str
    fake: type[FakeModelServer]
    env: Callable[[str, Path], dict[str, str]]
    seed: Callable[[dict[str, str], Path], None]
    model: str | None
    #: seconds until the reply is on screen (opencode's TUI starts in about 10 s on an idle 2-core box)
    answer_timeout: float
    #: how a person leaves this UI, and the exit code the CLI then reports
    quit_keys: tuple[str, ...] = ("\x03", "\x03")
    quit_code: int = 0
    #: hosts the CLI tries to reach that have no off switch (refused by the proxy sink)
    known_outbound: tuple[str, ...] = ()
    #: what the model receives for a pasted prompt (opencode trims the end of a paste and adds a space)
    pasted: Callable[[str], str] = _verbatim


CLIS = [
    # Ctrl-C twice: the first one asks "press Ctrl-C again to exit"
    RealCli("claude", AnthropicFake, claude_env, _seed_claude, None, 30),
    RealCli(
        "codex", ResponsesFake, codex_env, _seed_codex, None, 30, known_outbound=("raw.githubusercontent.com:443",)
    ),
    RealCli(
        "opencode",
        ChatFake,
        opencode_env,
        _seed_nothing,
        "fake/text",
        90,
        quit_keys=("/exit", "\r"),
        pasted=lambda prompt: prompt.rstrip() + " ",
    ),
]


def _children(pid: int) -> list[int]:
    """The driver's children, without caw's watchdog process (``caw.transport.watchdog``: it outlives caw)."""
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(p) for p in f.read().split()]
    return [p for p in out if not _is_watchdog(p)]


def _is_watchdog(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"watchdog_main.py" in f.read()
    except OSError:
        return False


_PASTED_CONTENT = re.compile(r'\s*<pasted_content id="([^"]+)">\n(.*)\n</pasted_content id="\1">\s*', re.DOTALL)


def _unwrap_paste(text: str) -> str:
    """claude 2.1.3xx sends a large paste to the model wrapped, verbatim inside:
    ``<pasted_content id="ac23">\n…\n</pasted_content id="ac23">`` (its SDK's ``pasted_content``)."""
    m = _PASTED_CONTENT.fullmatch(text)
    return m.group(2) if m else text


def _tty_size(pid: int) -> tuple[int, int]:
    """The window size of the terminal ``pid`` reads from (the pty caw made for it)."""
    fd = os.open(f"/proc/{pid}/fd/0", os.O_RDONLY | os.O_NOCTTY)
    try:
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    finally:
        os.close(fd)
    return rows, cols


@dataclass
class Run:
    cli: RealCli
    srv: FakeModelServer
    child: pexpect.spawn[bytes]
    dir: Path

    def wait_for_prompt(self, prompt: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            texts = [self.srv.last_user_text(r.body) for r in self.srv.model_requests if r.body is not None]
            if prompt in texts or prompt in [_unwrap_paste(t) for t in texts]:
                return
            self.pump(0.2)
        heads = [t[:80] for t in texts]
        raise AssertionError(f"{self.cli.name}: the prompt never reached the model; user texts seen: {heads}")

    def pump(self, seconds: float) -> None:
        """Read the terminal for ``seconds`` (a CLI blocked on a full terminal would stall the test)."""
        self.child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=seconds)

    def cli_pid(self) -> int:
        driver = int((self.dir / "driver.pid").read_text())
        children = _children(driver)
        assert len(children) == 1, children
        return children[0]

    def exit_code(self) -> int:
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        return int((self.dir / "rc.txt").read_text())

    def assert_terminal_restored(self) -> None:
        before, after = (self.dir / "before.txt").read_text(), (self.dir / "after.txt").read_text()
        assert _settings(after) == _settings(before)
        assert json.loads((self.dir / "result.json").read_text())["termios_same"]

    def assert_nothing_left_running(self) -> None:
        """No process of this run is left (tools, MCP servers, codex's app-server daemon...)."""
        needle = f"HOME={self.dir / 'home'}\0".encode()
        left = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if (environ.startswith(needle) or b"\0" + needle in environ) and state != b"Z":
                left.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")[:120])
        assert left == []

    def assert_stayed_offline(self) -> None:
        leaks = [r.path for r in self.srv.non_loopback_attempts() if r.path not in self.cli.known_outbound]
        assert leaks == []


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    runs: list[tuple[Run, FakeModelServer]] = []

    def _start(cli: RealCli, prompt: str, agent: dict[str, Any] | None = None) -> Run:
        srv = cli.fake().start()
        srv.default = Text(REPLY, chunks=1)
        work = (tmp_path / "work").resolve()
        work.mkdir()
        env = full_env(cli.env(srv.url, tmp_path))
        env.pop("NO_COLOR", None)
        env.update({"TERM": TERM, "CAW_DATA_DIR": str(tmp_path / "caw-data")})
        if cli.model:
            env["CAW_MODEL"] = cli.model
        cli.seed(env, work)
        (tmp_path / "prompt.txt").write_text(prompt, encoding="utf-8", newline="")
        (tmp_path / "cfg.json").write_text(
            json.dumps(
                {
                    "dir": str(tmp_path),
                    "provider": cli.name,
                    "prompt_file": str(tmp_path / "prompt.txt"),
                    "agent": agent or {},
                }
            )
        )
        (tmp_path / "driver.py").write_text(DRIVER.format(repo=str(REPO)))
        d = str(tmp_path)
        script = (
            f'stty -a > "{d}/before.txt"; "{sys.executable}" "{d}/driver.py" "{d}/cfg.json"; '
            f'echo $? > "{d}/rc.txt"; stty -a > "{d}/after.txt"'
        )
        child = pexpect.spawn("/bin/sh", ["-c", script], env=env, cwd=str(work), dimensions=(30, 100), timeout=30)
        child.logfile_read = (tmp_path / "screen.bin").open("wb")
        run = Run(cli, srv, child, tmp_path)
        runs.append((run, srv))
        return run

    yield _start
    for run, srv in runs:
        if run.child.isalive():
            run.child.close(force=True)
        srv.stop()


def _quit(run: Run) -> None:
    """Quit the way a person would (``RealCli.quit_keys``), one key press at a time, and again if the UI is
    still there: a first Ctrl-C that lands while the UI is still busy with the reply only interrupts."""
    # the reply is on screen before the CLI has closed its turn (codex: a Ctrl-C then only interrupts, and it
    # shows "Conversation interrupted"): read the screen a moment first, as a person would
    run.pump(2.0)
    for _ in range(3):
        for keys in run.cli.quit_keys:
            run.child.send(keys)
            run.pump(0.4)  # a separate key press, not part of the same read
        if run.child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=10) == 0:
            return


@pytest.mark.parametrize("cli", CLIS, ids=[c.name for c in CLIS])
def test_real_cli_starts_answers_resizes_quits_and_restores_the_terminal(
    cli: RealCli, start: Callable[..., Run]
) -> None:
    prompt = f"-{cli.name}: reply please, 'quoted' and all"
    run = start(cli, prompt)
    run.wait_for_prompt(prompt, cli.answer_timeout)  # verbatim, leading "-" included
    run.child.expect(re.escape(REPLY).encode(), timeout=cli.answer_timeout)
    pid = run.cli_pid()
    assert _tty_size(pid) == (30, 100)
    run.pump(1.0)
    run.child.buffer = b""  # from here on only what the CLI draws after the resize
    run.child.setwinsize(40, 120)
    deadline = time.monotonic() + 10
    while _tty_size(pid) != (40, 120) and time.monotonic() < deadline:
        run.pump(0.1)
    assert _tty_size(pid) == (40, 120)
    # ... and the UI took it: it redraws the reply at the new size
    run.child.expect(re.escape(REPLY).encode(), timeout=15)
    _quit(run)
    assert run.exit_code() == cli.quit_code
    run.assert_terminal_restored()
    run.assert_nothing_left_running()
    run.assert_stayed_offline()


@pytest.mark.parametrize("cli", CLIS, ids=[c.name for c in CLIS])
def test_real_cli_gets_a_prompt_too_big_for_argv_as_a_paste(cli: RealCli, start: Callable[..., Run]) -> None:
    prompt = "--" + "big prompt line\n" * 8_000 + "the end"  # 128 KB, over the argv limit caw keeps to
    run = start(cli, prompt)
    run.wait_for_prompt(cli.pasted(prompt), cli.answer_timeout)
    run.child.expect(re.escape(REPLY).encode(), timeout=cli.answer_timeout)
    _quit(run)
    assert run.exit_code() == cli.quit_code
    run.assert_terminal_restored()


def _effort(cli: str, body: dict[str, Any]) -> object:
    if cli == "claude":
        return body.get("output_config", {}).get("effort")
    if cli == "codex":
        return body.get("reasoning", {}).get("effort")
    return body.get("reasoning_effort")


@pytest.mark.parametrize("cli", CLIS, ids=[c.name for c in CLIS])
def test_real_cli_interactive_ui_gets_the_same_configuration_as_a_scripted_run(
    cli: RealCli, start: Callable[..., Run]
) -> None:
    marker = "CAW_SYSTEM_PROMPT_MARKER_7f3a"
    agent: dict[str, Any] = {"system_prompt": f"{marker}: answer briefly.", "reasoning": "high"}
    if cli.name == "opencode":
        agent["model"] = "fake/reasoning"  # opencode offers effort variants only for reasoning models
    run = start(cli, "hello", agent)
    run.wait_for_prompt("hello", cli.answer_timeout)
    run.child.expect(re.escape(REPLY).encode(), timeout=cli.answer_timeout)
    request = next(
        r for r in run.srv.model_requests if r.body is not None and run.srv.last_user_text(r.body) == "hello"
    )
    assert request.body is not None
    assert marker in json.dumps(request.body)  # the system prompt, appended to the CLI's own
    assert _effort(cli.name, request.body) == "high"
    _quit(run)
    assert run.exit_code() == cli.quit_code
    run.assert_terminal_restored()
