#!/usr/bin/env python3
"""How fast a crossed budget stops the turn, on the real CLIs against the loopback fakes (issue 16).

For each CLI: a tool prints ~12 000 characters (~3000 tokens by caw's estimate), then the model would take
60 s; ``max_tokens=2000``. Reported per CLI (median of ``--runs``): the time from the event that crossed the
budget to the process tree being gone (``TurnControl.cancel``), and from the crossing to ``BudgetExceeded``
reaching the caller. Offline: only 127.0.0.1 and fake keys.

    .venv/bin/python scripts/measure_budget_stop.py [--runs 3] [--providers claude,codex,opencode]
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
from caw.session import turn as turn_module
from tests.e2e.harness import load_harnesses
from tests.fakes.env import full_env
from tests.fakes.replies import Hang, ToolCall


def one_run(name: str, root: Path) -> tuple[float, float]:
    harness = load_harnesses()[name]
    server = harness.fake()
    server.start()
    saved = dict(os.environ)
    cancels: list[tuple[float, float]] = []
    original = turn_module.TurnControl.cancel

    def timed_cancel(self: turn_module.TurnControl, *, now: bool = False) -> None:
        began = time.monotonic()
        original(self, now=now)
        cancels.append((began, time.monotonic()))

    try:
        work = root / "work"
        work.mkdir(parents=True)
        os.environ.clear()
        os.environ.update(full_env(harness.env(server.url, root)))
        server.enqueue(ToolCall(f"{sys.executable} -c \"print('x' * 12000)\""), Hang(60))
        agent = caw.Agent(
            provider=name, cwd=str(work), max_tokens=2000, tools=caw.ToolGroup.EXEC, **harness.agent_kwargs
        )
        turn_module.TurnControl.cancel = timed_cancel  # type: ignore[method-assign]
        try:
            agent.completion("Run the command")
        except caw.BudgetExceeded:
            raised = time.monotonic()
        else:
            raise SystemExit(f"{name}: the budget was not crossed")
    finally:
        turn_module.TurnControl.cancel = original  # type: ignore[method-assign]
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
    began, gone = cancels[0]
    return gone - began, raised - began


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--providers", default="claude,codex,opencode")
    args = ap.parse_args()
    print(f"provider   crossing -> tree gone   crossing -> BudgetExceeded   (median of {args.runs})")
    for name in args.providers.split(","):
        gone, raised = [], []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"caw-budget-{name}-") as tmp:
                g, r = one_run(name, Path(tmp) / f"run{i}")
            gone.append(g)
            raised.append(r)
        print(f"{name:10} {statistics.median(gone) * 1000:8.0f} ms {statistics.median(raised) * 1000:22.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
