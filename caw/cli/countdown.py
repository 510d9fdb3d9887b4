"""The terminal countdown shown while caw waits for a usage limit to reset (stderr is a terminal).

One live line on stderr: a bar, the time left, provider and limit kind, the reset time in local time.
It is transient (cleared when the wait ends) and leaves one plain line saying how the wait ended. The
``caw`` command hands it to the policy (``Agent(wait_display=Countdown)``); Python callers on a terminal get
the policy's own one-line countdown (``caw.policy.autowait.TtyCountdown``), which needs no rich.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from caw.policy.autowait import Clock, WaitPlan, describe, stop_line


class Countdown:
    """A ``caw.policy.autowait.WaitDisplay`` drawing a rich progress line (redrawn on every ``tick``)."""

    def __init__(self, *, clock: Clock, tz: tzinfo | None = None, console: Console | None = None) -> None:
        self._clock = clock
        self._tz = tz
        self._console = console or Console(stderr=True)
        self._plan: WaitPlan | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, plan: WaitPlan) -> None:
        self._plan = plan
        # no refresh thread: the policy ticks about once a second, which is all a countdown needs
        self._progress = Progress(
            TextColumn("[bold yellow]caw[/]"),
            BarColumn(bar_width=10),
            TextColumn("{task.description}"),
            console=self._console,
            transient=True,
            auto_refresh=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(describe(plan, self._clock(), self._tz), total=plan.total_seconds or 1.0)
        self._progress.refresh()

    def tick(self, now: datetime) -> None:
        if self._plan is None or self._progress is None or self._task is None:
            return
        elapsed = max(0.0, (now - self._plan.started_at).total_seconds())
        self._progress.update(self._task, completed=elapsed, description=describe(self._plan, now, self._tz))
        self._progress.refresh()

    def stop(self, outcome: Literal["done", "cancelled", "interrupted"]) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._plan is not None:
            line = stop_line(self._plan, outcome)
            if line:
                self._console.print(line, markup=False, highlight=False)
        self._plan = None
