"""The watchdog process itself (run as a script by ``caw.transport.watchdog``; standard library only).

argv: ``FD TOKEN``. It blocks reading FD, the read end of a pipe whose only write end is held by the caw
process. EOF means caw is gone, however it died (SIGKILL and the OOM killer included). It then kills every
process whose environment carries ``CAW_OWNER=TOKEN`` (the CLIs and every tool they started, even in
sessions of their own), scanning until none has been seen for a while, and exits. When caw exits cleanly it
has already stopped everything, so the scan finds nothing and the watchdog just exits.
"""

import os
import signal
import sys
import time

#: scans in a row that must find nothing before the watchdog trusts the tree is gone
_QUIET_SCANS = 5
#: give up after this long (a process that keeps respawning itself is beyond saving)
_MAX_S = 10.0


def _victims(needle: bytes, me: int) -> list[int]:
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


def main() -> int:
    fd, token = int(sys.argv[1]), sys.argv[2]
    while True:
        try:
            if not os.read(fd, 4096):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    needle = b"\0CAW_OWNER=" + token.encode() + b"\0"
    me = os.getpid()
    deadline = time.monotonic() + _MAX_S
    quiet = 0
    while quiet < _QUIET_SCANS and time.monotonic() < deadline:
        found = _victims(needle, me)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        quiet = 0 if found else quiet + 1
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
