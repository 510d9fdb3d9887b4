"""``caw batch TASKS.jsonl``: one JSON task per line in, one JSON result per line out (``caw.batch``, issue 20).

On a terminal stderr shows a live progress line (rich: done / running / waiting for a limit / failed, ETA, cost
so far); elsewhere (CI, a pipe) it prints plain log lines: one per finished task, one per notice. The exit code
is 0 when every task succeeded, else the ``caw`` code of the worst failure class (``WORST_FIRST``; docs/cli.md),
130 when interrupted. A summary goes to stderr and, under GitHub Actions, to the step summary.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated, Any, Optional

import typer

from caw.cli.args import RunArgs, _isatty
from caw.cli.exit_codes import ExitCode, UsageProblem, failure_for
from caw.cli.runner import CliContext, make_agent

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from caw.batches import Batch, BatchProgress, BatchResult

#: the order in which failure classes decide the exit code: the first one any task hit wins (docs/cli.md).
#: A usage error or a login problem needs a person; a limit or a timeout only needs a later run.
WORST_FIRST = (
    ExitCode.INTERRUPTED,
    ExitCode.USAGE,
    ExitCode.AUTH,
    ExitCode.NO_PROVIDER,
    ExitCode.TURN_FAILED,
    ExitCode.TIMEOUT,
    ExitCode.RATE_LIMITED,
)


def worst_exit_code(codes: Iterable[int]) -> int:
    """0 for no failures, else the code of the worst class present (``WORST_FIRST``; unknown codes count as 1).

    >>> worst_exit_code([75, 1, 75])
    1
    >>> worst_exit_code([])
    0
    """
    present = {c if c in WORST_FIRST else int(ExitCode.TURN_FAILED) for c in codes if c != 0}
    return next((int(c) for c in WORST_FIRST if int(c) in present), 0)


def describe(exc: BaseException) -> tuple[int, str]:
    """A task's error as ``caw`` would exit on it: (code, class name), for the ``exit_code``/``exit_class`` fields."""
    code = failure_for(exc).code
    return int(code), code.name.lower()


# ---- reading tasks -----------------------------------------------------------------------------------------
def read_tasks(path: Path) -> list[Any]:
    """The tasks of a JSONL file (``-``: stdin): each line a JSON object or a JSON string; blank lines skipped."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"cannot read {path}: {exc}", "pass a readable JSONL file of tasks") from None
    tasks: list[Any] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise UsageProblem(
                f"{path} line {number} is not JSON ({exc})", 'write one task per line: {"id": "a", "prompt": "..."}'
            ) from None
        tasks.append(item)
    if not tasks:
        raise UsageProblem(f"{path} holds no tasks", 'write one task per line: {"id": "a", "prompt": "..."}')
    return tasks


# ---- what is shown -----------------------------------------------------------------------------------------
def _clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _cost_text(p: BatchProgress) -> str:
    """The cost so far; ``+`` when some finished task's cost is unknown (a CLI that reports none)."""
    if not p.cost_known and p.cost_usd == 0:
        return "cost unknown"
    return f"${p.cost_usd:.4f}" + ("" if p.cost_known else "+")


def _utc_text(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%H:%M:%SZ")


def progress_text(p: BatchProgress, now: float) -> str:
    """One line: counts, cost so far, ETA. ``now`` is ``time.monotonic()`` (injected in tests)."""
    parts = [f"{p.done + p.skipped}/{p.total} done"]
    if p.skipped:
        parts[0] += f" ({p.skipped} earlier)"
    parts.append(f"{len(p.running)} running")
    if p.waiting:
        parts.append(f"{len(p.waiting)} waiting for a limit")
    parts.append(f"{p.failed} failed")
    parts.append(_cost_text(p))
    parts.append(f"ETA {_clock_text(p.eta_seconds(now))}")
    return " · ".join(parts)


def result_line(r: BatchResult, p: BatchProgress) -> str:
    """The plain line for one finished task."""
    n = p.skipped + p.finished
    head = f"[{n}/{p.total}] {r.status} {r.id}"
    if r.ok:
        cost = f", ${r.cost_usd:.4f}" if r.cost_usd is not None else ""
        return f"{head} — {r.provider}, {r.duration_s:.1f}s{cost}"
    assert r.error is not None
    code = f" (exit {r.error.exit_code})" if r.error.exit_code is not None else ""
    message = " ".join(r.error.message.split())
    if len(message) > 200:
        message = message[:199] + "…"
    return f"{head} — {r.error.type}: {message}{code}"


class PlainLog:
    """Not a terminal: one ``caw batch:`` line per event, nothing redrawn."""

    def __init__(self, out: IO[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock

    def line(self, text: str) -> None:
        self.out.write(f"caw batch: {text}\n")
        self.out.flush()

    def result(self, r: BatchResult, p: BatchProgress) -> None:
        self.line(result_line(r, p))

    def tick(self, p: BatchProgress) -> None:
        pass

    def stop(self) -> None:
        pass


class LiveProgress:
    """A terminal: finished tasks print above a live progress block (rich, redrawn about once a second)."""

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.monotonic) -> None:
        from rich.live import Live

        self.console = console
        self.clock = clock
        self._live = Live(console=console, transient=True, auto_refresh=False, redirect_stdout=False)
        self._started = False

    def renderable(self, p: BatchProgress) -> RenderableType:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            Text("caw batch", style="bold"),
            ProgressBar(total=max(1, p.total), completed=p.skipped + p.finished, width=20),
            Text(progress_text(p, self.clock())),
        )
        for key, provider in sorted(p.running.items())[:8]:
            grid.add_row(Text(""), Text("▶ running", style="cyan"), Text(f"{key} on {provider}"))
        for key, until in sorted(p.waiting.items())[:8]:
            grid.add_row(Text(""), Text("⏸ waiting", style="yellow"), Text(f"{key} until {_utc_text(until)}"))
        for name, until in sorted(p.limited.items()):
            grid.add_row(Text(""), Text("⚠ limited", style="yellow"), Text(f"{name} until {_utc_text(until)}"))
        return grid

    def line(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(f"caw batch: {text}"))

    def result(self, r: BatchResult, p: BatchProgress) -> None:
        from rich.text import Text

        self.console.print(Text(result_line(r, p), style="green" if r.ok else "red"))
        self.tick(p)

    def tick(self, p: BatchProgress) -> None:
        if not self._started:
            self._live.start()
            self._started = True
        self._live.update(self.renderable(p), refresh=True)

    def stop(self) -> None:
        if self._started:
            self._live.stop()
            self._started = False


def summary_line(p: BatchProgress, code: int, elapsed: float) -> str:
    what = f"{p.done + p.skipped} of {p.total} succeeded"
    if p.skipped:
        what += f" ({p.skipped} in an earlier run)"
    if p.failed:
        what += f", {p.failed} failed"
    left = p.total - p.skipped - p.finished
    if left:
        what += f", {left} not run"
    return f"{what}; {_cost_text(p)} in {elapsed:.1f}s; exit {code}"


def step_summary(p: BatchProgress, code: int, failed: list[BatchResult], resume: str | None) -> str:
    """The markdown appended to ``GITHUB_STEP_SUMMARY``."""
    from caw.cli.ci import _md

    ok = code == 0
    head = f"### caw batch: {p.done + p.skipped}/{p.total} succeeded " + ("✅" if ok else f"❌ (exit {code})")
    rows = [
        "| | |",
        "|---|---|",
        f"| Done | {p.done + p.skipped} ({p.skipped} earlier) |",
        f"| Failed | {p.failed} |",
        f"| Cost | {_md(_cost_text(p))} |",
    ]
    if resume:
        rows.append(f"| Resume | `{_md(resume)}` |")
    out = [head, "", *rows]
    if failed:
        out += ["", "| task | provider | error | exit |", "|---|---|---|---|"]
        for r in failed[:50]:
            err = r.error
            text = f"{err.type}: {err.message}" if err else "failed"
            exit_code = err.exit_code if err and err.exit_code is not None else ""
            out.append(f"| {_md(r.id)} | {_md(r.provider or '')} | {_md(text[:300])} | {exit_code} |")
    return "\n".join(out) + "\n\n"


# ---- the command -------------------------------------------------------------------------------------------
class _Signals:
    """SIGINT / SIGTERM: the first cancels the batch (running turns stopped, finished ones kept), a second
    hurries the CLIs' stop. The cancel runs on a thread: it waits for the CLIs while results still arrive."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        hurry = self.received is not None
        self.received = self.received or signum
        threading.Thread(target=lambda: self.batch.cancel(now=hurry), name="caw-batch-cancel", daemon=True).start()

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_batch(
    tasks_file: Path,
    args: RunArgs,
    *,
    concurrency: int,
    out: Path | None,
    retry_failed: bool,
    context: CliContext | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """The body of ``caw batch``; the exit code."""
    from caw.batches import Batch

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if concurrency < 1:
        raise UsageProblem(f"--concurrency {concurrency}: must be at least 1", "pass e.g. --concurrency 4")
    tasks = read_tasks(tasks_file)
    view: PlainLog | LiveProgress
    if _isatty(stderr) and not os.environ.get("CI"):
        from rich.console import Console

        view = LiveProgress(Console(file=stderr, highlight=False), clock=clock)
    else:
        view = PlainLog(stderr, clock=clock)
    lock = threading.Lock()

    def notice(text: str) -> None:
        with lock:
            view.line(text.removeprefix("caw: "))

    kwargs = args.agent_kwargs()
    kwargs.pop("wait_display", None)  # N countdowns on one terminal would fight: waits are log lines
    kwargs["wait_output"] = notice  # the sessions' own limit waits, from the worker threads
    agent = make_agent(context, **kwargs)

    batch = Batch(
        tasks, agent=agent, concurrency=concurrency, results=out, retry_failed=retry_failed, describe=describe,
        on_notice=notice,
    )  # fmt: skip
    started = clock()
    p = batch.progress
    to_run = len(batch.pending)
    view.line(
        f"{p.total} tasks, {p.skipped} done earlier, {to_run} to run, concurrency {concurrency}"
        + (f", results in {out}" if out else "")
    )
    failed = [r for r in batch.previous if not r.ok]
    codes = [r.error.exit_code or int(ExitCode.TURN_FAILED) if r.error else 1 for r in failed]
    ticker_stop = threading.Event()

    def ticker() -> None:
        while not ticker_stop.wait(1.0):
            with lock:
                view.tick(batch.snapshot())

    tick_thread = threading.Thread(target=ticker, name="caw-batch-progress", daemon=True)
    if isinstance(view, LiveProgress):
        tick_thread.start()
    with _Signals(batch) as signals:
        try:
            for r in batch:
                if out is None:
                    stdout.write(agent.redactor()(json.dumps(r.to_json(), ensure_ascii=False, default=str)) + "\n")
                    stdout.flush()
                with lock:
                    view.result(r, batch.snapshot())
                if not r.ok:
                    failed.append(r)
                    codes.append(r.error.exit_code if r.error and r.error.exit_code is not None else 1)
        finally:
            ticker_stop.set()
            if tick_thread.is_alive():
                tick_thread.join()
            with lock:
                view.stop()
    interrupted = signals.received is not None
    code = int(ExitCode.INTERRUPTED) if interrupted else worst_exit_code(codes)
    resume = command_line(tasks_file, out, concurrency, args) if out is not None else None
    lines = [summary_line(batch.snapshot(), code, clock() - started)]
    if interrupted or batch.snapshot().remaining:
        if out is not None:
            lines.append(f"finished tasks are kept in {out}; resume with: {resume}")
        else:
            lines.append("nothing was kept: run with --out results.jsonl to make a batch resumable")
    elif failed and out is not None:
        lines.append(f"run the failed ones again with: {command_line(tasks_file, out, concurrency, args, retry=True)}")
    for text in lines:
        stderr.write(f"caw batch: {text}\n")
    stderr.flush()
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        from caw.cli.ci import _append

        _append(summary, agent.redactor()(step_summary(batch.snapshot(), code, failed, resume)))
    return code


def command_line(tasks: Path, out: Path | None, concurrency: int, args: RunArgs, *, retry: bool = False) -> str:
    """The ``caw batch`` command that runs this batch again (the resume hint)."""
    argv = ["caw", "batch", str(tasks)]
    if out is not None:
        argv += ["--out", str(out)]
    argv += ["-j", str(concurrency)]
    flags = {
        "provider": "--provider", "model": "--model", "effort": "--effort", "tools": "--tools",
        "system_prompt": "--system-prompt", "cwd": "--cwd", "data_dir": "--data-dir", "max_wait": "--max-wait",
        "timeout": "--timeout", "idle_timeout": "--idle-timeout", "first_output_timeout": "--first-output-timeout",
    }  # fmt: skip
    for name, flag in flags.items():
        value = getattr(args, name)
        if value is not None:
            argv += [flag, str(value)]
    if args.no_wait:
        argv.append("--no-wait")
    if retry:
        argv.append("--retry-failed")
    return shlex.join(argv)


_S = Optional[str]
TasksArg = Annotated[
    Path,
    typer.Argument(
        help='A JSONL file, one task per line: a JSON string (the prompt) or an object {"id", "prompt", "cwd", '
        '"model", "provider", ...}; `-`: stdin.'
    ),
]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-j", help="How many tasks run at once.")]
OutOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--out",
        "-o",
        help="Append results here (JSONL); a re-run with the same file skips finished tasks. Default: stdout.",
    ),
]
RetryOpt = Annotated[bool, typer.Option("--retry-failed", help="Run the tasks --out holds as failed again.")]
ProviderOpt = Annotated[_S, typer.Option("--provider", "-p", help="Provider or fallback order, e.g. claude,codex.")]
ModelOpt = Annotated[_S, typer.Option("--model", "-m", help="Model (for the first provider).")]
EffortOpt = Annotated[_S, typer.Option("--effort", help="Reasoning effort.")]
ToolsOpt = Annotated[_S, typer.Option("--tools", help="Tool groups, e.g. reader,writer,exec.")]
SystemOpt = Annotated[_S, typer.Option("--system-prompt", help="System prompt.")]
CwdOpt = Annotated[Optional[Path], typer.Option("--cwd", help="Working directory (a task's own cwd wins).")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Where sessions are kept.")]
MaxWaitOpt = Annotated[_S, typer.Option("--max-wait", help="Wait up to this long for a usage limit.")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Never wait for a usage limit.")]
TimeoutOpt = Annotated[_S, typer.Option("--timeout", help="Give up on a task's turn after this long.")]
IdleOpt = Annotated[_S, typer.Option("--idle-timeout", help="Give up when a CLI is silent this long.")]
FirstOpt = Annotated[
    _S, typer.Option("--first-output-timeout", help="Give up when the model has not answered this long.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="On failure also show the traceback.")]


def batch_command(
    ctx: typer.Context,
    tasks: TasksArg,
    concurrency: ConcurrencyOpt = 4,
    out: OutOpt = None,
    retry_failed: RetryOpt = False,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    tools: ToolsOpt = None,
    system_prompt: SystemOpt = None,
    cwd: CwdOpt = None,
    data_dir: DataDirOpt = None,
    max_wait: MaxWaitOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = None,
    idle_timeout: IdleOpt = None,
    first_output_timeout: FirstOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run many prompts: bounded concurrency, limits shared between tasks, resumable with --out.

    Example: caw batch tasks.jsonl --concurrency 3 --provider claude,codex --out results.jsonl
    """
    from caw.cli.runner import guard

    args = RunArgs(
        provider=provider, model=model, effort=effort, tools=tools, system_prompt=system_prompt, cwd=cwd,
        data_dir=data_dir, max_wait=max_wait, no_wait=no_wait, timeout=timeout, idle_timeout=idle_timeout,
        first_output_timeout=first_output_timeout, debug=debug,
    )  # fmt: skip

    def body() -> int:
        return run_batch(
            tasks, args, concurrency=concurrency, out=out, retry_failed=retry_failed, context=CliContext.of(ctx)
        )

    raise typer.Exit(guard(debug, body))


__all__ = ["batch_command", "progress_text", "result_line", "run_batch", "worst_exit_code"]
