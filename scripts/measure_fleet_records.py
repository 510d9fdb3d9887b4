"""Per-turn cost of writing a session's shared record, and record sizes, on the real CLIs (issue 19).

    .venv/bin/python -m pytest scripts/measure_fleet_records.py -q -s

Three turns per provider against the loopback fakes, with a real redis-server on a random port; prints
the milliseconds ``SharedSessionStore._share`` took per save (capture + redact + pack + SET) and the
sizes of the CLI's record and of the blob in Redis. Not part of the suite (it asserts nothing).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from caw.state import shared
from caw.state.record import unpack
from tests.e2e.harness import live_factory, load_harnesses
from tests.redis_server import RedisServer

load_harnesses()


@pytest.mark.parametrize("name", ["claude", "codex", "opencode"])
def test_measure(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    timings: list[float] = []
    original = shared.SharedSessionStore._share

    def timed(self: shared.SharedSessionStore, traj: object, redact: object) -> None:
        started = time.perf_counter()
        original(self, traj, redact)  # type: ignore[arg-type]
        timings.append(time.perf_counter() - started)

    monkeypatch.setattr(shared.SharedSessionStore, "_share", timed)
    with RedisServer() as server:
        for factory in live_factory(name, tmp_path, monkeypatch):
            run = factory()
            session = run.agent(auto_wait=False, state_url=server.url).start_session()
            for i in range(3):
                session.send(f"turn {i}")
            session.end()
            client = server.client()
            blob = client.get(client.keys("caw:session:*")[0])
            record = unpack(blob, source="redis")
            raw = sum(len(f.data) for f in record.files)
            per_turn = [round(t * 1000, 1) for t in timings]
            print(f"\n{name}: ms per save {per_turn}; CLI record {raw} B; blob {len(blob)} B")
