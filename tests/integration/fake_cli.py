"""A scriptable stand-in for an agent CLI, for lifecycle tests on a real pty.

It speaks claude's stream-json. The script comes from the JSON file named by FAKE_CLI_SCRIPT: a list of
actions run in order:

    {"json": {...}}                 print one JSON line
    {"raw": "text"}                 write text as is (no newline added)
    {"raw_b64": "..."}              write raw bytes (e.g. invalid UTF-8)
    {"text_event": N}               an assistant text event whose text is N 'x' characters
    {"stderr_bytes": N}             write N bytes to stderr
    {"sleep": seconds}
    {"orphan": "sleep 300.5"}       start a command in a session of its own (like the real CLIs' tools)
    {"echo_stdin": true}            an assistant text event reporting len and sha256 of stdin
    {"tty_report": true}            an assistant text event saying which of stdin/stdout/stderr are TTYs
    {"cwd_report": true}            an assistant text event with the working directory and $PWD
    {"exit": code}
    {"pidfile": path}               write this process's pid to path
    {"ignore_sigint": true}         ignore SIGINT from now on (caw's stop grace then runs its full length)
    {"replace_with_file": path}     delete the directory at path and put a file there (breaks caw's store)
Default script: init, one text, result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

SESSION = "11111111-2222-3333-4444-555555555555"


def out(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def init() -> dict:
    return {
        "type": "system",
        "subtype": "init",
        "session_id": SESSION,
        "model": "fake-model",
        "claude_code_version": "0.0-fake",
    }


def text(t: str, mid: str = "msg_1") -> dict:
    return {
        "type": "assistant",
        "message": {"id": mid, "role": "assistant", "content": [{"type": "text", "text": t}]},
        "session_id": SESSION,
    }


def result(t: str = "done") -> dict:
    return {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": t,
        "session_id": SESSION,
        "total_cost_usd": 0.001,
        "usage": {"input_tokens": 10, "output_tokens": 2},
    }


def main() -> int:
    stdin_data = sys.stdin.buffer.read()  # like the real CLIs: read the prompt to EOF first
    path = os.environ.get("FAKE_CLI_SCRIPT")
    if path:
        with open(path) as f:
            script = json.load(f)
    else:
        script = [{"json": init()}, {"json": text("hello")}, {"json": result("hello")}]
    for step in script:
        if "json" in step:
            out(step["json"])
        elif "raw" in step:
            sys.stdout.write(step["raw"])
            sys.stdout.flush()
        elif "raw_b64" in step:
            sys.stdout.buffer.write(base64.b64decode(step["raw_b64"]))
            sys.stdout.flush()
        elif "text_event" in step:
            out(text("x" * int(step["text_event"]), mid="msg_big"))
        elif "stderr_bytes" in step:
            sys.stderr.buffer.write(b"e" * int(step["stderr_bytes"]))
            sys.stderr.flush()
        elif "sleep" in step:
            time.sleep(float(step["sleep"]))
        elif "orphan" in step:
            subprocess.Popen(
                step["orphan"],
                shell=True,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        elif "echo_stdin" in step:
            digest = hashlib.sha256(stdin_data).hexdigest()
            out(text(f"stdin len={len(stdin_data)} sha256={digest}"))
        elif "tty_report" in step:
            out(text(f"stdin_tty={os.isatty(0)} stdout_tty={os.isatty(1)} stderr_tty={os.isatty(2)}"))
        elif "cwd_report" in step:
            out(text(f"cwd={os.getcwd()} PWD={os.environ.get('PWD')}"))
        elif "ignore_sigint" in step:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        elif "pidfile" in step:
            with open(step["pidfile"], "w") as f:
                f.write(str(os.getpid()))
        elif "replace_with_file" in step:
            shutil.rmtree(step["replace_with_file"], ignore_errors=True)
            with open(step["replace_with_file"], "w") as f:
                f.write("not a directory any more\n")
        elif "exit" in step:
            return int(step["exit"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
