"""A real browser for tests: Debian's Chromium driven by Playwright's async API.

Playwright downloads no browser here: it drives ``/usr/bin/chromium``, which `.ci/run`
installs. When it is missing the test fails saying so (a skipped browser test would let the
consent page go untested). The async API runs on the asyncio loop of the anyio tests.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from playwright.async_api import async_playwright

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Sequence

    from playwright.async_api import Page

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "answer_consent", "browser_page"]

CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = (
    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

ACTION_TIMEOUT_MS = 15_000
"""Bound on each browser action (navigation, click, wait), so a broken page fails fast."""


@asynccontextmanager
async def browser_page() -> AsyncGenerator[Page, None]:
    """A page in a fresh headless Chromium (its own temporary profile); closed after.

    Raises:
        RuntimeError: Chromium is not installed at ``/usr/bin/chromium``.
    """
    if not await anyio.Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)")
    async with async_playwright() as playwright:
        # launch() gives every browser a new temporary user-data-dir and removes it at close.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True)
        try:
            context = await browser.new_context()
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
            yield await context.new_page()
        finally:
            await browser.close()


async def answer_consent(
    page: Page,
    url: str,
    *,
    password: str,
    untick: Sequence[str] = (),
    tick: Sequence[str] = (),
    allow: bool = True,
) -> None:
    """Answer the consent page at ``url`` as its owner would: sign in, change ticks, Allow or Deny.

    ``untick`` and ``tick`` name checkboxes by their label ("All of clock", a tool's title).
    Returns once the button is clicked; the browser then follows the redirect to the app.
    """
    await page.goto(url)
    await page.get_by_label("Owner password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Allow").wait_for()
    for label in untick:
        await page.get_by_label(label, exact=False).uncheck()
    for label in tick:
        await page.get_by_label(label, exact=False).check()
    await page.get_by_role("button", name="Allow" if allow else "Deny").click()
