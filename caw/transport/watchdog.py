"""Something that outlives caw: kills the CLIs' tools when caw dies without cleaning up (issue 17.1).

Every CLI caw starts dies with caw (``PR_SET_PDEATHSIG``), but the tools a CLI starts run in sessions of
their own: after a SIGKILL of caw they keep running for as long as their command does. Nothing inside a dead
process can reap them, so before its first spawn a caw process starts one small watchdog process
(``watchdog_main.py``, the standard library only). It holds the read end of a pipe whose write end only caw
holds; when the pipe reports EOF it kills every process whose environment carries this caw process's owner
token (``CAW_OWNER``), which every CLI and everything it starts inherits. A clean exit tells it so first
(``atexit``), and it exits at once. A cgroup would be tighter but needs a delegated cgroup v2 subtree, which
CI runners and containers rarely give; the environment token works unprivileged wherever Linux has /proc.

The watchdog is detached (``setsid -f``, or a Python double fork) *before* caw makes itself the subreaper of
its descendants, so it is not one of caw's children: a caller counting its own children after ``end()``
finds nothing of caw's. It runs with an empty environment and a neutral command line (``python -I -S -c``
with the source), so a scan for the caller's variables or for "caw" does not find it either; it learns the
token from the pipe.

Cost (``scripts/bench.py``): one short fork/exec of ``setsid`` per caw process, waited for; the watchdog's
own start-up overlaps the CLI's, and then it sleeps in ``read``. ``CAW_NO_WATCHDOG=1`` turns it off (for a
caller that runs caw inside its own process supervisor).
"""

from __future__ import annotations

import atexit
import os
import shutil
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
_started = False


def disabled() -> bool:
    return os.environ.get("CAW_NO_WATCHDOG", "") not in ("", "0")


def owner_token() -> str:
    """This process's owner token (a fork gets a fresh one: its children are its own to guard)."""
    global _token, _owner_pid, _write_fd, _started
    with _lock:
        if _token is None or _owner_pid != os.getpid():
            _token, _owner_pid = uuid.uuid4().hex, os.getpid()
            _write_fd, _started = None, False
        return _token


def ensure_started() -> None:
    """Start the watchdog once per process. Call it before the process becomes a subreaper (see module doc)."""
    if disabled():
        return
    token = owner_token()
    with _lock:
        if _started:
            return
        _start(token)


def _start(token: str) -> None:
    global _write_fd, _started
    _started = True  # also on failure: one attempt per process, a missing watchdog must not slow every spawn
    try:
        source = _MAIN.read_text()
    except OSError:
        return
    read_fd, write_fd = os.pipe()  # both close-on-exec: no CLI inherits either end
    python = [sys.executable, "-I", "-S", "-c", source, str(read_fd)]
    setsid = shutil.which("setsid")
    # without util-linux's setsid, a Python double fork detaches it the same way
    detach = [setsid, "-f"] if setsid is not None else [sys.executable, "-I", "-S", "-c", _DOUBLE_FORK]
    argv = [*detach, *python]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(read_fd,),
            env={},
            cwd="/",
            start_new_session=True,  # a terminal's Ctrl-C or a killpg of caw's group must not reach it
        )
        proc.wait(5)  # setsid -f returns once the watchdog is forked: it is nobody's child of ours
    except (OSError, subprocess.TimeoutExpired):
        os.close(write_fd)
        return
    finally:
        os.close(read_fd)
    try:
        os.write(write_fd, f"{OWNER_VAR}={token}\n".encode())
    except OSError:
        os.close(write_fd)
        return
    _write_fd = write_fd


_DOUBLE_FORK = "import os,sys\nif os.fork() == 0:\n    os.setsid()\n    os.execv(sys.argv[1], sys.argv[1:])\n"


def guard(env: MutableMapping[str, str]) -> None:
    """Tag a CLI's environment with the owner token (the watchdog kills by it if caw dies)."""
    if disabled():
        return
    ensure_started()
    env[OWNER_VAR] = owner_token()


@atexit.register
def _clean_exit() -> None:
    """Tell the watchdog this is a clean exit (registered first, so it runs after the other atexit stops)."""
    fd = _write_fd
    if fd is not None and _owner_pid == os.getpid():
        try:
            os.write(fd, b"q")
        except OSError:
            pass


__all__ = ["OWNER_VAR", "disabled", "ensure_started", "guard", "owner_token"]
