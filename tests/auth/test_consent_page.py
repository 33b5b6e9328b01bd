"""The consent page, served by uvicorn on 127.0.0.1: in a real Chromium, and form by form over HTTP."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import anyio
import httpx2
import pytest
from playwright.async_api import expect

import tests.browser
from orchestrator.auth._consent import SECURITY_HEADERS, redirect_host
from orchestrator.auth._principal import Grant
from tests.auth.consent_site import PASSWORD, MemoryConsentBackend, serving_consent
from tests.browser import answer_consent, browser_page

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.auth._consent_types import PendingAuthorization
    from tests.auth.consent_site import ConsentSite

pytestmark = pytest.mark.anyio

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, html
    return found.group(1)


async def _signed_in(http: httpx2.AsyncClient, site: ConsentSite, pending: PendingAuthorization) -> str:
    """Sign in over plain HTTP; the consent form's CSRF token."""
    page = await http.get(site.consent_url(pending))
    signed_in = await http.post(
        f"{site.consent}/sign-in",
        data={"request": pending.request_id, "csrf": _csrf(page.text), "password": PASSWORD},
    )
    assert signed_in.status_code == 303
    consent = await http.get(site.consent_url(pending))
    assert "Allow this app to use your tools?" in consent.text
    return _csrf(consent.text)


async def test_the_owner_signs_in_unticks_a_server_and_the_app_gets_a_code_for_exactly_that_grant() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, browser_page() as page:
        pending = backend.add_request(redirect_uri=site.callback, client_name="Example Assistant")
        with anyio.fail_after(45):
            await page.goto(site.consent_url(pending))
            await expect(page.get_by_role("heading", name="Sign in to review a connection")).to_be_visible()
            await expect(page.locator(".client-name")).to_have_text("Example Assistant")
            await page.get_by_label("Owner password").fill("not the password")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_have_text("Wrong password.")

            await page.get_by_label("Owner password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Allow this app to use your tools?")).to_be_visible()
            await expect(page.locator(".client-name")).to_have_text("Example Assistant")
            await expect(page.locator(".host")).to_have_text(redirect_host(site.callback))
            await expect(page.locator("legend")).to_have_text(
                ["Server clock", "Server tickets", "Composite tools workflows"]
            )
            await expect(page.locator(".tool", has_text="Delete a ticket").locator(".badge")).to_have_text(
                "destructive"
            )
            await expect(page.locator(".tool", has_text="List tickets").locator(".badge")).to_have_text("read-only")
            # A new client: every server and every composite ticked, single tools not (their server covers them).
            await expect(page.get_by_label("All of clock")).to_be_checked()
            await expect(page.get_by_label("All of tickets")).to_be_checked()
            await expect(page.get_by_label("Triage")).to_be_checked()
            await expect(page.get_by_label("List tickets")).not_to_be_checked()

            await page.get_by_label("All of tickets").uncheck()
            await page.get_by_label("List tickets").check()
            await page.get_by_role("button", name="Allow").click()
            await site.arrived.wait()
            await page.wait_for_url(f"{site.callback}?**")

    (code,) = backend.codes
    assert site.arrivals == [{"code": code, "state": "st-1"}]
    assert backend.codes[code] == pending.client_id
    assert backend.grants == {pending.client_id: Grant.of({"server:clock", "tool:tickets__list", "tool:triage"})}


async def test_deny_sends_the_browser_back_with_access_denied_and_grants_nothing() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, browser_page() as page:
        pending = backend.add_request(redirect_uri=site.callback)
        with anyio.fail_after(45):
            await answer_consent(
                page, site.consent_url(pending), password=PASSWORD, untick=["All of clock"], allow=False
            )
            await site.arrived.wait()
            await expect(page.locator("body")).to_have_text("back at the app")

    assert site.arrivals == [{"error": "access_denied", "state": "st-1"}]
    assert backend.grants == {}
    assert backend.requests == {}


async def test_posts_without_or_with_a_wrong_csrf_token_are_refused_before_reaching_the_backend() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        page = await http.get(site.consent_url(pending))
        token = _csrf(page.text)
        backend.calls.clear()
        for csrf in ({}, {"csrf": "0" * 64}, {"csrf": token + "0"}):
            refused = await http.post(
                f"{site.consent}/sign-in", data={"request": pending.request_id, "password": PASSWORD, **csrf}
            )
            assert refused.status_code == 403
            assert "This form could not be verified" in refused.text
        # The right token without the cookie it belongs to is refused too.
        async with httpx2.AsyncClient() as stranger:
            refused = await stranger.post(
                f"{site.consent}/sign-in",
                data={"request": pending.request_id, "password": PASSWORD, "csrf": token},
            )
            assert refused.status_code == 403
        assert backend.calls == []

        decide_token = await _signed_in(http, site, pending)
        backend.calls.clear()
        for csrf in ({}, {"csrf": token}, {"csrf": decide_token[:-1]}):
            refused = await http.post(
                f"{site.consent}", data={"request": pending.request_id, "decision": "allow", **csrf}
            )
            assert refused.status_code == 403
        # A token of one request does not answer another.
        other = backend.add_request(redirect_uri=site.callback)
        refused = await http.post(
            f"{site.consent}", data={"request": other.request_id, "decision": "allow", "csrf": decide_token}
        )
        assert refused.status_code == 403
        assert backend.calls == []
        assert backend.grants == {}


async def test_every_response_carries_the_security_headers() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        sign_in = await http.get(site.consent_url(pending))
        stylesheet = await http.get(f"{site.consent}/static/consent.css")
        unknown = await http.get(f"{site.consent}?request=nope")
        forbidden = await http.post(f"{site.consent}", data={"request": pending.request_id})
        csrf = await _signed_in(http, site, pending)
        consent = await http.get(site.consent_url(pending))
        redirect = await http.post(
            f"{site.consent}", data={"request": pending.request_id, "decision": "deny", "csrf": csrf}
        )
    assert (stylesheet.status_code, redirect.status_code) == (200, 303)
    assert stylesheet.headers["content-type"].startswith("text/css")
    for response in (sign_in, stylesheet, unknown, forbidden, consent, redirect):
        for name, value in SECURITY_HEADERS.items():
            if name != "Cache-Control" or response is not stylesheet:
                assert response.headers[name] == value, (response.url, name)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "form-action" not in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"


async def test_the_session_cookie_is_http_only_same_site_lax_scoped_to_the_page_and_secure_when_asked() -> None:
    for secure in (False, True):
        backend = MemoryConsentBackend()
        async with serving_consent(backend, secure_cookies=secure) as site, httpx2.AsyncClient() as http:
            pending = backend.add_request(redirect_uri=site.callback)
            page = await http.get(site.consent_url(pending))
        cookie = page.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path", "samesite", "max-age"} <= attributes
        assert "Path=/consent" in cookie
        assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
        assert ("secure" in attributes) is secure
        assert cookie.startswith("__Secure-") is secure


async def test_an_unknown_or_expired_request_is_a_friendly_400() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        expired = backend.add_request(redirect_uri=site.callback)
        backend.requests[expired.request_id] = replace(expired, expires_at=datetime.now(UTC))
        for url in (f"{site.consent}?request=unknown", f"{site.consent}", site.consent_url(expired)):
            answer = await http.get(url)
            assert answer.status_code == 400
            assert "This request is unknown or has expired" in answer.text
            assert "start the connection again" in answer.text


async def test_a_client_name_is_shown_escaped() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback, client_name='<script>alert(1)</script>"')
        sign_in = await http.get(site.consent_url(pending))
        await _signed_in(http, site, pending)
        consent = await http.get(site.consent_url(pending))
    for page in (sign_in, consent):
        assert "<script" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in page.text


async def test_too_many_wrong_passwords_lock_sign_in_and_the_page_says_until_when() -> None:
    backend = MemoryConsentBackend(max_failures=2, lockout=timedelta(minutes=15))
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        page = await http.get(site.consent_url(pending))
        form = {"request": pending.request_id, "csrf": _csrf(page.text), "password": "guess"}
        first = await http.post(f"{site.consent}/sign-in", data=form)
        assert "Wrong password." in first.text
        assert "locked" not in first.text
        second = await http.post(f"{site.consent}/sign-in", data=form)
        right = await http.post(f"{site.consent}/sign-in", data={**form, "password": PASSWORD})
    assert backend.locked_until is not None
    until = backend.locked_until.strftime("%H:%M UTC")
    for locked in (second, right):
        assert locked.status_code == 200
        assert f"sign-in is locked. Try again in 15 minutes (after {until})" in locked.text
        assert 'role="alert"' in locked.text


async def test_without_an_owner_password_the_page_says_how_to_set_one() -> None:
    backend = MemoryConsentBackend(password=None)
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        page = await http.get(site.consent_url(pending))
        answer = await http.post(
            f"{site.consent}/sign-in",
            data={"request": pending.request_id, "csrf": _csrf(page.text), "password": "anything"},
        )
    assert "No owner password is set" in answer.text
    assert "orchestrator auth set-password" in answer.text


async def test_posted_selectors_outside_the_catalogue_are_never_stored() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        csrf = await _signed_in(http, site, pending)
        posted = ["*", "server:elsewhere", "tool:rm_rf", "server:clock", "tool:tickets__delete", "tickets"]
        answer = await http.post(
            f"{site.consent}",
            content=urlencode(
                [("request", pending.request_id), ("csrf", csrf), ("decision", "allow")]
                + [("grant", selector) for selector in posted]
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{site.callback}?code=")
    assert backend.grants == {pending.client_id: Grant.of({"server:clock", "tool:tickets__delete"})}


async def test_allow_with_nothing_ticked_stores_an_empty_grant() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        csrf = await _signed_in(http, site, pending)
        answer = await http.post(
            f"{site.consent}", data={"request": pending.request_id, "csrf": csrf, "decision": "allow"}
        )
    assert answer.status_code == 303
    assert backend.grants == {pending.client_id: Grant(frozenset())}


async def test_a_returning_client_sees_its_current_grant_ticked() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(
            redirect_uri=site.callback, current_grant=Grant.of({"server:tickets", "tool:clock__now"})
        )
        await _signed_in(http, site, pending)
        consent = await http.get(site.consent_url(pending))
    checked = set(re.findall(r'value="([^"]+)" checked', consent.text))
    assert checked == {"server:tickets", "tool:clock__now"}


async def test_a_forged_or_unsigned_session_cookie_is_not_signed_in() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        page = await http.get(site.consent_url(pending))
        nonce, expires, _, mac = page.cookies["orchestrator-consent"].split(".")
        http.cookies.clear()
        http.cookies.set("orchestrator-consent", f"{nonce}.{expires}.1.{mac}", domain="127.0.0.1", path="/consent")
        promoted = await http.get(site.consent_url(pending))
    assert "Owner password" in promoted.text
    assert "Allow this app" not in promoted.text


async def test_mounted_under_a_prefix_the_page_writes_its_urls_and_cookie_path_under_it() -> None:
    backend = MemoryConsentBackend()
    async with serving_consent(backend, mount="/oauth") as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        page = await http.get(site.consent_url(pending))
        assert 'action="/oauth/consent/sign-in"' in page.text
        assert 'href="/oauth/consent/static/consent.css?v=' in page.text
        assert "Path=/oauth/consent" in page.headers["set-cookie"]
        csrf = await _signed_in(http, site, pending)
        consent = await http.get(site.consent_url(pending))
        assert 'action="/oauth/consent"' in consent.text
        answer = await http.post(
            f"{site.consent}", data={"request": pending.request_id, "csrf": csrf, "decision": "deny"}
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{site.callback}?error=access_denied&state=st-1"


async def test_without_chromium_a_browser_test_fails_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tests.browser, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(RuntimeError, match=r"chromium is missing: install Debian's chromium"):
        async with browser_page():
            pass


class _AnsweredElsewhere(MemoryConsentBackend):
    """A backend whose request is answered (say, in another tab) after the page checked it was open."""

    async def approve(self, request_id: str, grant: Grant) -> str:
        self.requests.pop(request_id, None)
        return await super().approve(request_id, grant)


async def test_a_decision_on_a_request_answered_meanwhile_is_the_friendly_400_not_an_error() -> None:
    backend = _AnsweredElsewhere()
    async with serving_consent(backend) as site, httpx2.AsyncClient() as http:
        pending = backend.add_request(redirect_uri=site.callback)
        csrf = await _signed_in(http, site, pending)
        answer = await http.post(
            f"{site.consent}", data={"request": pending.request_id, "csrf": csrf, "decision": "allow"}
        )
    assert answer.status_code == 400
    assert backend.grants == {}
