"""``caw session export HANDLE -o FILE`` and ``caw session import FILE``: one session as one file, no Redis.

The file is a portable session record (``caw.state.record``: checksummed, compressed): the trajectory and
the CLI's own conversation record, with the session's secrets masked. After ``import`` on another machine,
``caw resume HANDLE`` (or ``resume_session``) restores the CLI's record where that machine's CLI looks and
continues the conversation. See docs/fleets.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from caw.cli.args import default_data_dir
from caw.cli.exit_codes import UsageProblem
from caw.cli.runner import guard

session_app = typer.Typer(
    help="Move one session between machines as a file (export / import).", no_args_is_help=True, rich_markup_mode=None
)

_DataDir = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Where sessions are kept [env CAW_DATA_DIR, else caw's data dir].")
]
_Debug = Annotated[bool, typer.Option("--debug", help="On failure also show the traceback.")]


@session_app.command("export")
def export(
    handle: Annotated[str, typer.Argument(help="A resume handle, or a session id from `caw sessions`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Write the session file here.")],
    data_dir: _DataDir = None,
    debug: _Debug = False,
) -> None:
    """Write one session (trajectory + the CLI's own conversation record) to a single file."""

    def body() -> int:
        from caw.agent import Agent
        from caw.providers import canonical_name, get_provider
        from caw.providers.records import export_record
        from caw.state.handle import decode, looks_like_handle
        from caw.state.record import pack
        from caw.state.shared import FileSessionStore, write_bytes

        store = FileSessionStore(data_dir or default_data_dir())
        text = handle.strip()
        if not looks_like_handle(text):
            if not store.exists(text):
                raise UsageProblem(f"{text!r} is not a resume handle nor a session in {store.root}", "`caw sessions`")
            saved = store.load(text).resume_handle
            if not saved:
                raise UsageProblem(f"session {text!r} has no resume handle yet", "run a turn first")
            text = saved
        parsed = decode(text, resolve=canonical_name)
        provider = get_provider(parsed.provider)
        redact = Agent(provider=parsed.provider).redactor()
        record = export_record(parsed, text, provider, dict(os.environ), store=store, redact=redact)
        if output.is_dir():
            raise UsageProblem(f"-o {output} is a directory", "pass a file path, e.g. session.cawrec")
        blob = pack(record)
        write_bytes(output, blob)
        sys.stderr.write(f"caw: wrote {output} ({len(blob) / 1024:,.1f} KiB, {parsed.provider} session)\n")
        typer.echo(text)
        return 0

    raise typer.Exit(guard(debug, body))


@session_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A file written by `caw session export`.")],
    data_dir: _DataDir = None,
    debug: _Debug = False,
) -> None:
    """Keep a session file's session here; prints its resume handle (for `caw resume`)."""

    def body() -> int:
        from caw.errors import StorageError
        from caw.state.record import unpack
        from caw.state.shared import FileSessionStore

        try:
            blob = file.read_bytes()
        except OSError as exc:
            raise StorageError.from_os_error(exc, "read", file) from exc
        record = unpack(blob, source=str(file))
        store = FileSessionStore(data_dir or default_data_dir())
        store.put_record(record)
        sys.stderr.write(f"caw: imported {record.provider} session {record.session_id} into {store.root}\n")
        typer.echo(record.handle)
        return 0

    raise typer.Exit(guard(debug, body))


def shared_state_report() -> dict[str, object] | None:
    """What ``caw doctor`` says about the shared state (None without ``CAW_STATE_URL``): where it is, whether
    it answers, and every limit in its ledger (all accounts), soonest reset first."""
    from caw.state.shared import SharedLedger, open_ledger, state_url

    url = state_url()
    if url is None:
        return None
    ledger = open_ledger(url)
    assert isinstance(ledger, SharedLedger)
    entries = ledger.shared_entries()
    limits = [
        {"entry": c.provider, "until": c.until.isoformat(timespec="seconds"), "kind": c.kind, "message": c.message}
        for c in sorted((entries or {}).values(), key=lambda c: c.until)
    ]
    return {"url": ledger.link.display, "reachable": entries is not None, "limits": limits}


def shared_state_line(report: dict[str, object]) -> str:
    """One line for ``caw doctor``: the shared ledger's place, health and limits."""
    if not report["reachable"]:
        return f"shared state: {report['url']} is unreachable (the local ledger is used)"
    limits = report["limits"]
    assert isinstance(limits, list)
    if not limits:
        return f"shared state: {report['url']}: no limit in the shared ledger"
    shown = ", ".join(f"{e['entry']} until {e['until']} ({e['kind'] or 'limit'})" for e in limits)
    return f"shared state: {report['url']}: {shown}"
