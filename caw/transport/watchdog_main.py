"""The watchdog process itself: run by ``caw.transport.watchdog`` as ``python -I -S -c <this source> FD``.

Standard library only. It reads the pipe on fd FD, whose only write end the parent holds. The first line is
``NAME=TOKEN``, the environment entry every process to guard carries. Then it blocks. A ``q`` means the
parent exits cleanly (it has stopped everything itself): exit at once. EOF without it means the parent is
gone however it died (SIGKILL, the OOM killer): kill every process whose environment carries the entry,
rescan until none has been seen for a few scans in a row, and exit.
"""

import os
import signal
import sys
import time

#: scans in a row that must find nothing before the tree is taken to be gone
QUIET_SCANS = 5
#: give up after this long (a process that keeps respawning itself is beyond saving)
MAX_S = 10.0


def victims(needle: bytes, me: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = b"\0" + f.read() + b"\0"
        except OSError:
            continue
        if needle in env:
            out.append(int(entry))
    return out


def sweep(needle: bytes) -> None:
    me = os.getpid()
    deadline = time.monotonic() + MAX_S
    quiet = 0
    while quiet < QUIET_SCANS and time.monotonic() < deadline:
        found = victims(needle, me)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        quiet = 0 if found else quiet + 1
        time.sleep(0.05)


def main() -> None:
    fd = int(sys.argv[1])
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        data += chunk
        if b"\n" in data and b"q" in data.split(b"\n", 1)[1]:
            return  # a clean exit: the parent stopped everything itself
    entry = data.split(b"\n", 1)[0]
    if b"=" in entry:
        sweep(b"\0" + entry + b"\0")


main()
