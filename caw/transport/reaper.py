"""Finds and kills every process an agent CLI started, including tools that escaped its session.

The CLIs run their tools in sessions of their own (``setsid``), so killing the CLI's process group leaves
them running, adopted by PID 1. caw uses three things Linux offers:

* a marker: each CLI is started with ``CAW_RUN_ID=<unique id>`` in its environment; every descendant
  inherits it, so ``/proc/*/environ`` finds them even after they were re-parented;
* a ``/proc`` descendant walk by parent pid, taken before anything is killed (catches processes that
  scrubbed their environment);
* ``PR_SET_CHILD_SUBREAPER`` on the caw process, so orphans are re-parented to caw instead of PID 1 and
  stay in the walk; caw reaps the ones it kills so no zombies pile up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass

from caw.transport import watchdog

MARKER_VAR = "CAW_RUN_ID"

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

_subreaper_done = False

try:  # loaded once at import: the pre-exec hook must not take locks or allocate much after fork
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not glibc/musl Linux
    _libc = None


def _prctl(option: int, arg: int) -> bool:
    if _libc is None:
        return False
    try:
        return int(_libc.prctl(option, arg, 0, 0, 0)) == 0
    except (AttributeError, OSError):
        return False


def enable_subreaper() -> bool:
    """Make this process the subreaper of its descendants (once; Linux only; False if unavailable)."""
    global _subreaper_done
    if not _subreaper_done:
        # the watchdog first: detached before caw adopts orphans, so it is never one of caw's descendants
        watchdog.ensure_started()
        _subreaper_done = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    return _subreaper_done


def mark(env: MutableMapping[str, str], run_id: str) -> None:
    """Tag a CLI's environment before it is spawned: its run marker, and the owner token the watchdog kills
    by if caw itself dies without cleaning up (``caw.transport.watchdog``)."""
    env[MARKER_VAR] = run_id
    watchdog.guard(env)


def die_with_parent(parent_pid: int) -> None:
    """In a freshly forked child: ask the kernel to SIGKILL us when the parent dies.

    Runs between fork and exec (``preexec_fn``), so it only uses async-signal-safe calls.
    """
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # the parent may have died between fork and prctl: then we are already orphaned
    if os.getppid() != parent_pid:
        os._exit(1)


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str


def _read_stat(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    end = raw.rfind(b")")
    fields = raw[end + 2 :].split()
    try:
        return ProcInfo(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0].decode())
    except (IndexError, ValueError):
        return None


def _has_marker(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return False
    return env.startswith(needle) or (b"\0" + needle) in env


def _all_pids() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []


def _task_children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (``/proc/PID/task/TID/children``; [] when it is gone)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(n) for n in f.read().split())
        except (OSError, ValueError):
            continue
    return out


_children_files: bool | None = None


def _own_subtree_pids(me: int) -> list[int] | None:
    """This process's descendants, walked down the kernel's child lists; None when the kernel has none."""
    global _children_files
    if _children_files is None:
        _children_files = os.path.exists(f"/proc/{me}/task/{me}/children")
    if not _children_files:
        return None
    seen: set[int] = set()
    stack = _task_children(me)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(_task_children(pid))
    return list(seen)


def find_tree(root_pid: int | None, run_id: str | None) -> dict[int, ProcInfo]:
    """Live processes (not zombies) that descend from ``root_pid`` or carry ``CAW_RUN_ID=run_id``.

    With the subreaper on, every orphan of the run is re-parented to this process, so the run lives inside
    this process's own subtree: the walk reads only that subtree (the kernel's per-thread child lists), and
    the marker is looked for there. Without the subreaper (or the child lists), every process on the machine
    is read and checked: a sweep then costs a ``/proc`` read per process instead of one per descendant.
    """
    me = os.getpid()
    own = _own_subtree_pids(me) if _subreaper_done else None
    table: dict[int, ProcInfo] = {}
    for pid in _all_pids() if own is None else own:
        info = _read_stat(pid)
        if info is not None:
            table[pid] = info
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: dict[int, ProcInfo] = {}
    if root_pid is not None:
        found.update(_subtree(root_pid, table, children, me))
    if run_id:
        needle = f"{MARKER_VAR}={run_id}\0".encode()
        candidates = _subtree(me, table, children, me) if _subreaper_done else table
        for pid, info in candidates.items():
            if pid not in found and pid != me and info.state != "Z" and _has_marker(pid, needle):
                found[pid] = info
    return found


def _subtree(root: int, table: dict[int, ProcInfo], children: dict[int, list[int]], me: int) -> dict[int, ProcInfo]:
    out: dict[int, ProcInfo] = {}
    stack = [root]
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        info = table.get(pid)
        if info is not None and info.state != "Z" and pid != me:
            out[pid] = info
        stack.extend(children.get(pid, ()))
    return out


def _signal_all(procs: Iterable[ProcInfo], sig: int) -> None:
    own_pgid = os.getpgid(0)
    groups: set[int] = set()
    for info in procs:
        try:
            os.kill(info.pid, sig)
        except OSError:
            pass
        # a tool that made its own session leads its own group; its children are in that group too
        if info.pgid == info.pid and info.pgid != own_pgid:
            groups.add(info.pgid)
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass


def _reap(pids: Iterable[int]) -> None:
    """Collect exit statuses of killed processes that are our children (directly or as subreaper)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            pass


def kill_tree(root_pid: int | None, run_id: str | None, *, settle_s: float = 2.0) -> list[int]:
    """SIGKILL every process of the run until none is left (or ``settle_s`` passes). Returns the pids killed."""
    killed: list[int] = []
    deadline = time.monotonic() + settle_s
    pause = 0.005
    while True:
        procs = find_tree(root_pid, run_id)
        if not procs:
            break
        _signal_all(procs.values(), signal.SIGKILL)
        killed.extend(p for p in procs if p not in killed)
        _reap(procs)
        if time.monotonic() > deadline:
            break
        time.sleep(pause)  # let the kernel tear them down before the next scan
        pause = min(pause * 2, 0.1)
    _reap(killed)
    return killed
