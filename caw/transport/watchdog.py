"""Something that outlives caw: kills the CLIs' tools when caw dies without cleaning up (issue 17.1).

Every CLI caw starts dies with caw (``PR_SET_PDEATHSIG``), but the tools a CLI starts run in sessions of
their own and are not its children in the kernel's sense of "parent death": after a SIGKILL of caw they keep
running for as long as their command does. Nothing inside a dead process can reap them, so the first spawn
of a caw process starts one small watchdog process (``watchdog_main.py``, the standard library only): it
holds the read end of a pipe whose write end only caw holds, and when that pipe reports EOF it kills every
process whose environment carries this caw process's owner token (``CAW_OWNER``), which every CLI and
everything it starts inherits. A cgroup would be tighter but needs a delegated cgroup v2 subtree, which CI
runners and containers rarely give; the environment token works unprivileged everywhere Linux has /proc.

Cost, measured (``scripts/bench.py``): the spawn is one fork/exec, done once per caw process on a
background thread, so it overlaps the CLI's own start-up; the watchdog then sleeps in ``read`` (no CPU).
``CAW_NO_WATCHDOG=1`` turns it off (for a caller that runs caw inside its own process supervisor).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import MutableMapping
from pathlib import Path

OWNER_VAR = "CAW_OWNER"
_MAIN = Path(__file__).with_name("watchdog_main.py")

_lock = threading.Lock()
_token: str | None = None
_owner_pid: int | None = None
_write_fd: int | None = None
_proc: subprocess.Popen[bytes] | None = None


def owner_token() -> str:
    """This process's owner token (a fork gets a fresh one: its children are its own to guard)."""
    global _token, _owner_pid
    with _lock:
        if _token is None or _owner_pid != os.getpid():
            _token, _owner_pid = uuid.uuid4().hex, os.getpid()
            _reset_after_fork()
        return _token


def _reset_after_fork() -> None:
    global _write_fd, _proc
    _write_fd, _proc = None, None


def guard(env: MutableMapping[str, str]) -> None:
    """Tag a CLI's environment with the owner token and make sure the watchdog runs (starts it once)."""
    if os.environ.get("CAW_NO_WATCHDOG", "") not in ("", "0"):
        return
    env[OWNER_VAR] = owner_token()
    if _proc is None:
        threading.Thread(target=_start, name="caw-watchdog-spawn", daemon=True).start()


def _start() -> None:
    global _write_fd, _proc
    with _lock:
        if _proc is not None or _token is None:
            return
        read_fd, write_fd = os.pipe()  # both close-on-exec: no CLI inherits the write end
        env = {k: v for k, v in os.environ.items() if k not in (OWNER_VAR, "CAW_RUN_ID")}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_MAIN), str(read_fd), _token],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(read_fd,),
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C or a killpg of caw's group must not reach it
            )
        except OSError:
            os.close(write_fd)
            return
        finally:
            os.close(read_fd)
        _write_fd, _proc = write_fd, proc


def watchdog_pid() -> int | None:
    """The watchdog's pid once it runs (tests)."""
    return _proc.pid if _proc is not None else None


__all__ = ["OWNER_VAR", "guard", "owner_token", "watchdog_pid"]
