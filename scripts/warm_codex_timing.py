#!/usr/bin/env python3
"""Where a warm codex session's time goes (docs/dev/warm-sessions.md, "codex app-server").

Drives ``CodexWarmClient`` on the real pinned codex against the loopback fake Responses server: per session,
the app-server's start (spawn + ``initialize`` + ``thread/start``), then five turns (``turn/start`` to
``turn/completed``). Prints the medians over N sessions.

    .venv/bin/python scripts/warm_codex_timing.py            # 9 sessions
    .venv/bin/python scripts/warm_codex_timing.py --sessions 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest
from tests.fakes.env import CODEX_MODEL, codex_env, full_env
from tests.fakes.openai_responses import ResponsesFake


def one_session(root: Path, url: str, turns: int) -> tuple[float, list[float]]:
    # one CODEX_HOME for all sessions, as a user has one ~/.codex (the first start in a fresh home costs more)
    env = full_env(codex_env(url, root))
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    provider = get_provider("codex")
    binary = provider.locate(env)
    assert binary is not None, "the pinned codex is not installed (scripts/test installs it)"
    client = provider.warm_client(binary, RunConfig(cwd=str(work), model=CODEX_MODEL), env)
    assert client is not None
    try:
        t0 = time.perf_counter()
        client.start(TurnRequest(prompt="x"), timeout=60)
        start = time.perf_counter() - t0
        times = []
        for i in range(turns):
            t0 = time.perf_counter()
            client.begin(TurnRequest(prompt=f"turn {i}"))
            while not client.turn_done:
                client.poll(0.5)
            times.append(time.perf_counter() - t0)
        return start, times
    finally:
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=9)
    ap.add_argument("--turns", type=int, default=5)
    args = ap.parse_args()
    starts: list[float] = []
    per_turn: list[list[float]] = [[] for _ in range(args.turns)]
    with ResponsesFake() as server, tempfile.TemporaryDirectory(prefix="caw-warm-codex-") as tmp:
        one_session(Path(tmp), server.url, 1)  # page cache, bytecode, the fresh CODEX_HOME's first start
        for _ in range(args.sessions):
            start, times = one_session(Path(tmp), server.url, args.turns)
            starts.append(start)
            for i, t in enumerate(times):
                per_turn[i].append(t)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:6.0f} ms"

    print(f"codex app-server start (spawn, initialize, thread/start): {ms(starts)}")
    for i, values in enumerate(per_turn, start=1):
        print(f"turn {i} (turn/start -> turn/completed):               {ms(values)}")
    later = [t for values in per_turn[1:] for t in values]
    if later:
        print(f"turns 2-{args.turns}:                                        {ms(later)}")


if __name__ == "__main__":
    main()
