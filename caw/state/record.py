"""The portable session record: one session as one checksummed, compressed blob.

A record carries what another machine needs to continue a conversation: the resume handle, caw's
trajectory, and the CLI's own conversation record (claude's transcript, codex's rollout, opencode's
session export) as files relative to where the CLI keeps them. The shared store keeps one per session
(updated after each turn) and ``caw session export`` writes one to a file. Nothing else goes in: no
auth files, no config, and the texts pass through the session's redactor first.

Wire format::

    CAWREC1\\n  SHA-256(body) (32 bytes)  body = zlib(header length (4 bytes, big-endian) + JSON header + files)

The header names each file (path, role, size); the files follow it as they are, back to back (base64
inside the JSON compressed a claude transcript to 71 KB, the raw bytes to 42 KB). The checksum covers the
compressed body, so a flipped bit, a truncated file or a different file with
the same name fails before anything is decompressed or written. ``MAX_RECORD_BYTES`` bounds both the
blob and what it decompresses to (a decompression bomb stops at the bound).

>>> blob = pack(Record(handle="caw1_x", provider="claude", session_id="s1", files=[RecordFile("t.jsonl", b"{}")]))
>>> unpack(blob, source="example").files[0].data
b'{}'
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, NoReturn

from caw.errors import SessionRecordCorrupt

MAGIC = b"CAWREC1\n"
FORMAT_VERSION = 1
#: the largest record caw writes or reads, compressed and decompressed (a long claude transcript is a few MB)
MAX_RECORD_BYTES = 64 * 1024 * 1024
_SUM = 32


@dataclass(frozen=True)
class RecordFile:
    """One file of the CLI's own record: ``path`` relative to the CLI's home for it (``role`` says which)."""

    path: str
    data: bytes
    role: str = "transcript"


@dataclass
class Record:
    handle: str
    provider: str
    session_id: str
    files: list[RecordFile] = field(default_factory=list)
    #: the trajectory as ``Trajectory.to_dict()`` (redacted), or None
    trajectory: dict[str, Any] | None = None
    #: where the CLI ran on the machine that made it (for remapping)
    cwd: str = ""


def pack(record: Record) -> bytes:
    """The record as one blob (raises SessionRecordCorrupt ``too_large`` past ``MAX_RECORD_BYTES``)."""
    header = {
        "v": FORMAT_VERSION,
        "handle": record.handle,
        "provider": record.provider,
        "session_id": record.session_id,
        "cwd": record.cwd,
        "trajectory": record.trajectory,
        "files": [{"path": f.path, "role": f.role, "size": len(f.data)} for f in record.files],
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw = b"".join([len(head).to_bytes(4, "big"), head, *(f.data for f in record.files)])
    if len(raw) > MAX_RECORD_BYTES:
        _fail("record", "too_large", f"the session record is {len(raw)} bytes, over the {MAX_RECORD_BYTES} limit")
    body = zlib.compress(raw, 6)
    return MAGIC + hashlib.sha256(body).digest() + body


def unpack(blob: bytes, *, source: str) -> Record:
    """The record in ``blob``, whole or not at all: SessionRecordCorrupt names ``source`` and the damage."""
    if not blob.startswith(MAGIC):
        _fail(source, "not_a_record", f"{source} is not a caw session record")
    if len(blob) > MAX_RECORD_BYTES + len(MAGIC) + _SUM:
        _fail(source, "too_large", f"{source} is larger than any session record caw writes")
    digest, body = blob[len(MAGIC) : len(MAGIC) + _SUM], blob[len(MAGIC) + _SUM :]
    if hashlib.sha256(body).digest() != digest:
        _fail(source, "checksum", f"{source} fails its checksum (truncated or changed); nothing was restored")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body, MAX_RECORD_BYTES)
    except zlib.error as exc:
        _fail(source, "malformed", f"{source} does not decompress ({exc})")
    if not inflater.eof:  # stopped at the bound (the checksum rules out a truncated stream)
        _fail(source, "too_large", f"{source} decompresses to more than {MAX_RECORD_BYTES} bytes")
    size = int.from_bytes(raw[:4], "big")
    try:
        data = json.loads(raw[4 : 4 + size].decode("utf-8"))
    except ValueError as exc:
        _fail(source, "malformed", f"{source} does not decode ({exc})")
    if not isinstance(data, dict):
        _fail(source, "malformed", f"{source} does not hold a record")
    if data.get("v") != FORMAT_VERSION:
        _fail(source, "unsupported_version", f"{source} is record format {data.get('v')!r}; this caw reads 1")
    try:
        files: list[RecordFile] = []
        at = 4 + size
        for f in data["files"]:
            n = int(f["size"])
            if n < 0 or at + n > len(raw):
                raise ValueError("a file runs past the end of the record")
            files.append(RecordFile(str(f["path"]), raw[at : at + n], str(f.get("role", "transcript"))))
            at += n
        if at != len(raw):
            raise ValueError("bytes after the last file")
        traj = data.get("trajectory")
        return Record(
            handle=str(data["handle"]),
            provider=str(data["provider"]),
            session_id=str(data["session_id"]),
            files=files,
            trajectory=traj if isinstance(traj, dict) else None,
            cwd=str(data.get("cwd") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        _fail(source, "malformed", f"{source} does not hold a record ({exc!r})")


def _fail(source: str, why: str, message: str) -> NoReturn:
    raise SessionRecordCorrupt(message, source=source, why=why) from None
