"""The typer app: run, resume, sessions, doctor, traj show, schema, chat. Thin commands over ``runner``."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional, get_type_hints

import typer

from caw.cli.args import PromptSource, RunArgs, default_data_dir, parse_effort, parse_tools
from caw.cli.exit_codes import ExitCode, UsageProblem, failure_for, install_hint, login_hint
from caw.cli.runner import CliContext, execute, guard
from caw.models import Trajectory

if TYPE_CHECKING:
    pass


# ---- the typer app ------------------------------------------------------------------------------------
app = typer.Typer(
    name="caw",
    help="One dependable command over the coding-agent CLIs you already have: claude, codex, opencode.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
traj_app = typer.Typer(help="Saved trajectories.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(traj_app, name="traj")

PromptArg = Annotated[
    Optional[str],
    typer.Argument(help="The prompt; `-` reads stdin. A prompt starting with `-` goes after `--`.", show_default=False),
]
FileOpt = Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the prompt from this file (`-`: stdin).")]
ProviderOpt = Annotated[
    Optional[str],
    typer.Option("--provider", "-p", help="Provider or fallback order, e.g. claude,codex,opencode [env CAW_PROVIDER]."),
]
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Model (for the first provider) [env CAW_MODEL].")
]
EffortOpt = Annotated[
    Optional[str],
    typer.Option("--effort", help="Reasoning effort: none, minimal, low, medium, high, xhigh, max [env CAW_EFFORT]."),
]
ToolsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tools",
        help="Tool groups, a comma list of reader, writer, exec, web, parallel, interaction, all, "
        "no_interaction, none; -name subtracts (all,-web).",
    ),
]
SystemOpt = Annotated[Optional[str], typer.Option("--system-prompt", help="System prompt for the agent.")]
CwdOpt = Annotated[Optional[Path], typer.Option("--cwd", help="Working directory of the agent (default: here).")]
DataDirOpt = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Where sessions are kept [env CAW_DATA_DIR, else caw's data dir].")
]
MaxWaitOpt = Annotated[
    Optional[str],
    typer.Option("--max-wait", help="Wait up to this long for a usage limit (6h, 90m) [env CAW_MAX_WAIT]."),
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Never wait for a usage limit: exit 75 at once.")]
TimeoutOpt = Annotated[Optional[str], typer.Option("--timeout", help="Give up on a turn after this long (30s, 10m).")]
IdleOpt = Annotated[Optional[str], typer.Option("--idle-timeout", help="Give up when the CLI is silent this long.")]
FirstOutputOpt = Annotated[
    Optional[str], typer.Option("--first-output-timeout", help="Give up when the model has not answered this long.")
]
SaveOpt = Annotated[Optional[Path], typer.Option("--save", help="Also write the trajectory JSON to this file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the final trajectory as JSON.")]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="Print one JSON event per line as they arrive.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result text.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="On failure also show the traceback and the CLI's stderr.")]


def _version_callback(value: bool) -> None:
    if value:
        from caw.version import __version__

        typer.echo(f"caw {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """caw: run coding agents from scripts and CI with one exit-code contract (see docs/ci.md)."""


#: the options run and resume share: (parameter, annotation name in this module, default). Declared once
#: and added to both commands' signatures, so typer shows the same options, help and defaults for both.
_RUN_OPTIONS: tuple[tuple[str, str, object], ...] = (
    ("provider", "ProviderOpt", None),
    ("model", "ModelOpt", None),
    ("effort", "EffortOpt", None),
    ("tools", "ToolsOpt", None),
    ("system_prompt", "SystemOpt", None),
    ("data_dir", "DataDirOpt", None),
    ("max_wait", "MaxWaitOpt", None),
    ("no_wait", "NoWaitOpt", False),
    ("timeout", "TimeoutOpt", None),
    ("idle_timeout", "IdleOpt", None),
    ("first_output_timeout", "FirstOutputOpt", None),
    ("save", "SaveOpt", None),
    ("json_out", "JsonOpt", False),
    ("jsonl", "JsonlOpt", False),
    ("quiet", "QuietOpt", False),
    ("debug", "DebugOpt", False),
)


def _with_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (which takes ``**options``) the shared run options, as typer reads them: its
    signature and its (string) annotations, resolved in this module."""
    signature = inspect.signature(command)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__annotations__.pop("options", None)
    for name, annotation, default in _RUN_OPTIONS:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
        command.__annotations__[name] = annotation
    hints = get_type_hints(command, include_extras=True)  # the string annotations, resolved here
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params]
    setattr(command, "__signature__", signature.replace(parameters=params))  # noqa: B010 - typer reads it
    return command


def _run_args(cwd: Path | None, options: dict[str, Any]) -> RunArgs:
    json_out = options.pop("json_out", False)
    return RunArgs(cwd=cwd, json=json_out, **options)


@app.command()
@_with_run_options
def run(
    ctx: typer.Context,
    prompt: PromptArg = None,
    file: FileOpt = None,
    cwd: CwdOpt = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue this conversation (a handle).")] = None,
    **options: Any,
) -> None:
    """Send one prompt to the first provider that can answer.

    Example: caw run --tools reader,writer,exec "Fix the failing test" (the CLIs' defaults refuse writes).
    """
    raise typer.Exit(execute(_run_args(cwd, options), PromptSource(prompt, file), resume, CliContext.of(ctx)))


@app.command("resume")
@_with_run_options
def resume_cmd(
    ctx: typer.Context,
    handle: Annotated[
        Optional[str],
        typer.Argument(help="A resume handle (or a session id from `caw sessions`); with --last, the prompt."),
    ] = None,
    prompt: PromptArg = None,
    last: Annotated[
        bool, typer.Option("--last", help="Continue the newest session run in this directory (no HANDLE).")
    ] = False,
    file: FileOpt = None,
    **options: Any,
) -> None:
    """Continue a conversation. Without a prompt, re-sends the message a usage limit left unanswered."""
    if last:
        if handle is not None and prompt is not None:
            _usage_exit(UsageProblem("--last takes no HANDLE", "pass only the prompt, or drop --last"))
        prompt, handle = handle, None  # the one positional argument is the prompt
        try:
            handle = newest_session_here(options.get("data_dir") or default_data_dir(), Path.cwd())
        except UsageProblem as exc:
            _usage_exit(exc)
    elif handle is None:
        _usage_exit(UsageProblem("no HANDLE given", "pass a resume handle or a session id, or --last"))
    args = _run_args(None, options)
    raise typer.Exit(execute(args, PromptSource(prompt, file), handle, CliContext.of(ctx)))


def newest_session_here(data_dir: Path, cwd: Path) -> str:
    """``caw resume --last``: the id of the newest session in ``data_dir`` whose agent ran in ``cwd``."""
    from caw.state.store import SessionStore, list_sessions

    here = str(cwd.resolve())
    store = SessionStore(data_dir)
    for info in list_sessions(data_dir):  # newest first
        if info.resume_handle and store.load(info.session_id).cwd == here:
            return info.session_id
    raise UsageProblem(
        f"no session in {data_dir} was run in {here}", "`caw sessions` lists them; pass a handle or a session id"
    )


def _usage_exit(problem: UsageProblem) -> NoReturn:
    sys.stderr.write(f"caw: error: {failure_for(problem).line}\n")
    raise typer.Exit(int(ExitCode.USAGE))


@app.command()
def sessions(
    data_dir: DataDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the sessions as a JSON list.")] = False,
    debug: DebugOpt = False,
) -> None:
    """List the sessions of a data dir, newest first (id, provider, created, first prompt, handle)."""

    def body() -> int:
        from rich.console import Console

        from caw.cli.reports import render_sessions, session_json
        from caw.state.store import list_sessions

        infos = list_sessions(data_dir or default_data_dir())
        if json_out:
            typer.echo(json.dumps([session_json(i) for i in infos], ensure_ascii=False, indent=2))
        else:
            render_sessions(Console(highlight=False, soft_wrap=True), infos)
        return 0

    raise typer.Exit(guard(debug, body))


@app.command()
def doctor(
    live: Annotated[bool, typer.Option("--live", help="Also send one minimal request per provider.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    provider: ProviderOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Which providers are installed, logged in, cooling down. Exit 0 if one in the order can answer, else 3."""

    def body() -> int:
        from caw.agent import live_probe
        from caw.cli.reports import can_answer_line, render_doctor
        from caw.providers.health import check_all, check_health
        from caw.providers.order import resolve_order

        order = resolve_order(provider)
        # the free check for everyone; --live probes the order's providers in turn and stops at the first
        # that answers (a provider that hangs costs its probe timeout once, not once per provider)
        found = check_all(order)
        if live:
            for index, health in enumerate(found):
                if health.provider in order and health.installed:
                    found[index] = check_health(health.provider, live=True, probe=live_probe)
                    if found[index].live == "answers":
                        break
        rows = [{**h.model_dump(mode="json"), "status": h.status} for h in found]
        usable_names = [str(r["provider"]) for r in rows if r.get("ok") and r.get("provider") in order]
        usable = bool(usable_names)
        if json_out:
            doc = {"order": list(order), "usable": usable, "can_answer": usable_names, "providers": rows}
            typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            from rich.console import Console

            render_doctor(Console(highlight=False), rows, order)
            typer.echo(can_answer_line(rows, order))
        if usable:
            return 0
        installed = [h for h in found if h.provider in order and h.installed]
        if installed:
            fix = login_hint(installed[0].provider)
        else:
            from caw.providers import get_provider

            wrong = get_provider(order[0]).not_installed().reason  # a CAW_<NAME>_BIN naming no executable
            fix = f"{wrong}: fix or unset it" if wrong else install_hint(order[0])
        sys.stderr.write(f"caw: error: no provider in the order ({', '.join(order)}) can answer — {fix}\n")
        return int(ExitCode.NO_PROVIDER)

    raise typer.Exit(guard(debug, body))


@traj_app.command("show")
def traj_show(
    file: Annotated[Path, typer.Argument(help="A trajectory JSON (caw run --json / --save, or a session dir).")],
    step: Annotated[Optional[int], typer.Option("--step", "-s", help="Print step N in full (see docs/cli.md).")] = None,
    debug: DebugOpt = False,
) -> None:
    """Show a saved trajectory: turns, tool calls (outputs folded), usage, attempts, limits."""

    def body() -> int:
        from rich.console import Console

        from caw.cli.reports import render_step, render_trajectory, steps

        traj = load_trajectory(file)
        if step is None:
            render_trajectory(Console(highlight=False, soft_wrap=True), traj, source=str(file))
            return 0
        all_steps = steps(traj)
        if not 1 <= step <= len(all_steps):
            raise UsageProblem(
                f"--step {step}: the trajectory has {len(all_steps)} steps", f"pick a step from 1 to {len(all_steps)}"
            )
        render_step(sys.stdout, all_steps[step - 1])
        return 0

    raise typer.Exit(guard(debug, body))


_TRAJECTORY_KEYS = frozenset({"turns", "session_id", "agent"})


def load_trajectory(path: Path) -> Trajectory:
    """A trajectory from a JSON file (``--json`` output, ``--save``, ``trajectory.json``) or a session dir."""
    target = path / "trajectory.json" if path.is_dir() else path
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"cannot read {target}: {exc}", "pass a trajectory JSON file or a session dir") from None
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"{target} is not JSON ({exc})", "pass a trajectory JSON file") from None
    # every field of a trajectory has a default, so ``{}`` (or any other JSON object) would validate as one
    if not isinstance(data, dict) or not _TRAJECTORY_KEYS & data.keys():
        kinds = {dict: "object without turns, session_id or agent", list: "array", str: "string", bool: "boolean"}
        what = kinds.get(type(data), "null" if data is None else "number")
        raise UsageProblem(
            f"{target} is not a caw trajectory (a JSON {what})",
            "pass a file written by `caw run --json` / --save, or a session dir",
        )
    try:
        return Trajectory.from_dict(data)
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise UsageProblem(f"{target} is not a caw trajectory ({first})", "pass a trajectory JSON file") from None


@app.command()
def schema(
    events: Annotated[bool, typer.Option("--events", help="Only the schema of one streamed event.")] = False,
    trajectory: Annotated[bool, typer.Option("--trajectory", help="Only the trajectory schema.")] = False,
) -> None:
    """Print the JSON schema of events (`--jsonl` lines) and/or trajectories (`--json`)."""
    from caw.events import event_json_schema

    doc: dict[str, Any]
    if events and not trajectory:
        doc = event_json_schema()
    elif trajectory and not events:
        doc = Trajectory.model_json_schema(mode="serialization")
    else:
        doc = {"event": event_json_schema(), "trajectory": Trajectory.model_json_schema(mode="serialization")}
    typer.echo(json.dumps(doc, indent=2))


@app.command()
def chat(
    ctx: typer.Context,
    prompt: Annotated[Optional[str], typer.Argument(help="Initial prompt (after `--` if it starts with `-`).")] = None,
    provider: ProviderOpt = None,
    pick: Annotated[bool, typer.Option("--pick", help="Choose the provider from a menu first.")] = False,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    tools: ToolsOpt = None,
    system_prompt: SystemOpt = None,
    cwd: CwdOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Open the provider's own interactive UI with caw's configuration. Exits with the CLI's exit code."""

    def body() -> int:
        from caw.cli import runner

        kwargs: dict[str, Any] = {"provider": provider, "model": model, "reasoning": parse_effort(effort)}
        if system_prompt is not None:
            kwargs["system_prompt"] = system_prompt
        if tools is not None:
            kwargs["tools"] = parse_tools(tools)
        if cwd is not None:
            if not cwd.is_dir():
                raise UsageProblem(f"--cwd {cwd}: no such directory", "pass an existing directory")
            kwargs["cwd"] = str(cwd.resolve())
        agent = runner.make_agent(CliContext.of(ctx), **kwargs)
        result = agent.interactive(prompt or "", select_provider=pick)
        return int(result.exit_code)

    raise typer.Exit(guard(debug, body))


# issue 20: `caw batch` lives in its own module (caw/cli/batch.py)
from caw.cli.batch import batch_command  # noqa: E402

app.command("batch")(batch_command)
