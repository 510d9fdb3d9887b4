"""The viewer in a real browser (headless Chromium over the DevTools protocol, tests/browser.py).

A real multi-turn, tool-using run of claude and of codex on its loopback fake (one tool output carries an injected
``<script>``) is saved; ``caw traj html`` writes its report and ``caw view`` serves its data dir. In the browser:
every turn and tool call is in the DOM, a fold opens on a real click and "show all" loads the whole output, the
injected script never runs, and no request leaves the page. The ``caw view`` page follows the session while
another turn runs. A 10,000-tool-call, 50 MB trajectory becomes interactive within a bound (the figure is
printed and kept in the artifacts). Screenshots go to ``tests/artifacts/viewer/`` (``CAW_TEST_ARTIFACTS``
moves them; docs/viewer.md's images are these).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import caw
from caw.agent import AgentSpec
from caw.cli import app
from caw.viewer.html import write_report
from caw.viewer.server import ViewerServer
from tests.browser import Chromium, Page
from tests.e2e.harness import LiveFactory, live_factory, processes_matching, start_multi, wait_until
from tests.fakes.env import CODEX_MODEL
from tests.fakes.replies import Text, ToolCall
from tests.viewer_samples import PWNED, big_trajectory

ARTIFACTS = Path(os.environ.get("CAW_TEST_ARTIFACTS") or Path(__file__).parents[1] / "artifacts") / "viewer"
INJECTED = "<script>window.__caw_pwned=1</script><img src=x onerror=window.__caw_pwned=2>"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    with Chromium.launch(tmp_path_factory.mktemp("chromium")) as chromium:
        yield chromium
    # no orphans: not the browser, not one of its renderer / GPU / utility processes
    wait_until(lambda: not processes_matching(str(chromium.profile)), 10, "chromium's processes to exit")


@pytest.fixture
def page(browser: Chromium) -> Iterator[Page]:
    tab = browser.page()
    try:
        yield tab
    finally:
        tab.navigate("about:blank")  # a live page polls: stop it before the next test watches requests
        tab.close()


@pytest.fixture(params=["claude", "codex"])  # opencode's 5 s cold starts would triple the time
def live(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    yield from live_factory(request.param, tmp_path, monkeypatch)


def _shot(page: Page, name: str) -> None:
    path = page.screenshot(ARTIFACTS / f"{name}.png")
    print(f"screenshot: {path}")


def _no_request_left(page: Page, allowed: str) -> None:
    urls = page.requests
    assert urls, "the Network domain saw no request at all"
    assert all(u.startswith(allowed) for u in urls), urls


def _inert(page: Page) -> None:
    assert page.evaluate(f"typeof {PWNED}") == "undefined"
    assert page.evaluate("document.querySelectorAll('#app script, #app img').length") == 0


def test_report_and_caw_view_of_a_real_run(live: LiveFactory, page: Page, tmp_path: Path) -> None:
    run = live()
    run.server.enqueue(ToolCall(f"printf '%s' '{INJECTED}'"), Text("The file holds markup."))
    run.server.enqueue(ToolCall("seq 1 400"), Text("Counted to 400."))
    data_dir = run.root / "caw-data"
    session = run.agent(data_dir=str(data_dir)).start_session()
    session.send("Show me notes.html")
    session.send("Count to 400")
    session.end()
    session_dir = data_dir / "sessions" / session.trajectory.session_id
    uses = [u for t in session.trajectory.turns for u in t.tool_uses]
    assert len(uses) == 2 and "<script>" in (uses[0].output or "")

    report = tmp_path / "report.html"
    r = CliRunner().invoke(app, ["traj", "html", str(session_dir), "-o", str(report)])
    assert r.exit_code == 0, r.stderr
    page.navigate(report.as_uri())
    page.wait_for("document.body.dataset.ready === '1'")
    assert page.evaluate("document.querySelectorAll('#app section.turn').length") == 2
    assert page.evaluate("document.querySelectorAll('#app details.tool').length") == 2
    assert page.evaluate("document.querySelectorAll('#app details[open]').length") == 0  # folded by default
    assert page.evaluate("document.querySelector('h1 .badge').textContent") == "completed"
    _shot(page, f"report-{run.harness.name}")

    page.click("#app details.tool > summary")  # a real mouse click on the first tool call
    page.wait_for("!!document.querySelector('#app details.tool[open] .body')")
    assert INJECTED in page.evaluate("document.querySelector('#app details.tool pre.out').textContent")
    page.click("#app section.turn:nth-of-type(2) details.tool > summary")
    page.wait_for("!!document.querySelector('#app section.turn:nth-of-type(2) .showall')")
    assert "\n401" not in page.evaluate("document.querySelectorAll('#app pre.out')[1].textContent")
    page.click("#app section.turn:nth-of-type(2) .showall")
    page.wait_for("document.querySelectorAll('#app pre.out')[1].textContent.trim().endsWith('400')")
    _inert(page)
    page.evaluate("scrollTo(0, document.querySelector('#app details.tool').getBoundingClientRect().top + scrollY - 60)")
    _shot(page, f"report-open-{run.harness.name}")  # the injected markup, shown as text
    _no_request_left(page, "file://")

    with ViewerServer(data_dir) as server:
        page.navigate(server.url)
        page.wait_for("document.body.dataset.ready === '1'")
        rows = page.evaluate("Array.from(document.querySelectorAll('#sessions tr')).map(r => r.dataset.session)")
        assert rows == [session.trajectory.session_id]
        cost = session.trajectory.usage.cost_usd  # codex reports none: unknown is "–", never $0
        shown = page.evaluate("document.querySelector('#sessions td.num:nth-child(7)').textContent")
        assert shown == ("–" if cost is None else f"${cost:.4f}")
        _shot(page, f"view-list-{run.harness.name}")
        rows_js = "document.querySelectorAll('#sessions tr').length"
        for control, value, expected in (
            ("#f-text", "no-such-prompt", 0),
            ("#f-text", "notes.HTML", 1),
            ("#f-outcome", "completed", 1),
            ("#f-provider", run.harness.name, 1),
        ):
            page.evaluate(
                f"(() => {{ const e = document.querySelector('{control}'); e.value = '{value}';"
                " e.dispatchEvent(new Event(e.tagName === 'SELECT' ? 'change' : 'input')); })()"
            )
            assert page.evaluate(rows_js) == expected, (control, value)
        page.evaluate("document.querySelector('#sessions a').click()")
        page.wait_for("location.pathname.startsWith('/session/') && document.body.dataset.ready === '1'")
        assert page.evaluate("document.querySelectorAll('#app section.turn').length") == 2
        page.click("#app details.tool > summary")
        page.wait_for("!!document.querySelector('#app details.tool[open] .body')")
        _inert(page)

        # live: a third turn while the page is open shows up without a reload; the open fold stays open and
        # the reader's scroll position stays where it was
        page.evaluate("window.scrollTo(0, 200)")
        scrolled = page.evaluate("window.scrollY")
        resumed = run.agent(data_dir=str(data_dir)).resume_session(session.trajectory.session_id)
        run.server.enqueue(Text("Third answer."))
        resumed.send("And a third turn")
        resumed.end()
        page.wait_for("document.querySelectorAll('#app section.turn').length === 3", timeout=20)
        assert page.evaluate("document.querySelectorAll('#app details.tool[open]').length") == 1
        assert scrolled > 0 and page.evaluate("window.scrollY") == scrolled
        _shot(page, f"view-session-{run.harness.name}")
        _no_request_left(page, server.url.rstrip("/"))
    assert run.server.non_loopback_attempts() == []


def test_a_real_subagent_is_nested_under_its_tool_call(
    page: Page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claude hands a task to a codex subagent (issue 15): the report shows the subagent's own trajectory inside
    the tool call that ran it, and so does caw traj show."""
    multi = start_multi(["claude", "codex"], tmp_path, monkeypatch)
    try:
        multi.servers["claude"].enqueue(
            ToolCall("", tool="helper", input={"task": "say the codeword"}), Text("parent done")
        )
        multi.servers["codex"].enqueue(Text("codeword-4242"))
        spec = AgentSpec(name="helper", description="A codex helper.", provider=["codex"], model=CODEX_MODEL)
        agent = caw.Agent(provider="claude", cwd=str(multi.work), data_dir=tmp_path / "data", timeout=120)
        agent.add_subagent(spec)
        session = agent.start_session()
        session.send("delegate")
        session.end()
    finally:
        for server in multi.servers.values():
            server.stop()
    assert session.session_dir is not None
    report = tmp_path / "sub.html"
    r = CliRunner().invoke(app, ["traj", "html", str(session.session_dir), "-o", str(report)])
    assert r.exit_code == 0, r.stderr
    page.navigate(report.as_uri())
    page.wait_for("document.body.dataset.ready === '1'")
    nested = "#app details.tool[open] .subagent"
    page.wait_for(f"!!document.querySelector('{nested} section.turn')")
    assert page.evaluate(f"document.querySelector('{nested} h1').textContent").startswith("subagent ")
    assert "codex" in page.evaluate(f"document.querySelector('{nested} .facts').textContent")
    assert "codeword-4242" in page.evaluate(f"document.querySelector('{nested} section.turn').textContent")
    page.evaluate(f"document.querySelector('{nested}').scrollIntoView()")
    _shot(page, "report-subagent")
    _no_request_left(page, "file://")
    shown = CliRunner().invoke(app, ["traj", "show", str(session.session_dir)])
    assert shown.exit_code == 0 and "subagent " in shown.stdout and "codeword-4242" in shown.stdout


def test_ten_thousand_tool_calls_become_interactive_quickly(page: Page, tmp_path: Path) -> None:
    """10,000 tool calls with 5,000-character outputs (50 MB): the page is ready, and a fold answers a click,
    within a generous bound; the measured figures are printed and saved."""
    report = tmp_path / "big.html"
    started = time.monotonic()
    size = write_report(big_trajectory(), report)
    written = time.monotonic() - started
    started = time.monotonic()
    page.navigate(report.as_uri(), timeout=120)
    page.wait_for("document.body.dataset.ready === '1'", timeout=60)
    ready_ms = page.evaluate("window.cawReady")
    loaded = time.monotonic() - started
    clicked = time.monotonic()
    page.click("#app section.turn:nth-of-type(25) details.tool > summary")
    # interactive: from the navigation's start (the page's own clock) to a clicked fold showing its body
    interactive_ms = page.wait_for(
        "document.querySelector('#app section.turn:nth-of-type(25) details.tool[open] .body') && performance.now()"
    )
    click_ms = (time.monotonic() - clicked) * 1000
    parsed_ms = page.evaluate("performance.getEntriesByType('navigation')[0].domInteractive")
    assert page.evaluate("document.querySelectorAll('#app details.tool').length") == 10_000
    page.click("#app section.turn:nth-of-type(25) details.tool[open] .showall")
    page.wait_for("document.querySelector('#app details.tool[open] pre.out').textContent.length > 5000")
    figures = {
        "html_bytes": size,
        "write_s": round(written, 2),
        "navigate_to_ready_s": round(loaded, 2),
        "script_ready_ms": round(ready_ms),
        "dom_interactive_ms": round(parsed_ms),
        "clicked_fold_open_ms": round(interactive_ms),
        "fold_click_ms": round(click_ms),
    }
    print(f"10k tool calls: {figures}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "big-figures.json").write_text(json.dumps(figures, indent=1))
    _shot(page, "big")
    assert size > 50_000_000
    assert loaded < 20 and interactive_ms < 10_000 and click_ms < 3_000, figures
    _no_request_left(page, "file://")


def test_a_giant_output_is_shown_a_slice_at_a_time(page: Page, tmp_path: Path) -> None:
    """One 5 MB tool output: folded to a preview, "show all" shows 2,000,000 characters, "show more" the rest."""
    giant = "".join(f"line {i:07d} {'y' * 60}\n" for i in range(70_000))  # 5,180,000 characters
    traj = caw.Trajectory(
        agent="claude",
        session_id="giant",
        turns=[
            caw.Turn(
                input="cat it",
                status="completed",
                output=[caw.ToolUse(id="g", name="Bash", arguments={"command": "cat big.log"}, output=giant)],
            )
        ],
    )
    report = tmp_path / "giant.html"
    caw.write_report(traj, report)
    page.navigate(report.as_uri())
    page.wait_for("document.body.dataset.ready === '1'")
    page.click("#app details.tool > summary")
    out = "document.querySelector('#app details.tool pre.out').textContent"
    page.wait_for("!!document.querySelector('#app details.tool .showall')")
    assert page.evaluate(f"{out}.length") < 3_000
    page.click("#app details.tool .showall")
    page.wait_for(f"{out}.length === 2000000")
    for _ in range(2):
        page.click("#app details.tool .showall")
    page.wait_for(f"{out}.length === {len(giant)}")
    assert page.evaluate(f"{out}.endsWith('line 0069999 ' + 'y'.repeat(60) + '\\n')")
    assert page.evaluate("document.querySelectorAll('#app details.tool .showall').length") == 0
    _no_request_left(page, "file://")
