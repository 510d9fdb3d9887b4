"""Process lifecycle on a real pty, with a scriptable fake CLI (no model, no network)."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

import caw
from tests.background import send_in_background
from tests.integration.conftest import cmd_running, pid_alive
from tests.integration.fake_cli import init, result, text


def agent(**kw: object) -> caw.Agent:
    return caw.Agent(provider="claude", auto_wait=False, stop_grace=1.0, **kw)  # type: ignore[arg-type]


def wait_for(pred, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def unique_sleep() -> str:
    return f"sleep {300 + uuid.uuid4().int % 500}.{uuid.uuid4().int % 9973}"


def test_a_normal_turn_completes(fake_cli) -> None:  # type: ignore[no-untyped-def]
    fake_cli([{"json": init()}, {"json": text("hello")}, {"json": result("hello")}])
    traj = agent().completion("hi")
    assert traj.result == "hello"
    assert traj.turns[0].status == "completed"
    assert traj.provider_session_id == "11111111-2222-3333-4444-555555555555"
    assert traj.turns[0].usage.cost_usd == pytest.approx(0.001)


def test_noise_ansi_and_crlf_are_tolerated_and_kept_as_diagnostics(fake_cli) -> None:  # type: ignore[no-untyped-def]
    fake_cli(
        [
            {"raw": "\x1b[2mWARNING: something harmless\x1b[0m\r\n"},
            {"json": init()},
            {"raw": "not json at all\r\n"},
            {"raw": '{"truncated json\r\n'},
            {"json": text("fine")},
            {"json": result("fine")},
            # claude's terminal-reset trailer at exit: no newline, only escape codes
            {"raw": "\x1b[?1006l\x1b[?1003l\x1b(B\x0f\x1b[>4m\x1b[<u\x1b[?25h\x1b7\x1b[r\x1b8\x1b]0;\x07\x1b[?25h"},
        ]
    )
    traj = agent().completion("hi")
    turn = traj.turns[0]
    assert turn.result == "fine"
    assert "WARNING: something harmless" in turn.diagnostics
    assert "not json at all" in turn.diagnostics
    assert all("\x1b" not in d for d in turn.diagnostics)


def test_invalid_utf8_is_replaced_not_fatal(fake_cli) -> None:  # type: ignore[no-untyped-def]
    bad = b'{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"caf\xc3 \xff!"}]}}\n'
    fake_cli([{"json": init()}, {"raw_b64": base64.b64encode(bad).decode()}, {"json": result("x")}])
    traj = agent().completion("hi")
    assert traj.turns[0].output[0].text == "caf\ufffd \ufffd!"  # type: ignore[union-attr]


def test_a_10_mb_line_arrives_whole(fake_cli) -> None:  # type: ignore[no-untyped-def]
    size = 10 * 1024 * 1024
    fake_cli([{"json": init()}, {"text_event": size}, {"json": result("big")}])
    traj = agent().completion("hi")
    assert len(traj.turns[0].output[0].text) == size  # type: ignore[union-attr]


def test_prompt_reaches_the_cli_on_stdin_verbatim(fake_cli) -> None:  # type: ignore[no-untyped-def]
    prompt = "--help " + "é" * 600_000  # > 1 MB of UTF-8, starts with a dash
    fake_cli([{"json": init()}, {"echo_stdin": True}, {"json": result("ok")}])
    traj = agent().completion(prompt)
    data = prompt.encode()
    assert f"stdin len={len(data)} sha256={hashlib.sha256(data).hexdigest()}" in traj.turns[0].result


def test_stdout_is_a_tty_but_stdin_is_a_pipe_because_claude_refuses_a_tty_stdin(fake_cli) -> None:  # type: ignore[no-untyped-def]
    """`claude -p` exits at once on a TTY stdin; every CLI streams unbuffered only to a TTY stdout."""
    fake_cli([{"json": init()}, {"tty_report": True}, {"json": result("ok")}])
    traj = agent().completion("hi")
    assert "stdin_tty=False stdout_tty=True stderr_tty=False" in traj.turns[0].result


def test_the_cli_sees_pwd_naming_its_working_directory_not_the_parents(  # type: ignore[no-untyped-def]
    fake_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: opencode takes its project directory from $PWD, so an inherited PWD sent it elsewhere."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setenv("PWD", "/")  # the parent's shell was somewhere else
    fake_cli([{"json": init()}, {"cwd_report": True}, {"json": result("ok")}])
    traj = agent(cwd=str(project)).completion("hi")
    expected = str(project.resolve())
    assert f"cwd={expected} PWD={expected}" in traj.turns[0].result


def test_chatty_stderr_never_deadlocks(fake_cli) -> None:  # type: ignore[no-untyped-def]
    fake_cli([{"stderr_bytes": 8 * 1024 * 1024}, {"json": init()}, {"json": text("after")}, {"json": result()}])
    traj = agent(timeout=60).completion("hi")
    assert traj.turns[0].result == "after"


def test_crash_mid_stream_keeps_the_partial_turn(fake_cli) -> None:  # type: ignore[no-untyped-def]
    fake_cli([{"json": init()}, {"json": text("partial answer")}, {"exit": 3}])
    with pytest.raises(caw.ProviderCrashed) as info:
        agent().completion("hi")
    err = info.value
    assert err.exit_code == 3
    assert err.turn is not None and err.turn.result == "partial answer" and err.turn.status == "failed"
    assert err.trajectory.turns[0].result == "partial answer"  # type: ignore[attr-defined]


def test_cli_error_without_output_reports_stderr(fake_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake_cli([{"raw": ""}, {"exit": 1}])
    exe = Path(os.environ["CAW_CLAUDE_BIN"])
    exe.write_text("#!/bin/sh\necho 'Error: Session ID abc is already in use.' >&2\nexit 1\n")
    with pytest.raises(caw.ProviderCrashed, match="already in use") as info:
        agent().completion("hi")
    assert info.value.exit_code == 1


@pytest.mark.parametrize(
    ("script", "kw", "error"),
    [
        ([{"sleep": 30}], {"first_output_timeout": 0.5}, caw.FirstOutputTimeout),
        ([{"json": init()}, {"json": text("so far")}, {"sleep": 30}], {"idle_timeout": 0.5}, caw.IdleTimeout),
        (
            [{"json": init()}, {"json": text("so far")}] + [{"sleep": 0.1}, {"raw": "tick\n"}] * 100,
            {"timeout": 1.0},
            caw.TurnTimeout,
        ),
    ],
    ids=["first-output", "idle", "whole-turn"],
)
def test_watchdogs_raise_their_own_error_and_keep_the_partial_turn(fake_cli, script, kw, error) -> None:  # type: ignore[no-untyped-def]
    fake_cli(script)
    started = time.monotonic()
    with pytest.raises(error) as info:
        agent(**kw).completion("hi")
    assert time.monotonic() - started < 10
    turn = info.value.turn
    assert turn is not None and turn.status == "timeout"
    if error is not caw.FirstOutputTimeout:
        assert turn.result == "so far"


def test_cancel_kills_a_tool_in_its_own_session(fake_cli) -> None:  # type: ignore[no-untyped-def]
    sleeper = unique_sleep()
    # the text first: once the tool is visible, "started" is already in the pty, so the partial turn must keep it
    fake_cli([{"json": init()}, {"json": text("started")}, {"orphan": sleeper}, {"sleep": 60}])
    session = agent().start_session()
    send = send_in_background(session, "go")
    wait_for(lambda: cmd_running(sleeper), 20, "the orphan tool")
    t0 = time.monotonic()
    session.cancel()
    send.join(10)
    assert time.monotonic() - t0 < 5
    assert not cmd_running(sleeper)
    err = send.error
    assert isinstance(err, caw.TurnCancelled)
    assert err.turn is not None and err.turn.result == "started"
    assert session.trajectory.turns[-1].status == "cancelled"


def test_leftover_tools_are_swept_after_a_normal_turn(fake_cli) -> None:  # type: ignore[no-untyped-def]
    sleeper = unique_sleep()
    fake_cli([{"json": init()}, {"orphan": sleeper}, {"json": text("ok")}, {"json": result("ok")}])
    traj = agent().completion("hi")
    assert traj.result == "ok"
    assert not cmd_running(sleeper)


def test_stream_break_cancels_the_turn(fake_cli) -> None:  # type: ignore[no-untyped-def]
    sleeper = unique_sleep()
    fake_cli([{"json": init()}, {"orphan": sleeper}, {"json": text("first")}, {"sleep": 60}])
    session = agent().start_session()
    stream = session.stream("go")
    for ev in stream:
        if isinstance(ev, caw.events.TextEvent):
            break
    stream.close()
    assert not cmd_running(sleeper)
    session.end()


def test_cli_dies_with_a_sigkilled_parent(tmp_path: Path, fake_cli) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "cli.pid"
    fake_cli([{"json": init()}, {"pidfile": str(pidfile)}, {"sleep": 120}])
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent("""
        import caw
        caw.Agent(provider="claude", auto_wait=False).completion("hi")
    """)
    )
    proc = subprocess.Popen([sys.executable, str(driver)], env=os.environ.copy(), cwd=os.getcwd())
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text(), 20, "the fake CLI to start")
        cli_pid = int(pidfile.read_text())
        assert pid_alive(cli_pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not pid_alive(cli_pid), 5, "the CLI to die with its parent (PR_SET_PDEATHSIG)")
    finally:
        proc.kill()


def test_cli_is_stopped_at_interpreter_exit(tmp_path: Path, fake_cli) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "cli.pid"
    sleeper = unique_sleep()
    fake_cli([{"json": init()}, {"orphan": sleeper}, {"pidfile": str(pidfile)}, {"sleep": 120}])
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(f"""
        import os, threading, time, caw
        s = caw.Agent(provider="claude", auto_wait=False).start_session()
        threading.Thread(target=lambda: s.send("hi"), daemon=True).start()
        while not os.path.exists({str(pidfile)!r}):
            time.sleep(0.02)
        # returning from the script runs atexit: caw must stop the CLI and its tools
    """)
    )
    subprocess.run([sys.executable, str(driver)], env=os.environ.copy(), timeout=30, check=True)
    cli_pid = int(pidfile.read_text())
    wait_for(lambda: not pid_alive(cli_pid), 5, "the CLI to be stopped at exit")
    assert not cmd_running(sleeper)


def test_cli_survives_the_thread_that_started_it(fake_cli) -> None:  # type: ignore[no-untyped-def]
    """PR_SET_PDEATHSIG fires when the spawning *thread* exits, not the process: a stream started in a
    worker thread that then retires must keep its CLI. caw spawns from one long-lived thread."""
    fake_cli([{"json": init()}, {"sleep": 1.0}, {"json": text("still here")}, {"json": result("still here")}])
    session = agent().start_session()
    stream = session.stream("hi")
    events = iter(stream)
    first: list[object] = []
    starter = threading.Thread(target=lambda: first.append(next(events)))
    starter.start()
    starter.join(30)
    assert first, "the CLI should have announced its session"
    # the thread that started the CLI is gone; the turn must still finish normally
    rest = list(events)
    assert stream.turn.result == "still here"
    assert any(isinstance(e, caw.events.ResultEvent) for e in rest)
    session.end()


def test_missing_binary_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAW_CLAUDE_BIN", str(tmp_path / "no-such-claude"))
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "d"))
    with pytest.raises(caw.ProviderNotInstalled) as info:
        agent().completion("hi")
    assert info.value.provider == "claude"
    assert f"CAW_CLAUDE_BIN={tmp_path / 'no-such-claude'} is not an executable file" in str(info.value)
