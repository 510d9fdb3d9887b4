"""A tiny stand-in for an agent CLI's interactive UI, for driving caw's terminal bridge like a person would.

Run it (through a wrapper that sets ``FAKE_TUI_NAME``) where caw expects ``claude``/``codex``/``opencode``.
Everything it learns goes to the screen *and* to files in ``FAKE_TUI_DIR`` (so tests can check big
things like a 200 KB prompt without scraping a terminal):

* ``--version``: prints ``fake-tui 1.0 (<name>)`` and exits (after the seconds in ``version-sleep``, if
  that file exists);
* on start: writes ``launched-<name>.json`` (pid, argv), switches the terminal the way real TUIs do
  (raw mode, alternate screen, hidden cursor, bracketed paste), prints ``READY <name>``, ``ARGS n=<count>
  last=<sha256 of the last argument>``, ``START intr=<the ^C key it inherited, hex> sigpipe=<default|ignored>
  own-session=<0|1>`` and ``SIZE <rows>x<cols>``; prints ``SIZE`` again on every SIGWINCH;
* keys: each is echoed as ``KEY <hex>``; a bracketed paste is saved to ``paste-<name>.txt`` and echoed
  as ``PASTE len=<chars> sha=<sha256>``; Enter prints ``ENTER``;
  ``q`` quits cleanly (exit 0), ``x`` crashes (exit 3, terminal modes left on), ``b`` starts a background
  ``sleep`` in a session of its own (pid in ``bg-<name>.pid``), ``e`` prints ``BOOM`` (tests make caw fail
  on it), ``t`` makes it ignore SIGTERM, ``z`` tries to stop itself with SIGTSTP (as UIs do on Ctrl-Z).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

NAME = os.environ.get("FAKE_TUI_NAME", "fake")
DIR = Path(os.environ.get("FAKE_TUI_DIR", "."))
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"


def say(text: str) -> None:
    os.write(1, (text + "\r\n").encode())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def show_size(*_: object) -> None:
    rows, cols = struct.unpack("HHHH", fcntl.ioctl(1, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    say(f"SIZE {rows}x{cols}")


def start_background() -> None:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    (DIR / f"bg-{NAME}.pid").write_text(str(proc.pid))
    say(f"BG {proc.pid}")


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        slow = DIR / "version-sleep"  # seconds a slow CLI takes to answer --version
        if slow.exists():
            time.sleep(float(slow.read_text()))
        print(f"fake-tui 1.0 ({NAME})")
        return 0
    args = sys.argv[1:]
    (DIR / f"launched-{NAME}.json").write_text(json.dumps({"pid": os.getpid(), "argv": args}))
    intr = termios.tcgetattr(0)[6][termios.VINTR]
    # Python ignores SIGPIPE as it starts: the wrapper passes on the mask the CLI was started with
    ignored = int(os.environ.get("FAKE_TUI_SIGIGN", "0").split()[-1], 16)
    sigpipe = "ignored" if ignored >> (signal.SIGPIPE - 1) & 1 else "default"
    # the leader of a session of its own, with this pty as its controlling terminal
    own_session = os.getsid(0) == os.getpid() and os.tcgetpgrp(0) == os.getpgrp()
    tty.setraw(0)
    os.write(1, b"\x1b[?1049h\x1b[?25l\x1b[?2004h")
    last = args[-1].encode("utf-8", "surrogateescape") if args else b""
    say(f"READY {NAME}")
    say(f"ARGS n={len(args)} last={sha(last)}")
    say(f"START intr={intr.hex()} sigpipe={sigpipe} own-session={int(own_session)}")
    signal.signal(signal.SIGWINCH, show_size)
    show_size()
    pending = b""
    pasting: bytearray | None = None
    while True:
        data = os.read(0, 65536)
        if not data:
            return 0
        pending += data
        while pending:
            if pasting is not None:
                end = pending.find(PASTE_END)
                if end == -1:
                    pasting += pending
                    pending = b""
                    break
                pasting += pending[:end]
                pending = pending[end + len(PASTE_END) :]
                (DIR / f"paste-{NAME}.txt").write_bytes(bytes(pasting))
                say(f"PASTE len={len(pasting.decode('utf-8', 'replace'))} sha={sha(bytes(pasting))}")
                pasting = None
                continue
            if pending.startswith(PASTE_START):
                pasting = bytearray()
                pending = pending[len(PASTE_START) :]
                continue
            if PASTE_START.startswith(pending) and len(pending) < len(PASTE_START):
                break  # maybe the start of a paste: wait for the rest
            key, pending = pending[:1], pending[1:]
            if key == b"q":
                os.write(1, b"\x1b[?2004l\x1b[?25h\x1b[?1049l")
                say("BYE")
                return 0
            if key == b"x":
                say("CRASH")
                os._exit(3)
            if key == b"b":
                start_background()
            elif key == b"e":
                say("BOOM")
            elif key == b"z":
                os.kill(os.getpid(), signal.SIGTSTP)  # what a UI does on Ctrl-Z to suspend itself
                say("NOT STOPPED")
            elif key == b"t":
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                say("IGNORING SIGTERM")
            elif key == b"\r":
                say("ENTER")
            else:
                say(f"KEY {key.hex()}")


if __name__ == "__main__":
    sys.exit(main())
