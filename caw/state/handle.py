"""The resume-handle codec: a conversation's address, packed into one shell-, URL- and env-safe string.

A user copies ``session.resume_handle``, keeps it anywhere (a database row, a CI artifact, an env
var, a URL query, a command line) and later, in another process or on another machine, hands it
back to resume the conversation. The CLIs keep conversations per working directory and per config
home (see shared/reference/claude-cli.md), so the handle carries both along with the provider's own
conversation id. This module owns only the string form; it never touches disk or a CLI.

Wire format, version 1::

    caw1_<base64url, no padding, of: CHECKSUM (6 bytes) + PAYLOAD>

* ``caw1_`` -- the format version lives in the prefix, so a newer format is recognised as such
  (``caw2_...`` -> "made by a newer caw") instead of as garbage.
* ``PAYLOAD`` -- compact ASCII JSON (``separators=(",", ":")``, ``ensure_ascii=True``) with short
  keys, ``None`` fields left out::

      p provider      s session_id   k resume_key   d cwd          h config_home
      m model         r reasoning    v cli_version  t created_at (int, Unix epoch seconds, UTC)

  ``ensure_ascii`` keeps lone surrogates (what ``os.getcwd()`` returns for a directory name that
  is not valid UTF-8) round-tripping. Keys a v1 reader does not know are ignored, so a later caw
  may add optional keys without a version bump.
* ``CHECKSUM`` -- the first 6 bytes of SHA-256(PAYLOAD). 6 bytes are exactly 8 base64 characters,
  so every character of the handle belongs wholly to the checksum or wholly to the payload; a
  truncated, line-wrapped or hand-edited handle fails loudly rather than resuming another
  conversation. It guards against accidents, not forgery: the handle is not signed.

After the prefix only ``[A-Za-z0-9_-]`` appear: no ``=``, quotes, spaces or ``%``-escapes needed.
Decoding tolerates surrounding whitespace (a paste from a terminal, a trailing newline) and is
strict about everything else, including non-canonical base64 (unused trailing bits must be zero),
so that no single-character edit can decode to a handle.

A typical handle is about 260 characters. zlib would save about 50 of them, not worth a
decompression-size guard; a later format version can add it behind its own prefix.

The handle carries no secrets and no prompt text: only ids, a directory, and model settings.
Treat it like a file path, not a credential -- whoever has the handle and access to the same
config home can continue the conversation.

Example::

    >>> h = ResumeHandle(provider="claude", session_id="s1", resume_key="5d36", cwd="/work")
    >>> text = encode(h)
    >>> text.startswith(PREFIX), decode(text + "\\n") == h
    (True, True)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, NoReturn

import pydantic

from caw.errors import InvalidResumeHandle

__all__ = ["FORMAT_VERSION", "MAX_LENGTH", "PREFIX", "ResumeHandle", "decode", "encode", "looks_like_handle"]

FORMAT_VERSION = 1
PREFIX = f"caw{FORMAT_VERSION}_"
#: longest text ``decode`` looks at. Real handles are a few hundred characters; the bound keeps a
#: pasted log file or a hostile 1 MB value from being decoded at all.
MAX_LENGTH = 16 * 1024

_CHECKSUM_BYTES = 6
_BODY_RE = re.compile(r"[A-Za-z0-9_-]+")
_VERSION_RE = re.compile(r"caw([0-9]+)_")  # [0-9], not \d: no Arabic-Indic "caw١_"
_LOOKS_LIKE_RE = re.compile(r"\s*caw[0-9]+_")
# More digits than this is not a version anyone wrote (and int() of thousands of digits is slow).
_MAX_VERSION_DIGITS = 6
#: the shape of a provider name; which names exist is the registry's business (``decode(resolve=...)``)
_PROVIDER_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
#: maps a provider name or alias to the registered name, or None when unknown
Resolver = Callable[[str], "str | None"]

# field name -> wire key. Order is the wire order.
_WIRE_KEYS: dict[str, str] = {
    "provider": "p",
    "session_id": "s",
    "resume_key": "k",
    "cwd": "d",
    "config_home": "h",
    "model": "m",
    "reasoning": "r",
    "cli_version": "v",
    "created_at": "t",
}
_REQUIRED_STR_KEYS = ("s", "k", "d")
_OPTIONAL_STR_KEYS = ("h", "m", "r", "v")


def _is_absolute(path: str) -> bool:
    # A handle made on Windows stays a valid value on Linux (and vice versa); whether the directory
    # exists is the resumer's business, not the codec's.
    return PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()


class ResumeHandle(pydantic.BaseModel):
    """Everything needed to continue a conversation elsewhere. Immutable.

    ``created_at`` is kept to whole seconds in UTC (that is what the wire carries); a naive
    datetime is refused because its time zone is a guess.

    Example::

        ResumeHandle(provider="codex", session_id="s1", resume_key="0199...", cwd="/srv/app")
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    provider: str
    session_id: str = pydantic.Field(min_length=1)
    resume_key: str = pydantic.Field(min_length=1)
    cwd: str
    config_home: str | None = None
    model: str | None = None
    reasoning: str | None = None
    cli_version: str | None = None
    created_at: datetime | None = None

    @pydantic.field_validator("provider")
    @classmethod
    def _canonical_provider(cls, value: str) -> str:
        name = value.strip().lower()
        if not _PROVIDER_RE.fullmatch(name):
            raise ValueError(f"{value!r} is not a provider name")
        return name

    @pydantic.field_validator("cwd", "config_home")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("a path cannot contain a NUL character")
        if not _is_absolute(value):
            raise ValueError(f"must be an absolute path, got {value!r}")
        return value

    @pydantic.field_validator("created_at")
    @classmethod
    def _utc_seconds(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware (e.g. datetime.now(timezone.utc))")
        try:
            return value.astimezone(timezone.utc).replace(microsecond=0)
        except OverflowError:  # e.g. 0001-01-01 at UTC+5 is before year 1 in UTC
            raise ValueError("created_at is out of the representable range") from None


def encode(handle: ResumeHandle) -> str:
    """The handle as one ``caw1_...`` string (see the module docstring for the format).

    Raises :class:`InvalidResumeHandle` (``why="too_long"``) if the result would be longer than
    :data:`MAX_LENGTH`, because :func:`decode` would refuse it.

    Example::

        text = encode(ResumeHandle(provider="claude", session_id="s1", resume_key="k", cwd="/w"))
    """
    wire: dict[str, Any] = {}
    for field, key in _WIRE_KEYS.items():
        value = getattr(handle, field)
        if value is None:
            continue
        wire[key] = int(value.timestamp()) if isinstance(value, datetime) else value
    text = _encode_payload(wire)
    if len(text) > MAX_LENGTH:
        _fail(
            "too_long",
            f"this resume handle would be {len(text)} characters, over the {MAX_LENGTH} limit "
            "(is cwd or an id unusually long?)",
        )
    return text


def decode(text: str, *, resolve: Resolver | None = None) -> ResumeHandle:
    """Read a handle made by :func:`encode`. Surrounding whitespace is ignored.

    Raises :class:`InvalidResumeHandle` -- and nothing else -- with ``why`` one of ``empty``,
    ``too_long``, ``not_a_handle``, ``unsupported_version``, ``corrupt``, ``malformed``,
    ``unknown_provider`` (only with ``resolve``: the registry's name lookup, which also turns an
    alias into the registered name).

    Example::

        handle = decode(os.environ["CAW_RESUME"], resolve=caw.providers.canonical_name)
        handle.provider, handle.resume_key, handle.cwd
    """
    payload = _unpack(text)
    wire = _parse_json(payload)
    return _from_wire(wire, resolve)


def looks_like_handle(text: str) -> bool:
    """True when ``text`` is shaped like a handle (``caw<N>_...``), without decoding it.

    Used to tell a handle from a bare caw session id. A handle of a newer format also counts, so
    that :func:`decode` gets to say "upgrade caw" instead of "no such session".
    """
    return isinstance(text, str) and _LOOKS_LIKE_RE.match(text) is not None


# -- internals ---------------------------------------------------------------------------------


def _fail(why: str, message: str) -> NoReturn:
    # `from None` everywhere: the user needs the sentence, not base64's or json's traceback.
    raise InvalidResumeHandle(f"invalid resume handle: {message}", why=why) from None


def _preview(text: str, limit: int = 24) -> str:
    """A short, single-line quotation of user input for an error message."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()[:_CHECKSUM_BYTES]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _pack(payload: bytes) -> str:
    """PREFIX + base64url(checksum + payload). Exposed to tests to build hostile-but-valid envelopes."""
    return PREFIX + _b64encode(_checksum(payload) + payload)


def _encode_payload(wire: Mapping[str, Any]) -> str:
    """Pack an arbitrary JSON object; no validation (tests use it to build handles encode() won't)."""
    return _pack(json.dumps(wire, separators=(",", ":"), ensure_ascii=True).encode("ascii"))


def _unpack(text: object) -> bytes:
    """Check the envelope (type, size, prefix, alphabet, base64, checksum) and return the payload."""
    if not isinstance(text, str):
        _fail("not_a_handle", f"expected a str starting with {PREFIX!r}, got {type(text).__name__}")
    # Before strip() or any regex: a 1 MB value is refused without being copied or scanned.
    if len(text) > MAX_LENGTH:
        _fail("too_long", f"{len(text)} characters is longer than any handle ({MAX_LENGTH} max)")
    stripped = text.strip()
    if not stripped:
        _fail("empty", "the text is empty")

    match = _VERSION_RE.match(stripped)
    if match is None or len(match.group(1)) > _MAX_VERSION_DIGITS:
        _fail("not_a_handle", f"expected text starting with {PREFIX!r}, got {_preview(stripped)}")
    version = match.group(1)
    if version != str(FORMAT_VERSION):
        if version != str(int(version)):  # "caw01_": no caw writes leading zeros, so it was edited
            _fail("corrupt", f"the version in {_preview(stripped, 12)} is mangled (truncated or edited?)")
        number = int(version)
        if number > FORMAT_VERSION:
            _fail(
                "unsupported_version",
                f"made by a newer caw (format v{number}); this caw reads v{FORMAT_VERSION} — upgrade caw",
            )
        _fail("unsupported_version", f"format v{number} is not one caw ever wrote; this caw reads v{FORMAT_VERSION}")

    body = stripped[match.end() :]
    if not body:
        _fail("corrupt", "nothing follows the prefix (truncated?)")
    if _BODY_RE.fullmatch(body) is None:
        bad = next(ch for ch in body if _BODY_RE.fullmatch(ch) is None)
        hint = " (a line break or space inside the handle?)" if bad.isspace() else ""
        _fail("corrupt", f"it contains {bad!r}, which never appears in a handle{hint} — truncated or edited")
    if len(body) % 4 == 1:  # no byte string encodes to this length
        _fail("corrupt", "its length is impossible for a handle — truncated or edited")
    try:
        raw = base64.b64decode(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        _fail("corrupt", "it is not valid base64url — truncated or edited")
    # Unused low bits of the last character must be zero, otherwise two strings decode alike and a
    # one-character edit there would go unnoticed.
    if _b64encode(raw) != body:
        _fail("corrupt", "its last character was changed — truncated or edited")
    if len(raw) <= _CHECKSUM_BYTES:
        _fail("corrupt", "it is too short to be a handle — truncated")
    checksum, payload = raw[:_CHECKSUM_BYTES], raw[_CHECKSUM_BYTES:]
    if _checksum(payload) != checksum:
        _fail("corrupt", "checksum mismatch — the handle was truncated or edited")
    return payload


def _parse_json(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload.decode("ascii"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        _fail("malformed", "the checksum is right but the content is not JSON (not made by caw?)")
    if not isinstance(value, dict):
        _fail("malformed", f"the content is a JSON {type(value).__name__}, not an object")
    return value


def _from_wire(wire: dict[str, Any], resolve: Resolver | None) -> ResumeHandle:
    provider = wire.get("p")
    if not isinstance(provider, str):
        _fail("malformed", "the provider ('p') is missing or not a string")
    name: str | None = provider
    if resolve is not None:
        name = resolve(provider)
        if name is None:
            _fail("unknown_provider", f"provider {_preview(provider)} is not one this caw knows")

    fields: dict[str, Any] = {"provider": name}
    names = {key: field for field, key in _WIRE_KEYS.items()}
    for key in _REQUIRED_STR_KEYS:
        if not isinstance(wire.get(key), str):
            _fail("malformed", f"{names[key]} ({key!r}) is missing or not a string")
        fields[names[key]] = wire[key]
    for key in _OPTIONAL_STR_KEYS:
        if key in wire:
            if not isinstance(wire[key], str):
                _fail("malformed", f"{names[key]} ({key!r}) is not a string")
            fields[names[key]] = wire[key]
    if "t" in wire:
        stamp = wire["t"]
        if type(stamp) is not int:  # bool is an int subclass; floats would lose the round trip
            _fail("malformed", "created_at ('t') is not a whole number of seconds")
        try:
            fields["created_at"] = datetime.fromtimestamp(stamp, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            _fail("malformed", "created_at ('t') is out of range")

    try:
        return ResumeHandle(**fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "handle"
        detail = " ".join(str(first["msg"]).split())  # one line, whatever pydantic wrote
        _fail("malformed", f"{where}: {detail}")
