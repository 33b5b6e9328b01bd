"""Rate limits shared through Redis (``state.redis_url``): the buckets live there, not in the state database.

The same buckets as ``SharedRateLimiter`` keeps in the store, for every process that names the
same Redis, without a database write per limited call. One Lua script (``_ADMIT``, run by
EVALSHA) reads, refills and takes from all of a call's buckets at once; Redis runs a script
alone, so two processes never take the same token. The clock is Redis's own (``TIME``), so
the processes' clocks do not matter. A bucket is a hash under a key naming the SHA-256 of the
principal's key (as the store keeps it) and the tool; it expires when it would be full again,
and a full bucket and none are the same, so Redis holds only the buckets in use and nothing
needs pruning.

The only module that imports ``redis``. Does not: decide who the principal is (the HTTP edge
does), or retry a call Redis could not check (it is refused: ``RateLimitsUnavailable``).
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Final, Self
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator._masking import SecretMasker
from orchestrator.auth._ratelimit import call_limits, limits_set
from orchestrator.errors import RateLimitedError, RateLimitsUnavailable

if TYPE_CHECKING:
    from types import TracebackType

    from orchestrator.config import RateLimitsSpec

__all__ = ["KEY_PREFIX", "RedisRateLimiter", "bucket_key", "shown_redis_url"]

logger = logging.getLogger(__name__)

KEY_PREFIX: Final = "mcp-orchestrator:rate:"
"""What every bucket's key starts with."""

_TIMEOUT: Final = 2.0
"""Seconds a connection, or one answer, may take before the call is refused."""

_MAX_TTL_MS: Final = 3_000_000_000_000
"""A bucket's lifetime at most (about 95 years): a rate so low that refilling takes longer is
kept that long rather than overflowing Redis's expiry time."""

# KEYS: the call's buckets. ARGV: rate and burst of each, in the keys' order.
# Returns the seconds until the call would be admitted, "0" when it was (a string: Redis
# would truncate a Lua number to an integer). Numbers are written with %.17g, which gives the
# same double back when read (tostring keeps only 14 digits).
_ADMIT: Final = """
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local wait = 0
local left, at = {}, {}
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local stored = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens, updated = burst, now
  if stored[1] and stored[2] then
    updated = tonumber(stored[2])
    tokens = math.min(burst, tonumber(stored[1]) + math.max(0, now - updated) * rate)
  end
  wait = math.max(wait, (1 - tokens) / rate)
  left[i] = tokens - 1
  -- A clock behind the one that wrote last adds nothing, and must not count those seconds twice.
  at[i] = math.max(updated, now)
end
if wait > 0 then
  return string.format('%.17g', wait)
end
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', string.format('%.17g', left[i]), 'updated', string.format('%.17g', at[i]))
  local full_in = math.ceil((burst - left[i]) / rate * 1000)
  redis.call('PEXPIRE', key, math.max(1, math.min(full_in, tonumber(ARGV[#ARGV]))))
end
return '0'
"""


def bucket_key(principal_key: str, tool: str | None) -> str:
    """The Redis key of ``principal_key``'s bucket for ``tool`` (``None``: all the principal's calls).

    The principal is kept as the SHA-256 of its key, as the store keeps it, in braces: a Redis
    Cluster puts all of one principal's buckets in one slot, as a script touching several needs.
    """
    digest = hashlib.sha256(principal_key.encode()).hexdigest()
    return f"{KEY_PREFIX}{{{digest}}}:{tool or ''}"


def shown_redis_url(url: str) -> str:
    """``url`` as it may be shown: its password (and a user's password-like name alone) hidden."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    credentials = f"{user}:***" if parts.password is not None else "***"
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path, parts.query, parts.fragment))


def _failure(exc: RedisError) -> str:
    """What went wrong, in words that name no host and quote nothing Redis said."""
    kind = type(exc).__name__
    if isinstance(exc, AuthenticationError):
        return f"Redis refused the credentials ({kind})"
    if isinstance(exc, RedisTimeoutError):
        return f"Redis did not answer in time ({kind})"
    if isinstance(exc, RedisConnectionError):
        return f"Redis cannot be reached ({kind})"
    if isinstance(exc, ResponseError | NoScriptError):
        return f"Redis refused the rate-limit script ({kind})"
    return f"Redis failed ({kind})"


class RedisRateLimiter:
    """Token buckets for the calls of each principal, in all and to each tool, kept in Redis.

    A call is admitted when every bucket that applies to it holds a token, as with
    ``RateLimiter``; tokens are taken only when all of them allow. Use it entered: entering
    connects and loads the script (so a Redis that cannot be used stops serving from starting),
    leaving closes the connections.
    """

    def __init__(self, spec: RateLimitsSpec, url: str) -> None:
        """Limit calls as ``spec`` says, with the buckets in the Redis at ``url``.

        Args:
            spec: The limits (``serve.rate_limits``).
            url: ``redis://`` or ``rediss://``, perhaps with a password; it is never shown.
        """
        self._spec = spec
        self.url = shown_redis_url(url)
        """Where Redis is, its password hidden."""
        password = urlsplit(url).password
        self._masker = SecretMasker([password] if password else [], min_length=1)
        # One retry on a fresh connection and no back-off: a pooled connection that Redis closed
        # (a restart) is replaced at once, and a Redis that is down refuses the call at once. A
        # script whose answer was lost may so run twice: one token too many is taken, never too few.
        # redis-py leaves from_url's **kwargs unannotated.
        self._client = Redis.from_url(  # pyright: ignore[reportUnknownMemberType]
            url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT, retry=Retry(NoBackoff(), 1)
        )
        self._admit = self._client.register_script(_ADMIT)
        self._failing = False

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return limits_set(self._spec)

    async def check(self, principal_key: str, tool: str) -> float | None:
        """Admit one call of ``principal_key`` to ``tool``, or say how long until it would be.

        Returns:
            ``None`` when the call is admitted (a token was taken from each bucket), else the
            seconds until the same call would be admitted (nothing was taken).

        Raises:
            RateLimitsUnavailable: Redis cannot be reached, or refused (nothing was taken).
        """
        limits = call_limits(self._spec, tool)
        if not limits:
            return None
        keys = [bucket_key(principal_key, bucket_tool) for bucket_tool, _ in limits]
        args: list[float | int] = [number for _, limit in limits for number in (limit.rate, limit.burst)]
        args.append(_MAX_TTL_MS)
        try:
            answer: object = await self._admit(keys=keys, args=args)
        except RedisError as exc:
            raise self._unavailable(exc) from None
        if self._failing:
            self._failing = False
            logger.warning("rate limits: Redis at %s answers again", self.url)
        wait = float(answer) if isinstance(answer, bytes | str) else 0.0
        return wait if wait > 0 else None

    async def enforce(self, principal_key: str, tool: str) -> None:
        """Admit one call, as ``check`` does, or refuse it.

        Raises:
            RateLimitedError: A bucket is empty; ``retry_after`` says for how long.
            RateLimitsUnavailable: Redis cannot be reached, or refused (the call is not admitted).
        """
        retry_after = await self.check(principal_key, tool)
        if retry_after is not None:
            raise RateLimitedError(tool, retry_after)

    async def __aenter__(self) -> Self:
        """Connect, and load the script.

        Raises:
            RateLimitsUnavailable: Redis cannot be reached, or refused.
        """
        try:
            await self._client.script_load(_ADMIT)
        except RedisError as exc:
            await self._client.aclose()
            raise self._unavailable(exc) from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connections."""
        await self._client.aclose()

    def _unavailable(self, exc: RedisError) -> RateLimitsUnavailable:
        """The error for ``exc``, logged once each time Redis starts failing (its own words masked)."""
        if not self._failing:
            self._failing = True
            logger.error("rate limits: Redis at %s failed, limited calls are refused: %s", self.url, self._said(exc))
        return RateLimitsUnavailable(self.url, _failure(exc))

    def _said(self, exc: RedisError) -> str:
        return self._masker.mask(f"{type(exc).__name__}: {exc}")
