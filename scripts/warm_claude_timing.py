#!/usr/bin/env python3
"""Where a warm claude session's time goes (docs/dev/warm-sessions.md, "claude").

Runs ``Agent(warm=True)`` sessions on the real pinned claude against the loopback fake Anthropic server:
per session, the ``initialize`` handshake (``ClaudeWarmClient.start``), then each of five sends, then
``end()``. Prints the medians over N sessions.

    .venv/bin/python scripts/warm_claude_timing.py            # 7 sessions
    .venv/bin/python scripts/warm_claude_timing.py --sessions 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import caw
from caw.providers.claude_warm import ClaudeWarmClient
from tests.fakes.anthropic import AnthropicFake
from tests.fakes.env import claude_env, full_env
from tests.fakes.replies import Text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=7)
    ap.add_argument("--turns", type=int, default=5)
    args = ap.parse_args()
    handshakes: list[float] = []
    starts: list[float] = []
    firsts: list[float] = []
    later: list[float] = []
    ends: list[float] = []
    original = ClaudeWarmClient.start

    def timed_start(self: ClaudeWarmClient, *a: object, **kw: object) -> None:
        t0 = time.perf_counter()
        original(self, *a, **kw)  # type: ignore[arg-type]
        handshakes.append(time.perf_counter() - t0)

    ClaudeWarmClient.start = timed_start  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="caw-warm-claude-") as tmp, AnthropicFake() as server:
        root = Path(tmp)
        (root / "work").mkdir()
        os.environ.clear()
        os.environ.update(full_env(claude_env(server.url, root)))
        agent = caw.Agent(provider="claude", cwd=str(root / "work"), warm=True, auto_wait=False)
        for n in range(args.sessions + 1):  # the first session warms the page cache: not counted
            t0 = time.perf_counter()
            session = agent.start_session()
            lat = []
            for i in range(args.turns):
                server.enqueue(Text(f"reply {i}"))
                t1 = time.perf_counter()
                session.send(f"message {i}")
                lat.append(time.perf_counter() - t1)
            t2 = time.perf_counter()
            session.end()
            if n == 0:
                handshakes.clear()
                continue
            ends.append(time.perf_counter() - t2)
            starts.append(t2 - t0)
            firsts.append(lat[0])
            later.extend(lat[1:])

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.0f} ms"

    print(f"claude warm start (spawn, initialize answered):   {ms(handshakes)}")
    print(f"turn 1 (start included, user line -> result):     {ms(firsts)}")
    print(f"turns 2-{args.turns}:                                       {ms(later)}")
    print(f"end() (stdin closed, SIGTERM, tree killed):       {ms(ends)}")
    print(f"a whole {args.turns}-turn session without end():            {ms(starts)}")


if __name__ == "__main__":
    main()
