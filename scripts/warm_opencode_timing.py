#!/usr/bin/env python3
"""Where a warm opencode session's time goes (docs/dev/warm-sessions.md, "opencode serve").

Drives ``OpencodeWarmClient`` on the real pinned opencode against the loopback fake Chat Completions server:
per session, the server's start (spawn -> "listening on", the event stream, ``POST /session``), then N turns
(``prompt_async`` -> idle), then ``close()`` (SIGTERM, at most the grace, then the tree is killed). Prints the
medians over the sessions, and for comparison one cold ``opencode run`` turn through caw.

    .venv/bin/python scripts/warm_opencode_timing.py            # 5 sessions
    .venv/bin/python scripts/warm_opencode_timing.py --sessions 3 --turns 5
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

from caw.providers import get_provider
from caw.providers.base import RunConfig, TurnRequest
from caw.providers.opencode_warm import OpencodeWarmClient
from tests.e2e.harness_opencode import OpencodeChatFake, big_context_env
from tests.fakes.env import full_env


def one_session(root: Path, env: dict[str, str], turns: int) -> tuple[dict[str, float], list[float]]:
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    provider = get_provider("opencode")
    binary = provider.locate(env)
    assert binary is not None, "the pinned opencode is not installed (scripts/test installs it)"
    client = provider.warm_client(binary, RunConfig(cwd=str(work), model="fake/text"), env)
    assert isinstance(client, OpencodeWarmClient)
    phases: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        client.start(TurnRequest(prompt="x"), timeout=120)
        phases["start"] = time.perf_counter() - t0
        times = []
        for i in range(turns):
            t0 = time.perf_counter()
            client.begin(TurnRequest(prompt=f"turn {i}", resume_key=client.resume_key))
            while not client.turn_done:
                client.poll(0.5)
            times.append(time.perf_counter() - t0)
    finally:
        t0 = time.perf_counter()
        client.close()
        phases["close"] = time.perf_counter() - t0
    return phases, times


def cold_turn(root: Path) -> float:
    import caw

    t0 = time.perf_counter()
    caw.Agent(provider="opencode", model="fake/text", cwd=str(root / "work"), warm=False).completion("cold turn")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--turns", type=int, default=5)
    args = ap.parse_args()
    phases: dict[str, list[float]] = {}
    per_turn: list[list[float]] = [[] for _ in range(args.turns)]
    colds: list[float] = []
    with OpencodeChatFake() as server, tempfile.TemporaryDirectory(prefix="caw-warm-opencode-") as tmp:
        root = Path(tmp)
        env = full_env(big_context_env(server.url, root))
        os.environ.clear()
        os.environ.update(env)
        os.environ["CAW_DATA_DIR"] = str(root / "caw-data")
        one_session(root, env, 1)  # the fresh data home's first start (migration), page cache
        for _ in range(args.sessions):
            p, times = one_session(root, env, args.turns)
            for k, v in p.items():
                phases.setdefault(k, []).append(v)
            for i, t in enumerate(times):
                per_turn[i].append(t)
            colds.append(cold_turn(root))

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:6.0f} ms"

    print(f"opencode serve start (spawn, listening, /event, POST /session): {ms(phases['start'])}")
    for i, values in enumerate(per_turn, start=1):
        print(f"turn {i} (prompt_async -> idle):                             {ms(values)}")
    later = [t for values in per_turn[1:] for t in values]
    if later:
        print(f"turns 2-{args.turns}:                                              {ms(later)}")
    print(f"close (SIGTERM, grace 2 s, tree killed):                      {ms(phases['close'])}")
    print(f"a cold `opencode run` turn through caw:                       {ms(colds)}")


if __name__ == "__main__":
    main()
