"""The sweep's two walks find the same run: the kernel's child lists (own subtree) and the full /proc scan."""

from __future__ import annotations

import subprocess
import time

import pytest

from caw.transport import reaper


def test_the_subtree_walk_finds_what_the_full_scan_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    if not reaper.enable_subreaper():
        pytest.skip("no PR_SET_CHILD_SUBREAPER here")
    # a child, a grandchild in its group, and one that left in a session of its own
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & setsid sleep 31 & exec sleep 32"])
    try:
        deadline = time.monotonic() + 5
        while len(reaper.find_tree(proc.pid, None)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        walked = reaper.find_tree(proc.pid, None)
        monkeypatch.setattr(reaper, "_children_files", False)
        scanned = reaper.find_tree(proc.pid, None)
        assert len(walked) == 3
        assert sorted(walked) == sorted(scanned)
    finally:
        monkeypatch.setattr(reaper, "_children_files", None)
        reaper.kill_tree(proc.pid, None)
        proc.wait(timeout=5)
    assert reaper.find_tree(proc.pid, None) == {}
