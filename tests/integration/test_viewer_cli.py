"""The viewer's commands as processes: ``caw view`` serves until SIGINT and leaves nothing listening; ``caw traj
show`` on a terminal (a real pty) goes through the pager, and stays plain when piped."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pexpect

from tests.viewer_samples import sample_trajectory, subagent_trajectory, write_session


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_caw_view_serves_until_interrupted_and_leaves_nothing_listening(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_session(data, sample_trajectory("view01"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "caw", "view", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CAW_DATA_DIR": str(data)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        port = int(match.group(1))
        rows = json.loads(_get(port, "/api/sessions")[1])
        assert rows[0]["session_id"] == "view01"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
        assert not _listening(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_traj_show_on_a_terminal_goes_through_the_pager(tmp_path: Path) -> None:
    d = write_session(tmp_path / "data", sample_trajectory(), subagent=subagent_trajectory())
    paged = tmp_path / "paged.txt"
    env = {**os.environ, "PAGER": f"cat > {paged}", "TERM": "xterm-256color", "CAW_DATA_DIR": str(tmp_path)}
    env.pop("LESS", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "caw", "traj", "show", str(d)],
        env=env,
        dimensions=(24, 100),
        encoding="utf-8",
        timeout=30,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    text = paged.read_text(encoding="utf-8")
    assert "\x1b[" in text  # the pager gets the colours
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "caw trajectory sample0001" in plain and "subagent sub0001" in plain and "+117 lines" in plain


def test_traj_show_short_output_on_a_terminal_skips_the_pager(tmp_path: Path) -> None:
    traj = sample_trajectory()
    traj.turns = traj.turns[1:2]
    d = write_session(tmp_path / "data", traj)
    paged = tmp_path / "paged.txt"
    env = {**os.environ, "PAGER": f"cat > {paged}", "TERM": "xterm-256color"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "caw", "traj", "show", str(d)],
        env=env,
        dimensions=(60, 120),
        encoding="utf-8",
        timeout=30,
    )
    output = child.read()
    child.close()
    assert child.exitstatus == 0 and not paged.exists()
    assert "turn 1" in re.sub(r"\x1b\[[0-9;]*m", "", output)


def test_traj_show_piped_is_plain(tmp_path: Path) -> None:
    d = write_session(tmp_path / "data", sample_trajectory())
    r = subprocess.run(
        [sys.executable, "-m", "caw", "traj", "show", str(d)],
        capture_output=True,
        text=True,
        env={**os.environ, "PAGER": "false"},
        timeout=30,
    )
    assert r.returncode == 0 and "\x1b[" not in r.stdout and "test_120" not in r.stdout and "+117 lines" in r.stdout
