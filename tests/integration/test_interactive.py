"""caw's interactive launch driven like a person would: through a real terminal (pexpect) with a fake TUI.

Each test runs, inside one pexpect terminal, ``sh -c 'stty -a > before; python driver.py; echo $? > rc;
stty -a > after'``: the driver calls ``Agent(...).interactive(...)`` with ``CAW_CLAUDE_BIN`` /
``CAW_CODEX_BIN`` pointing at ``fake_tui.py`` wrappers, so the terminal settings are compared exactly the
way a user's shell would see them, before and after caw.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pexpect
import pytest

from caw.errors import ConfigurationError
from caw.interactive import TerminalModes, _PasteFeeder, interactive_command, launch
from caw.interactive.picker import parse_keys, pick_provider
from caw.models import MCPServer, ToolGroup
from caw.providers import get_provider
from caw.providers.base import RunConfig
from caw.session.candidate import Candidate
from caw.state.ledger import CooldownStore

REPO = Path(__file__).resolve().parents[2]
FAKE_TUI = Path(__file__).with_name("fake_tui.py")
TIMEOUT = 15

DRIVER = """
import json, os, sys, termios
sys.path.insert(0, {repo!r})
cfg = json.load(open(sys.argv[1]))
out = cfg["dir"]
open(os.path.join(out, "driver.pid"), "w").write(str(os.getpid()))
import caw.interactive as ci
from caw.agent import Agent
if cfg.get("boom"):
    feed = ci.TerminalModes.feed
    def failing_feed(self, data):
        if b"BOOM" in data:
            raise RuntimeError("a bug in caw")
        feed(self, data)
    ci.TerminalModes.feed = failing_feed
prompt = open(cfg["prompt_file"], encoding="utf-8", newline="").read() if cfg.get("prompt_file") else cfg["prompt"]
before = termios.tcgetattr(0)
def report(data):
    data["termios_same"] = termios.tcgetattr(0) == before
    json.dump(data, open(os.path.join(out, "result.json"), "w"))
kwargs = dict(cfg.get("agent", {{}}))
if "tools" in kwargs:
    from caw.models import ToolGroup
    tools = ToolGroup.NONE
    for name in kwargs["tools"]:
        tools |= ToolGroup[name]
    kwargs["tools"] = tools
def interactive():
    return Agent(provider=cfg["provider"], **kwargs).interactive(
        prompt, capture_bytes=cfg.get("capture", 0), select_provider=cfg.get("pick", False)
    )
try:
    if cfg.get("thread"):  # off the main thread: no signal handlers, so the window size is polled
        import concurrent.futures
        result = concurrent.futures.ThreadPoolExecutor(1).submit(interactive).result()
    else:
        result = interactive()
except Exception as exc:
    report({{"error": type(exc).__name__, "message": str(exc)}})
    sys.exit(2)
report({{"exit": result.exit_code, "output": result.output.decode("utf-8", "replace")}})
sys.exit(result.exit_code)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def _settings(stty: str) -> str:
    """``stty -a`` without the window size (a resize during the test legitimately changes it)."""
    return re.sub(r"rows \d+; columns \d+;", "", stty)


@dataclass
class Session:
    """One driver run in a pexpect terminal."""

    child: pexpect.spawn[bytes]
    dir: Path

    def expect(self, pattern: str | bytes, timeout: float = TIMEOUT) -> None:
        self.child.expect(pattern if isinstance(pattern, bytes) else re.escape(pattern).encode(), timeout=timeout)

    def wait_exit(self) -> int:
        self.child.expect(pexpect.EOF, timeout=TIMEOUT)
        self.child.close()
        return int((self.dir / "rc.txt").read_text())

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dir / "result.json").read_text())
        return data

    def launched(self, name: str) -> dict[str, Any] | None:
        path = self.dir / f"launched-{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def assert_terminal_restored(self) -> None:
        before, after = (self.dir / "before.txt").read_text(), (self.dir / "after.txt").read_text()
        assert "-icanon" not in before  # a sane cooked terminal to start from
        assert _settings(after) == _settings(before)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    sessions: list[Session] = []

    def start(
        provider: str | list[str] = "claude", prompt: str = "", broken: bool = False, stty: str = "", **cfg: Any
    ) -> Session:
        for name in ("claude", "codex"):
            wrapper = tmp_path / f"fake-{name}"
            wrapper.write_text(
                f"#!/bin/sh\nFAKE_TUI_SIGIGN=$(grep SigIgn /proc/$$/status) FAKE_TUI_NAME={name} "
                f'exec "{sys.executable}" "{FAKE_TUI}" "$@"\n'
            )
            if broken:  # found and executable, but exec fails (a broken install)
                wrapper.write_text("#!/nonexistent/interpreter\n")
            wrapper.chmod(0o755)
        config = {"dir": str(tmp_path), "provider": provider, "prompt": prompt, **cfg}
        (tmp_path / "cfg.json").write_text(json.dumps(config))
        (tmp_path / "driver.py").write_text(DRIVER.format(repo=str(REPO)))
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "CAW_DATA_DIR": str(tmp_path / "caw-data"),
            "CAW_CLAUDE_BIN": str(tmp_path / "fake-claude"),
            "CAW_CODEX_BIN": str(tmp_path / "fake-codex"),
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "FAKE_TUI_DIR": str(tmp_path),
        }
        d = str(tmp_path)
        script = (
            (f"stty {stty}; " if stty else "")  # the user's own terminal settings
            + f'stty -a > "{d}/before.txt"; "{sys.executable}" "{d}/driver.py" "{d}/cfg.json"; '
            f'echo $? > "{d}/rc.txt"; stty -a > "{d}/after.txt"'
        )
        child = pexpect.spawn("/bin/sh", ["-c", script], env=env, dimensions=(24, 80), timeout=TIMEOUT)
        session = Session(child, tmp_path)
        sessions.append(session)
        return session

    yield start
    for s in sessions:
        if s.child.isalive():
            s.child.close(force=True)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- the bridge ----------------------------------------------------------------------------------------
def test_size_resize_keys_and_quit_pass_through_and_the_terminal_comes_back(run: Any) -> None:
    prompt = "-starts with a dash, has 'quotes' and a\nnewline"
    s = run("claude", prompt)
    s.expect("READY claude")
    s.expect(f"last={_sha(prompt)}")
    s.expect("SIZE 24x80")  # the real window size reached the child before it drew anything
    s.child.setwinsize(40, 120)
    s.expect("SIZE 40x120")  # and a resize
    s.child.send("a")
    s.expect("KEY 61")
    s.child.send("\x03")  # raw mode: Ctrl-C is a key for the CLI, not a signal for caw
    s.expect("KEY 03")
    s.child.send("\x1b[A")
    s.expect("KEY 1b")
    s.child.send("q")
    s.expect("BYE")
    assert s.wait_exit() == 0
    assert s.result()["exit"] == 0 and s.result()["termios_same"]
    assert s.launched("claude")["argv"][-2:] == ["--", prompt]  # type: ignore[index]
    s.assert_terminal_restored()


def test_the_cli_starts_with_the_users_terminal_settings_default_sigpipe_and_a_session_of_its_own(run: Any) -> None:
    # ptyprocess alone gives the CLI a fresh pty's settings and Python's ignored SIGPIPE (subprocess resets
    # it, ptyprocess does not): caw's pre-exec hook carries the user's settings over and resets the signals
    s = run("claude", "hi", stty="intr ^G")
    s.expect("START intr=07 sigpipe=default own-session=1")
    s.child.send("q")
    assert s.wait_exit() == 0
    s.assert_terminal_restored()


def test_a_terminal_that_reports_no_size_gives_the_cli_24x80_instead_of_0x0(run: Any) -> None:
    # the hand-written spawn copied a 0x0 size onto the pty; ptyprocess always spawns with a real size
    s = run("claude", "hi", stty="rows 0 cols 0")
    s.expect("SIZE 24x80")
    s.child.setwinsize(30, 100)
    s.expect("SIZE 30x100")
    s.child.send("q")
    assert s.wait_exit() == 0


def test_off_the_main_thread_the_cli_starts_the_same_and_resizes_are_polled(run: Any) -> None:
    s = run("claude", "hi", thread=True)
    s.expect("START intr=03 sigpipe=default own-session=1")  # the pre-exec hook runs in a forked thread too
    s.expect("SIZE 24x80")
    s.child.setwinsize(40, 120)
    s.expect("SIZE 40x120")  # no SIGWINCH handler there: caw looks four times a second
    s.child.send("q")
    assert s.wait_exit() == 0
    assert s.result()["exit"] == 0
    s.assert_terminal_restored()


def test_a_missing_working_directory_fails_the_spawn_instead_of_forking_a_second_caw(run: Any, tmp_path: Path) -> None:
    # ptyprocess.spawn(cwd=...) changes directory outside its exec-error pipe: the forked child would raise
    # into caw's own code and carry on as a second caw. caw changes directory in its pre-exec hook instead.
    s = run("claude", "hi", agent={"cwd": str(tmp_path / "gone")})
    assert s.wait_exit() == 2
    result = s.result()
    assert result["error"] == "ProviderNotInstalled" and "cannot be started" in result["message"]
    assert result["termios_same"] and s.launched("claude") is None
    s.assert_terminal_restored()


def test_a_crashing_cli_returns_its_exit_code_and_its_terminal_modes_are_switched_off(run: Any) -> None:
    s = run("claude", "hi")
    s.expect("READY claude")
    s.child.send("x")
    s.expect("CRASH")
    # the fake left the alternate screen, a hidden cursor and bracketed paste on: caw switches them off
    s.expect(b"\x1b\\[\\?1049l")
    s.expect(b"\x1b\\[\\?2004l")
    s.expect(b"\x1b\\[\\?25h")
    assert s.wait_exit() == 3
    result = s.result()
    assert result["exit"] == 3 and result["termios_same"]
    assert "CRASH" in result["output"]
    s.assert_terminal_restored()


def test_a_prompt_too_big_for_argv_is_pasted_into_the_ui_verbatim_then_submitted(run: Any, tmp_path: Path) -> None:
    prompt = "--help me\n" + "x" * 150_000 + "\nü€ end\n"
    (tmp_path / "prompt.txt").write_text(prompt, encoding="utf-8", newline="")
    s = run("codex", prompt_file=str(tmp_path / "prompt.txt"))
    s.expect("READY codex")
    s.expect(f"PASTE len={len(prompt)} sha={_sha(prompt)}", timeout=20)
    s.expect("ENTER")  # Enter only after the paste
    assert (tmp_path / "paste-codex.txt").read_bytes() == prompt.encode()
    assert prompt not in s.launched("codex")["argv"]  # type: ignore[index]
    s.child.send("q")
    assert s.wait_exit() == 0
    s.assert_terminal_restored()


def test_a_claude_prompt_named_like_a_subcommand_is_pasted_not_run(run: Any, tmp_path: Path) -> None:
    s = run("claude", "update")
    s.expect("PASTE len=6")
    s.expect("ENTER")
    assert (tmp_path / "paste-claude.txt").read_text() == "update"
    assert "update" not in s.launched("claude")["argv"]  # type: ignore[index]
    s.child.send("q")
    assert s.wait_exit() == 0


def test_sigterm_to_caw_stops_the_cli_and_what_it_started_and_restores_the_terminal(run: Any, tmp_path: Path) -> None:
    s = run("claude", "hi")
    s.expect("READY claude")
    s.child.send("b")
    s.expect("BG ")
    s.child.send("t")  # the CLI ignores SIGTERM: caw must not wait for it forever
    s.expect("IGNORING SIGTERM")
    tui_pid = s.launched("claude")["pid"]  # type: ignore[index]
    bg_pid = int((tmp_path / "bg-claude.pid").read_text())
    os.kill(int((tmp_path / "driver.pid").read_text()), signal.SIGTERM)
    assert s.wait_exit() == 128 + signal.SIGTERM  # caw ends the way SIGTERM ends a program
    assert not (tmp_path / "result.json").exists()
    assert not _alive(tui_pid) and not _alive(bg_pid)
    s.assert_terminal_restored()


def test_an_exception_in_caw_restores_the_terminal_and_stops_the_cli(run: Any) -> None:
    s = run("claude", "hi", boom=True)
    s.expect("READY claude")
    tui_pid = s.launched("claude")["pid"]  # type: ignore[index]
    s.child.send("e")
    assert s.wait_exit() == 2
    result = s.result()
    assert result["error"] == "RuntimeError" and result["termios_same"]
    assert not _alive(tui_pid)
    s.assert_terminal_restored()


def test_processes_the_cli_left_behind_are_killed_after_a_normal_exit(run: Any, tmp_path: Path) -> None:
    s = run("claude", "hi")
    s.expect("READY claude")
    s.child.send("b")
    s.expect("BG ")
    bg_pid = int((tmp_path / "bg-claude.pid").read_text())
    assert _alive(bg_pid)
    s.child.send("q")
    assert s.wait_exit() == 0
    assert not _alive(bg_pid)


def test_a_cli_that_tries_to_suspend_itself_keeps_running_and_caw_does_not_hang(run: Any) -> None:
    # the CLI leads a session of its own: the kernel discards job-control stops sent to it
    s = run("claude", "hi")
    s.expect("READY claude")
    s.child.send("z")
    s.expect("NOT STOPPED")
    s.child.send("q")
    assert s.wait_exit() == 0


def test_capture_bytes_keeps_the_tail_of_the_output(run: Any) -> None:
    s = run("claude", "hi", capture=64)
    s.expect("READY claude")
    for key in "acdfghij":
        s.child.send(key)
        s.expect(f"KEY {ord(key):02x}")
    s.child.send("q")
    assert s.wait_exit() == 0
    output = s.result()["output"]
    assert len(output.encode()) <= 64 and "BYE" in output and "READY" not in output


def test_a_cli_that_cannot_start_is_reported_as_not_installed_with_the_terminal_intact(run: Any) -> None:
    s = run("claude", "hi", broken=True)
    assert s.wait_exit() == 2
    result = s.result()
    assert result["error"] == "ProviderNotInstalled" and "cannot be started" in result["message"]
    assert result["termios_same"]
    s.assert_terminal_restored()


def test_without_a_terminal_caw_raises_a_clear_error_instead_of_hanging(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        cands = [Candidate(get_provider("claude"), RunConfig(), binary_path="/bin/true", _located=True)]
        with pytest.raises(ConfigurationError, match="needs a terminal"):
            launch(cands, "hi", stdin_fd=read_end)
        with pytest.raises(ConfigurationError, match="needs a terminal"):
            pick_provider(cands, input_fd=read_end, output=io.StringIO())
    finally:
        os.close(read_end)
        os.close(write_end)


# ---- the picker ----------------------------------------------------------------------------------------
def test_picker_arrows_and_enter_launch_the_chosen_provider(run: Any, tmp_path: Path) -> None:
    until = datetime.now(timezone.utc) + timedelta(hours=2)
    CooldownStore(tmp_path / "caw-data").set("codex", until)
    s = run(["claude"], "hello", pick=True)
    s.expect("choose an agent")
    s.expect("fake-tui 1.0 (claude)")  # versions come in while the menu is up
    s.expect("fake-tui 1.0 (codex)")
    local = until.astimezone()
    # the picker adds the date when the cooldown ends on another day (a run after 22:00 crosses midnight)
    shown = (
        local.strftime("%H:%M") if local.date() == datetime.now().astimezone().date() else local.strftime("%b %d %H:%M")
    )
    s.expect(f"cooling down until {shown}")
    s.child.send("\x1b[B")  # Down: codex (not in the configured order, listed after it)
    s.child.send("\r")
    s.expect("READY codex")
    s.expect(f"last={_sha('hello')}")
    s.child.send("q")
    assert s.wait_exit() == 0
    assert s.launched("claude") is None
    assert s.launched("codex")["argv"][-2:] == ["--", "hello"]  # type: ignore[index]
    s.assert_terminal_restored()


def test_picker_k_j_wrap_around(run: Any) -> None:
    s = run(["claude", "codex"], "", pick=True)
    s.expect("choose an agent")
    s.child.send("k")  # up from the first row wraps to the last
    s.child.send("j")
    s.child.send("j")  # ... and down from the last back to the first, then codex
    s.child.send("\r")
    s.expect("READY codex")
    s.child.send("q")
    assert s.wait_exit() == 0


def test_sigterm_while_the_picker_is_up_restores_the_terminal(run: Any, tmp_path: Path) -> None:
    s = run(["claude", "codex"], "hello", pick=True)
    s.expect("choose an agent")
    os.kill(int((tmp_path / "driver.pid").read_text()), signal.SIGTERM)
    s.expect(b"\x1b\\[\\?25h")  # the menu is erased and the cursor shown again
    assert s.wait_exit() == 128 + signal.SIGTERM
    assert s.launched("claude") is None and s.launched("codex") is None
    s.assert_terminal_restored()


@pytest.mark.parametrize("key", ["\x1b", "q", "\x03"])
def test_picker_cancel_exits_130_and_launches_nothing(run: Any, key: str) -> None:
    s = run(["claude", "codex"], "hello", pick=True)
    s.expect("choose an agent")
    s.expect("fake-tui 1.0 (codex)")
    s.child.send(key)
    assert s.wait_exit() == 130
    assert s.result()["exit"] == 130 and s.result()["termios_same"]
    assert s.launched("claude") is None and s.launched("codex") is None
    s.assert_terminal_restored()


def test_esc_in_the_picker_exits_at_once_without_waiting_for_a_slow_version_probe(run: Any, tmp_path: Path) -> None:
    (tmp_path / "version-sleep").write_text("15")  # a CLI that takes 15 s to answer --version
    s = run(["claude", "codex"], "hello", pick=True)
    s.expect("choose an agent")
    began = time.monotonic()
    s.child.send("\x1b")
    assert s.wait_exit() == 130
    assert time.monotonic() - began < 3, "caw waited for the --version probes before exiting"
    assert s.launched("claude") is None and s.launched("codex") is None
    s.assert_terminal_restored()


# ---- pure parts: command lines, terminal modes, keys, the paste timing ---------------------------------
def test_claude_interactive_argv_maps_the_configuration_like_the_scripted_run() -> None:
    config = RunConfig(
        model="opus",
        reasoning="high",
        system_prompt="Be brief.",
        tools=ToolGroup.READER | ToolGroup.WRITER,
        mcp_servers=(MCPServer(name="echo", command="python3", args=["mcp.py"]),),
    )
    cmd = interactive_command(get_provider("claude"), "/bin/claude", config, "-x")
    try:
        argv = cmd.argv
        assert argv[:5] == ["/bin/claude", "--model", "opus", "--effort", "high"]
        assert "-p" not in argv and "--output-format" not in argv
        assert argv[argv.index("--append-system-prompt") + 1] == "Be brief."
        assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
        assert argv[argv.index("--tools") + 1] == "Read,Glob,Grep,Edit,Write,NotebookEdit"
        mcp = Path(argv[argv.index("--mcp-config") + 1])
        assert mcp.stat().st_mode & 0o777 == 0o600
        assert json.loads(mcp.read_text())["mcpServers"]["echo"]["command"] == "python3"
        assert argv[-2:] == ["--", "-x"] and cmd.paste is None
    finally:
        cmd.cleanup()
    assert not mcp.exists()


def test_codex_interactive_argv_has_no_exec_and_puts_the_prompt_after_double_dash() -> None:
    config = RunConfig(model="gpt-5.5", reasoning="low", system_prompt="Be brief.", tools=ToolGroup.READER)
    cmd = interactive_command(get_provider("codex"), "/bin/codex", config, "-x")
    argv = cmd.argv
    assert argv[0] == "/bin/codex" and "exec" not in argv and "--json" not in argv
    assert argv[argv.index("-m") + 1] == "gpt-5.5"
    assert 'model_reasoning_effort="low"' in argv and 'developer_instructions="Be brief."' in argv
    assert argv[argv.index("-s") + 1] == "read-only"
    assert "--no-daemon" in argv  # no background server left behind
    assert argv[-2:] == ["--", "-x"]


def test_opencode_interactive_argv_passes_the_prompt_as_one_token_and_effort_through_the_agent() -> None:
    config = RunConfig(model="fake/text", reasoning="high", system_prompt="Be brief.", tools=ToolGroup.READER)
    cmd = interactive_command(get_provider("opencode"), "/bin/opencode", config, "--help")
    assert cmd.argv == ["/bin/opencode", "--model", "fake/text", "--prompt=--help"]
    assert json.loads(cmd.env["OPENCODE_PERMISSION"])["edit"] == "deny"
    content = json.loads(cmd.env["OPENCODE_CONFIG_CONTENT"])
    assert Path(content["instructions"][0]).read_text() == "Be brief."
    assert content["agent"]["build"] == {"variant": "high", "model": "fake/text"}


def test_a_prompt_over_100kb_goes_through_the_paste_for_every_cli() -> None:
    big = "y" * 120_000
    for name in ("claude", "codex", "opencode"):
        cmd = interactive_command(get_provider(name), f"/bin/{name}", RunConfig(), big)
        assert cmd.paste == big and big not in cmd.argv


def test_terminal_modes_follow_sequences_split_across_reads() -> None:
    modes = TerminalModes()
    modes.feed(b"hello \x1b[?10")
    modes.feed(b"49h\x1b[?1000;1006h\x1b[?25l\x1b[>1u")
    assert modes.reset_sequence() == b"\x1b[?1049l\x1b[?1000l\x1b[?1006l\x1b[<1u\x1b[?25h"
    modes.feed(b"\x1b[?1049l\x1b[?1000;1006l\x1b[?25h\x1b[<u")
    assert modes.reset_sequence() == b""


def test_picker_keys() -> None:
    assert parse_keys(b"\x1b[A\x1bOBkj\r") == ["up", "down", "up", "down", "enter"]
    assert parse_keys(b"\x1b") == ["cancel"]
    assert parse_keys(b"q") == ["cancel"] and parse_keys(b"\x03") == ["cancel"]
    assert parse_keys(b"zz\x1b[C") == []


def test_paste_waits_for_bracketed_paste_and_quiet_then_enter() -> None:
    modes = TerminalModes()
    feeder = _PasteFeeder("hi", now=0.0)
    assert feeder.due(1.0, modes, False) == b""  # no UI yet
    feeder.on_output(1.0)
    modes.feed(b"\x1b[?2004h")
    assert feeder.due(1.2, modes, False) == b""  # still drawing
    assert feeder.due(1.6, modes, False) == b"\x1b[200~hi\x1b[201~"
    feeder.on_output(1.7)
    assert feeder.due(1.8, modes, False) == b""  # echo not settled yet
    assert feeder.due(2.3, modes, True) == b""  # the paste is not written yet
    assert feeder.due(2.3, modes, False) == b"\r"
    assert feeder.deadline() is None


def test_paste_is_typed_plainly_when_the_ui_never_enables_bracketed_paste() -> None:
    feeder = _PasteFeeder("hi", now=0.0)
    feeder.on_output(0.1)
    deadline = feeder.deadline()
    assert deadline is not None and deadline < 61
    assert feeder.due(59.0, TerminalModes(), False) == b""
    assert feeder.due(61.0, TerminalModes(), False) == b"hi"


def test_paste_waits_for_the_ready_text_of_a_ui_that_enables_paste_mode_early() -> None:
    # opencode switches bracketed paste on seconds before its input box exists (keys sent then are lost)
    modes = TerminalModes()
    modes.feed(b"\x1b[?2004h")
    feeder = _PasteFeeder("hi", now=0.0, ready=b"Ask anything")
    feeder.on_output(0.1, b"\x1b[?2004h\x1b[2J")
    assert feeder.due(5.0, modes, False) == b""  # quiet, but the UI is still loading
    feeder.on_output(6.0, b"\x1b[3;4HAsk any")
    feeder.on_output(6.1, b"thing\xe2\x80\xa6")  # the text may be split across reads
    assert feeder.due(6.3, modes, False) == b""
    assert feeder.due(6.7, modes, False) == b"\x1b[200~hi\x1b[201~"
