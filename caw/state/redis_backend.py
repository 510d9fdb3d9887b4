"""The Redis backend of the shared state (``CAW_STATE_URL=redis://host:port/db``): the one user of ``redis``.

Keys, all under the prefix (default ``caw:``; ``?prefix=`` in the URL or ``CAW_STATE_PREFIX``):

* ``<prefix>ledger:<provider>[@<scope>]`` -- a hash ``until`` (epoch ms), ``kind``, ``message``; written by
  one Lua script (keep the later reset, set ``PEXPIREAT`` to it), so two workers recording at once never
  lose an update and the entry disappears by itself at the reset;
* ``<prefix>probe:<entry>`` / ``<prefix>ok:<entry>`` -- a cold fleet's first request: one worker holds the
  probe lease and sends; the others wait until it answered (``ok``, kept a few minutes) or hit a limit;
* ``<prefix>session:<session_id>`` -- one portable record (``caw.state.record``), replaced after each turn,
  expiring ``ttl`` seconds after its last write.

Every call is short (connect and socket timeouts of about a second): the caller (``caw.state.shared``)
falls back to local files on any ``RedisUnavailable``.

``import caw`` never imports this module; it is loaded when a redis URL is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from caw.errors import ConfigurationError

DEFAULT_PREFIX = "caw:"
DEFAULT_TTL = 30 * 86400

# KEYS[1] the entry, KEYS[2] its "answered lately" marker; ARGV: until_ms, kind, message. The later reset wins;
# the entry expires at it; the marker goes (after the reset the fleet starts with one request again).
_RECORD_LUA = """
redis.call('DEL', KEYS[2])
local old = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local new = tonumber(ARGV[1])
if old >= new then return 0 end
redis.call('HSET', KEYS[1], 'until', ARGV[1], 'kind', ARGV[2], 'message', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], new)
return 1
"""


# KEYS[1] the probe lease; ARGV[1] the holder's token: delete it only if it is still ours
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisUnavailable(Exception):
    """Redis could not be reached or answered with an error (the caller falls back)."""


@dataclass(frozen=True)
class RedisConfig:
    url: str
    prefix: str = DEFAULT_PREFIX
    ttl: int = DEFAULT_TTL

    @property
    def display(self) -> str:
        """The URL without a password, and the prefix."""
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path or '/0'} (prefix {self.prefix!r})"


def parse_url(url: str, *, prefix: str | None = None) -> RedisConfig:
    """``redis://host:port/db[?prefix=team-a:]`` (``rediss://`` too); ``prefix`` (CAW_STATE_PREFIX) wins."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(f"CAW_STATE_URL={url!r}: caw's shared state speaks redis:// (or rediss://)")
    query = parse_qs(parts.query)
    chosen = prefix or (query.get("prefix") or [DEFAULT_PREFIX])[0]
    ttl_text = (query.get("ttl") or [str(DEFAULT_TTL)])[0]
    try:
        ttl = int(ttl_text)
    except ValueError:
        raise ConfigurationError(f"CAW_STATE_URL: ttl={ttl_text!r} is not a number of seconds") from None
    kept = [f"{k}={v}" for k, vs in query.items() if k not in ("prefix", "ttl") for v in vs]
    clean = parts._replace(query="&".join(kept)).geturl()
    return RedisConfig(clean, chosen, ttl)


class RedisState:
    """One connection pool to one Redis; the ledger and session-record operations caw needs."""

    def __init__(self, config: RedisConfig, *, timeout: float = 1.0) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "CAW_STATE_URL names a Redis, but the redis client is not installed: pip install 'caw-agents[redis]'"
            ) from None
        self.config = config
        self._redis = redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # no client-side retries: a Redis that does not answer costs one timeout, then caw uses its files
        self._client: Any = redis.Redis.from_url(
            config.url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
        )
        self._record = self._client.register_script(_RECORD_LUA)
        self._release = self._client.register_script(_RELEASE_LUA)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.config.prefix}{kind}:{name}"

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._redis.exceptions.RedisError as exc:
            raise RedisUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise RedisUnavailable(str(exc)) from exc

    def ping(self) -> None:
        self._call(self._client.ping)

    # ---- the ledger ------------------------------------------------------------------------------
    def record_limit(self, entry: str, until: datetime, kind: str, message: str) -> bool:
        """Atomically keep the later of the stored and the given reset; True when this one was stored."""
        ms = int(until.timestamp() * 1000)
        keys = [self._key("ledger", entry), self._key("ok", entry)]
        return bool(self._call(self._record, keys, [ms, kind, message[:300]]))

    def limits(self) -> dict[str, tuple[datetime, str, str]]:
        """Every live ledger entry: name -> (until, kind, message)."""

        def read() -> dict[str, tuple[datetime, str, str]]:
            out: dict[str, tuple[datetime, str, str]] = {}
            start = self._key("ledger", "")
            keys = list(self._client.scan_iter(match=start + "*", count=200))
            if not keys:
                return out
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            for key, fields in zip(keys, pipe.execute(), strict=True):
                name = key.decode("utf-8", "replace")[len(start) :]
                try:
                    until = datetime.fromtimestamp(int(fields[b"until"]) / 1000, tz=timezone.utc)
                except (KeyError, ValueError):
                    continue
                kind = fields.get(b"kind", b"").decode("utf-8", "replace")
                out[name] = (until, kind, fields.get(b"message", b"").decode("utf-8", "replace"))
            return out

        result: dict[str, tuple[datetime, str, str]] = self._call(read)
        return result

    # ---- the first request of a cold fleet --------------------------------------------------------
    def probe_state(self, entry: str) -> tuple[bool, bool, bool]:
        """(answered recently, a probe is out, limited) for ``entry``, in one round trip."""

        def read() -> tuple[bool, bool, bool]:
            pipe = self._client.pipeline(transaction=False)
            pipe.exists(self._key("ok", entry))
            pipe.exists(self._key("probe", entry))
            pipe.exists(self._key("ledger", entry))
            ok, probing, limited = pipe.execute()
            return bool(ok), bool(probing), bool(limited)

        result: tuple[bool, bool, bool] = self._call(read)
        return result

    def acquire_probe(self, entry: str, token: str, lease_ms: int) -> bool:
        key = self._key("probe", entry)
        return bool(self._call(lambda: self._client.set(key, token, px=lease_ms, nx=True)))

    def release_probe(self, entry: str, token: str) -> None:
        self._call(self._release, [self._key("probe", entry)], [token])

    def mark_answered(self, entry: str, seconds: int) -> None:
        key = self._key("ok", entry)
        self._call(lambda: self._client.set(key, b"1", ex=seconds))

    # ---- session records -------------------------------------------------------------------------
    def put_record(self, session_id: str, blob: bytes) -> None:
        self._call(self._client.set, self._key("session", session_id), blob, self.config.ttl)

    def get_record(self, session_id: str) -> bytes | None:
        value = self._call(self._client.get, self._key("session", session_id))
        return bytes(value) if value is not None else None

    def record_source(self, session_id: str) -> str:
        return f"{self.config.display} key {self._key('session', session_id)}"

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass
