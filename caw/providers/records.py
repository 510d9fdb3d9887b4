"""Where each CLI keeps its own conversation record, and how to carry it to another machine.

* **claude**: the transcript ``<config>/projects/<cwd slug>/<session id>.jsonl`` (config: ``CLAUDE_CONFIG_DIR``,
  else ``~/.claude``; the slug is the cwd with every non-alphanumeric character replaced by ``-``). claude
  resumes only from the slug of the directory it runs in, so a restore writes it under the *new* cwd's slug.
* **codex**: the rollout ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl`` (``~/.codex``);
  ``codex exec resume <id>`` finds it by the id in the file name, so a restore writes it at the same relative
  path (the SQLite files beside it are indexes codex rebuilds; they are not carried).
* **opencode**: rows of its SQLite database (``$XDG_DATA_HOME/opencode/opencode.db``), carried as the CLI's own
  ``opencode export <id>`` JSON and restored with ``opencode import <file>`` (the CLI migrates the database).

Only these files travel: never ``.claude.json``, ``.credentials.json``, ``auth.json``, config files or logs.
Checked by running the pinned CLIs against the fakes (tests/e2e/test_fleets_e2e.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from caw.errors import CawError, StorageError
from caw.providers.base import Provider, user_home
from caw.state.handle import ResumeHandle
from caw.state.record import Record, RecordFile
from caw.state.shared import FileSessionStore, redact_bytes
from caw.state.store import default_data_dir

#: seconds an ``opencode export`` / ``import`` may take (a cold start on a fresh home is a few seconds)
OPENCODE_TIMEOUT = 60.0
_SLUG_RE = re.compile(r"[^A-Za-z0-9]")


#: the CLIs whose own conversation records caw knows how to carry to another machine
RECORD_PROVIDERS = ("claude", "codex", "opencode")


def record_home(provider: str, config_home: str | None, env: Mapping[str, str]) -> Path:
    """The directory under which ``provider`` keeps conversations for this config home (None: its default)."""
    if provider == "claude":
        return Path(config_home) if config_home else user_home(env) / ".claude"
    if provider == "codex":
        return Path(config_home) if config_home else user_home(env) / ".codex"
    if provider == "opencode":
        return (Path(config_home) if config_home else user_home(env) / ".local" / "share") / "opencode"
    raise CawError(f"caw does not know where {provider} keeps its conversations")


#: claude cuts a longer slug here and appends a hash of the whole path (read from claude 2.1.332's bundle)
_CLAUDE_SLUG_MAX = 200


def claude_slug(cwd: str) -> str:
    """claude's project directory name for ``cwd``: ``/work/a.b`` -> ``-work-a-b``; past 200 characters, the
    first 200 and ``-<base-36 of |Java-style hash of cwd|>``, as claude 2.1.332 names it."""
    # one "-" per UTF-16 code unit, as JavaScript's regex replaces them (an emoji is two)
    slug = _SLUG_RE.sub(lambda m: "-" * (2 if ord(m.group()) > 0xFFFF else 1), cwd)
    if len(slug) <= _CLAUDE_SLUG_MAX:
        return slug
    return f"{slug[:_CLAUDE_SLUG_MAX]}-{_base36(abs(_js_string_hash(cwd)))}"


def _js_string_hash(text: str) -> int:
    """``(h << 5) - h + charCodeAt(i) | 0`` over the UTF-16 code units, as a signed 32-bit int."""
    units = text.encode("utf-16-le", "surrogatepass")
    h = 0
    for i in range(0, len(units), 2):
        h = ((h << 5) - h + (units[i] | units[i + 1] << 8)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def capture(handle: ResumeHandle, env: Mapping[str, str], provider: Provider | None = None) -> list[RecordFile]:
    """The CLI's own record of the conversation ``handle`` names, as files (empty when it has none here)."""
    home = record_home(handle.provider, handle.config_home, env)
    key = handle.resume_key
    if handle.provider == "claude":
        path = home / "projects" / claude_slug(handle.cwd) / f"{_safe(key)}.jsonl"
        if not path.is_file():  # a slug caw computes differently from this claude: look for the id itself
            path = next(iter(sorted((home / "projects").glob(f"*/{_safe(key)}.jsonl"))), path)
        return [RecordFile("transcript.jsonl", path.read_bytes(), "claude-transcript")] if path.is_file() else []
    if handle.provider == "codex":
        found = sorted((home / "sessions").glob(f"*/*/*/rollout-*-{_safe(key)}.jsonl"))
        return [RecordFile(str(p.relative_to(home)), p.read_bytes(), "codex-rollout") for p in found[-1:]]
    if handle.provider == "opencode":
        # read from the database (milliseconds), in the shape `opencode export` prints and `opencode import` takes;
        # running `opencode export` after each turn cost 2-8 s (docs/dev/fleets.md)
        data = opencode_export(home / "opencode.db", key)
        return [RecordFile("export.json", data, "opencode-export")] if data else []
    return []


def opencode_export(db: Path, session_id: str) -> bytes | None:
    """``opencode export <id>``'s JSON, read from opencode's SQLite database (read-only); None without it."""
    import json
    import sqlite3

    if not db.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("select * from session where id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            messages = conn.execute(
                "select id, data from message where session_id = ? order by time_created, id", (session_id,)
            ).fetchall()
            parts = conn.execute(
                "select id, message_id, data from part where session_id = ? order by time_created, id", (session_id,)
            ).fetchall()
    except sqlite3.Error:
        return None
    by_message: dict[str, list[dict[str, object]]] = {}
    for part in parts:
        body = json.loads(part["data"])
        by_message.setdefault(part["message_id"], []).append(
            {**body, "id": part["id"], "sessionID": session_id, "messageID": part["message_id"]}
        )
    doc = {
        "info": _opencode_info(dict(row)),
        "messages": [
            {
                "info": {**json.loads(m["data"]), "id": m["id"], "sessionID": session_id},
                "parts": by_message.get(m["id"], []),
            }
            for m in messages
        ],
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _opencode_info(row: dict[str, object]) -> dict[str, object]:
    """A ``session`` row as opencode's Session.Info (what ``opencode export`` prints as ``info``)."""
    import json

    def parsed(value: object) -> object:
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    info: dict[str, object] = {"id": row["id"], "slug": row["slug"], "projectID": row["project_id"]}
    if row.get("workspace_id"):
        info["workspaceID"] = row["workspace_id"]
    info["directory"] = row["directory"]
    if row.get("path") is not None:
        info["path"] = row["path"]
    if row.get("parent_id"):
        info["parentID"] = row["parent_id"]
    info["title"] = row["title"]
    if row.get("agent"):
        info["agent"] = row["agent"]
    if row.get("model"):
        info["model"] = parsed(row["model"])
    info["version"] = row["version"]
    summary: dict[str, object] = {
        "additions": row.get("summary_additions") or 0,
        "deletions": row.get("summary_deletions") or 0,
        "files": row.get("summary_files") or 0,
    }
    if row.get("summary_diffs"):
        summary["diffs"] = parsed(row["summary_diffs"])
    info["summary"] = summary
    if row.get("share_url"):
        info["share"] = {"url": row["share_url"]}
    info["cost"] = row.get("cost") or 0
    info["tokens"] = {
        "input": row.get("tokens_input") or 0,
        "output": row.get("tokens_output") or 0,
        "reasoning": row.get("tokens_reasoning") or 0,
        "cache": {"read": row.get("tokens_cache_read") or 0, "write": row.get("tokens_cache_write") or 0},
    }
    if row.get("metadata"):
        info["metadata"] = parsed(row["metadata"])
    if row.get("permission"):
        info["permission"] = parsed(row["permission"])
    if row.get("revert"):
        info["revert"] = parsed(row["revert"])
    when: dict[str, object] = {"created": row["time_created"], "updated": row["time_updated"]}
    if row.get("time_compacting"):
        when["compacting"] = row["time_compacting"]
    if row.get("time_archived"):
        when["archived"] = row["time_archived"]
    info["time"] = when
    return info


def present(provider: str, resume_key: str, cwd: str, config_home: str | None, env: Mapping[str, str]) -> bool:
    """Whether this machine already holds the CLI's record of ``resume_key`` where the CLI will look."""
    home = record_home(provider, config_home, env)
    if provider == "claude":
        return (home / "projects" / claude_slug(cwd) / f"{_safe(resume_key)}.jsonl").is_file()
    if provider == "codex":
        return any((home / "sessions").glob(f"*/*/*/rollout-*-{_safe(resume_key)}.jsonl"))
    if provider == "opencode":
        db = home / "opencode.db"
        if not db.is_file():
            return False
        import sqlite3  # only here: `caw run` does not pay for it

        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute("select 1 from session where id = ?", (resume_key,)).fetchone()
        except sqlite3.Error:
            return False
        return row is not None
    return False


def restore(
    record: Record, provider: Provider, resume_key: str, cwd: str, config_home: str | None, env: Mapping[str, str]
) -> None:
    """Put the record's files where the CLI looks for ``resume_key`` when run in ``cwd``: all or nothing."""
    home = record_home(record.provider, config_home, env)
    if record.provider == "opencode":
        export = next((f for f in record.files if f.role == "opencode-export"), None)
        if export is None:
            return
        with tempfile.TemporaryDirectory(prefix="caw-import-") as tmp:
            path = Path(tmp) / "session.json"
            path.write_bytes(_opencode_moved(export.data, cwd))
            _run_opencode(provider, ["import", str(path)], env, cwd=cwd)
        return
    targets: list[tuple[Path, bytes]] = []
    for f in record.files:
        if record.provider == "claude" and f.role == "claude-transcript":
            targets.append((home / "projects" / claude_slug(cwd) / f"{_safe(resume_key)}.jsonl", f.data))
        elif record.provider == "codex" and f.role == "codex-rollout":
            rel = Path(f.path)
            if rel.is_absolute() or ".." in rel.parts or rel.parts[:1] != ("sessions",):
                continue  # a record names paths under the CLI's home only
            targets.append((home / rel, f.data))
    written: list[Path] = []
    try:
        for target, data in targets:
            _write_new(target, data)
            written.append(target)
    except OSError as exc:
        for path in written:  # never a half-restored conversation
            path.unlink(missing_ok=True)
        raise StorageError.from_os_error(exc, "restore the conversation record to", exc.filename) from exc


def _opencode_moved(data: bytes, cwd: str) -> bytes:
    """The export with the session's directory set to this machine's ``cwd`` (its ``path`` along with it)."""
    import json

    try:
        doc = json.loads(data)
        info = doc["info"]
        old = str(info.get("directory") or "")
    except (ValueError, KeyError, TypeError):
        return data
    if not old or old == cwd:
        return data
    info["directory"] = cwd
    if info.get("path") == old.lstrip("/"):
        info["path"] = cwd.lstrip("/")
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _write_new(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run_opencode(provider: Provider, args: list[str], env: Mapping[str, str], *, cwd: str) -> bytes:
    binary = provider.locate(env)
    if binary is None:
        raise provider.not_installed(env)
    run_cwd = cwd if os.path.isdir(cwd) else None
    try:
        out = subprocess.run(
            [*provider.executable(binary), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=dict(env),
            cwd=run_cwd,
            timeout=OPENCODE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CawError(f"opencode {args[0]} failed: {exc}") from exc
    if out.returncode != 0:
        tail = out.stderr.decode("utf-8", "replace").strip()[-300:]
        raise CawError(f"opencode {args[0]} exited {out.returncode}: {tail}")
    return out.stdout


def _safe(key: str) -> str:
    """A conversation id as part of a file name or glob (no separators, no wildcards)."""
    if not key or any(c in key for c in "/\\*?[]") or key in (".", ".."):
        raise CawError(f"{key!r} is not a conversation id")
    return key


def account_scope(provider: Provider, env: Mapping[str, str]) -> str:
    """Which account a limit belongs to, as far as the environment tells: a short hash of the first credential
    variable set (never the value itself), or "" (a login kept in the config home cannot be told apart)."""
    import hashlib

    for name in provider.secret_env_vars:
        value = env.get(name)
        if value:
            return hashlib.sha256(f"{provider.name}\0{value}".encode()).hexdigest()[:12]
    return ""


def prepare_resume(
    handle: ResumeHandle,
    provider: Provider,
    env: dict[str, str],
    fallback_cwd: str,
    store: FileSessionStore | None,
) -> str:
    """Make this machine ready to resume ``handle``; returns the working directory to run the CLI in.

    The handle's cwd and config home are used where they exist here; otherwise they are remapped to this
    machine's (``fallback_cwd``, the config home ``env``/the environment name, else the CLI's default). When
    the CLI's own record is not there, it is restored from the store's portable record (a shared store's, or
    one ``caw session import`` kept); a record that fails its checksum raises SessionRecordCorrupt and
    nothing is written. ``env`` is the CLI's extra environment (changed in place: a config home the handle
    names that does not exist here is dropped).
    """
    var = provider.config_home_var
    if var and handle.config_home and env.get(var) == handle.config_home and not os.path.isdir(handle.config_home):
        del env[var]
    cwd = handle.cwd if os.path.isdir(handle.cwd) else fallback_cwd
    if handle.provider not in RECORD_PROVIDERS:
        return cwd  # a provider caw keeps no records for (a fourth one): its CLI finds its own, or says it cannot
    full = {**os.environ, **env}
    config_home = full.get(var) if var else None
    if present(handle.provider, handle.resume_key, cwd, config_home, full):
        return cwd
    stores = [store] if store is not None else []
    stores.append(FileSessionStore(default_data_dir()))
    for candidate in stores:
        record = candidate.get_record(handle.session_id)
        if record is not None and record.provider == handle.provider:
            restore(record, provider, handle.resume_key, cwd, config_home, full)
            break
    return cwd


def export_record(
    handle: ResumeHandle,
    handle_text: str,
    provider: Provider,
    env: Mapping[str, str],
    *,
    store: FileSessionStore | None = None,
    redact: Callable[[str], str] | None = None,
) -> Record:
    """One session as a portable record, from this machine: the CLI's own record where the handle says it is
    (or where the store restored it), and the trajectory the store holds (redacted). A StorageError when the
    CLI's record is not here."""
    files = capture(handle, env, provider)
    if not files and store is not None:
        kept = store.get_record(handle.session_id)
        if kept is not None and kept.provider == handle.provider:
            files = kept.files
    if not files:
        home = record_home(handle.provider, handle.config_home, env)
        raise StorageError(home, "find the conversation record in", strerror=f"{handle.provider} has no record of "
                           f"{handle.resume_key} for {handle.cwd} (was the session run on this machine?)")  # fmt: skip
    if redact is not None:
        files = [RecordFile(f.path, redact_bytes(f.data, redact), f.role) for f in files]
    traj: dict[str, object] | None = None
    if store is not None and store.exists(handle.session_id):
        import json

        text = json.dumps(store.load(handle.session_id).to_dict(), ensure_ascii=False)
        traj = json.loads(redact(text) if redact is not None else text)
    return Record(handle_text, handle.provider, handle.session_id, files, traj, handle.cwd)
