"""An identity provider's signing keys (its JWKS), fetched over HTTP and cached.

Owns when the key set is fetched: on first use, when it has grown old, and when a token names
a key id the cached set lacks (key rotation). Every fetch, whatever its reason, starts a
cooldown during which no other fetch is made, so a stream of tokens with made-up key ids cannot
hammer the provider; callers that arrive while a fetch is in flight wait for it and share its
result. Fetches are asynchronous, bounded in time and size, and a failed one keeps the keys
already known. Refuses to judge keys: which key fits which algorithm is the verifier's job.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, cast

import anyio
import httpx2

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["JwksCache"]

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1024 * 1024
"""A key set larger than this is refused: real ones are a few kilobytes."""


class JwksFetchError(Exception):
    """The key set could not be fetched or read (kept inside this module: callers see no keys)."""


class JwksCache:
    """The keys of one JWKS URL, by key id.

    Args:
        url: Where the provider publishes its key set.
        cooldown: Seconds after any fetch during which no other fetch is made.
        max_age: Seconds after which a fetched key set is fetched again on next use.
        timeout: Seconds one fetch may take, from connecting to the last byte.
        clock: Monotonic seconds; tests pass their own to step over the cooldown.

    Raises:
        ValueError: ``url`` is not an http(s) URL with a host and a valid port.
    """

    def __init__(
        self,
        url: str,
        *,
        cooldown: float = 30.0,
        max_age: float = 300.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_url(url)
        self._url = url
        self._cooldown = cooldown
        self._max_age = max_age
        self._timeout = timeout
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = anyio.Lock()

    async def key(self, kid: str) -> dict[str, Any] | None:
        """The JWK whose ``kid`` is ``kid``, fetching the key set if it is missing, old or lacks it.

        Returns:
            The key as the provider published it, or ``None`` when the provider has no such key
            (or could not be reached, and no earlier fetch knew it).
        """
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age or kid not in self._keys:
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            # Whoever waited here while another fetch ran shares that fetch's result.
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._cooldown:
                return
            self._last_attempt = now
            try:
                keys = await self._fetch()
            except JwksFetchError as exc:
                logger.warning("JWKS fetch from %s failed: %s; keeping %d known keys", self._url, exc, len(self._keys))
                return
            self._keys = keys
            self._fetched_at = now
            logger.debug("JWKS fetched from %s: %d keys with a kid", self._url, len(keys))

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        body = bytearray()
        try:
            with anyio.fail_after(self._timeout):
                async with (
                    httpx2.AsyncClient() as http,
                    http.stream("GET", self._url, headers={"Accept": "application/json"}) as response,
                ):
                    if response.status_code != 200:
                        raise JwksFetchError(f"HTTP {response.status_code}")
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_JWKS_BYTES:
                            raise JwksFetchError(f"key set larger than {MAX_JWKS_BYTES} bytes")
        except TimeoutError:
            raise JwksFetchError(f"no answer within {self._timeout:g} s") from None
        except httpx2.HTTPError as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from None
        return _keys_by_id(bytes(body))


def _check_url(url: str) -> None:
    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL as exc:
        raise ValueError(f"JWKS URL {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or not 0 < (parsed.port or 443) < 65536:
        raise ValueError(f"JWKS URL {url!r} needs http(s), a host and a valid port")


def _keys_by_id(body: bytes) -> dict[str, dict[str, Any]]:
    try:
        document: object = json.loads(body)
    except ValueError:
        raise JwksFetchError("not JSON") from None
    keys = cast("dict[str, object]", document).get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksFetchError("not a JSON object with a 'keys' list")
    by_id: dict[str, dict[str, Any]] = {}
    for key in cast("list[Any]", keys):
        # A key without a kid cannot be chosen by a token; one that cannot verify is refused later.
        if isinstance(key, dict) and isinstance(kid := cast("dict[str, Any]", key).get("kid"), str):
            by_id[kid] = cast("dict[str, Any]", key)
    return by_id
