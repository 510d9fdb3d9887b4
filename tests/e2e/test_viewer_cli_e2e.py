"""``caw run --html`` as a CI job runs it: the installed ``caw`` script (its fast path), the real claude on
the loopback fake; the report is written after a success and after a usage limit (exit 75)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_subprocess import Job, _job
from tests.fakes.replies import Text, ToolCall, anthropic_rate_limited


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    yield from _job(tmp_path)


@pytest.fixture
def oauth_job(tmp_path: Path) -> Iterator[Job]:
    yield from _job(tmp_path, oauth=True)


def _document(report: Path) -> dict[str, Any]:
    page = report.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="caw-data">(.*?)</script>', page, flags=re.S)
    assert found, "no page document in the report"
    doc: dict[str, Any] = json.loads(found.group(1))
    return doc


def test_run_html_writes_the_report_after_the_run(job: Job) -> None:
    job.server.enqueue(ToolCall("echo from-the-tool"), Text("The tool said from-the-tool."))
    report = job.root / "out" / "caw-report.html"
    r = job.caw("run", "--tools", "reader,exec", "--html", str(report), "Run the tool", script=True)
    assert r.returncode == 0, r.stderr
    doc = _document(report)
    assert doc["header"]["outcome"] == "completed" and doc["header"]["provider"] == "claude"
    [turn] = doc["turns"]
    assert turn["input"]["t"] == "Run the tool"
    [tool] = [b for b in turn["blocks"] if b["k"] == "tool"]
    assert "from-the-tool" in tool["output"]["t"]
    assert "<script " not in report.read_text(encoding="utf-8").split("<body>", 1)[0]  # nothing loads in <head>


def test_run_html_after_a_usage_limit(oauth_job: Job) -> None:
    job = oauth_job
    job.server.enqueue(anthropic_rate_limited(int(time.time()) + 3 * 3600))
    report = job.root / "caw-report.html"
    r = job.caw("run", "limited request", "--no-wait", "--html", str(report), script=True)
    assert r.returncode == 75, r.stderr
    doc = _document(report)
    assert doc["header"]["outcome"] in ("rate_limited", "pending")
    assert doc["turns"][-1]["status"] == "rate_limited" and doc["turns"][-1]["limit"] is not None
