"""Continuous, bounded draining of a stdio child's stderr into our log.

A child that writes megabytes to stderr must never block on a full pipe, and must never
make us hold megabytes either: lines are logged (truncated, rate-limited, with configured
secret values masked) and only a bounded tail is kept for error reports.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import anyio

from orchestrator._masking import SecretMasker

if TYPE_CHECKING:
    from anyio.abc import ByteReceiveStream

__all__ = ["StderrDrain"]

_MAX_LINE_CHARS = 2000
_LINES_PER_SECOND = 50


class StderrDrain:
    """Reads a child's stderr stream to its end, logging it and keeping a bounded tail."""

    def __init__(self, server: str, masker: SecretMasker | None = None, tail_bytes: int = 65536) -> None:
        self._logger = logging.getLogger(f"orchestrator.downstream.{server}")
        self._masker = masker or SecretMasker(())
        self._tail: deque[str] = deque()
        self._tail_size = 0
        self._tail_limit = tail_bytes
        self._partial = b""
        self._window_start = 0.0
        self._window_lines = 0
        self._suppressed = 0

    def tail(self) -> str:
        """The last (at most ``tail_bytes``) characters the child wrote to stderr, secrets masked."""
        return "".join(self._tail)

    async def run(self, stream: ByteReceiveStream) -> None:
        """Read ``stream`` until it ends; a broken stream just ends the drain."""
        try:
            async for chunk in stream:
                self._feed(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            if self._partial:
                self._emit(self._partial)
                self._partial = b""
            self._flush_suppressed()

    def _feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *lines, rest = data.split(b"\n")
        # A line with no newline in sight is emitted in pieces, so memory stays bounded.
        if len(rest) > _MAX_LINE_CHARS * 4:
            lines.append(rest)
            rest = b""
        self._partial = rest
        for line in lines:
            self._emit(line)

    def _emit(self, raw: bytes) -> None:
        text = self._masker.mask(raw.decode("utf-8", errors="replace").rstrip("\r"))
        if len(text) > _MAX_LINE_CHARS:
            text = text[:_MAX_LINE_CHARS] + f"... [{len(text) - _MAX_LINE_CHARS} more characters]"
        self._remember(text + "\n")
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._flush_suppressed()
            self._window_start = now
            self._window_lines = 0
        self._window_lines += 1
        if self._window_lines <= _LINES_PER_SECOND:
            self._logger.info("stderr: %s", text)
        else:
            self._suppressed += 1

    def _flush_suppressed(self) -> None:
        if self._suppressed:
            self._logger.info("stderr: %d more lines not logged (rate limit)", self._suppressed)
            self._suppressed = 0

    def _remember(self, text: str) -> None:
        self._tail.append(text)
        self._tail_size += len(text)
        while self._tail_size > self._tail_limit and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft())
