"""The consent page: the owner signs in and ticks what a connecting client may use.

Server-rendered HTML (Jinja2, autoescaped) that works without JavaScript. Owns the page's
routes, its forms and their checks (CSRF token, posted selectors against the catalogue), the
owner's browser session cookie and the security headers. Does not own pending requests, the
owner's password or grants: it asks a ``ConsentBackend`` (the embedded authorization server).

Routes, under ``path`` (default ``/consent``):

- ``GET  {path}?request=ID``: the sign-in form, or the consent form once signed in;
- ``POST {path}/sign-in``: checks the owner password, then back to the consent form (303);
- ``POST {path}``: Allow or Deny, then to the URL the backend returns (303);
- ``GET  {path}/static/consent.css``: the stylesheet (the page allows no other origin).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from orchestrator.auth._consent_session import SIGNED_IN_SECONDS, VISITOR_SECONDS, SessionSigner
from orchestrator.auth._principal import Grant

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from starlette.requests import Request

    from orchestrator.auth._consent_session import BrowserSession
    from orchestrator.auth._consent_types import (
        ConsentBackend,
        ConsentGroup,
        PendingAuthorization,
        SignInResult,
    )

__all__ = ["SECURITY_HEADERS", "consent_routes", "redirect_host"]

SECURITY_HEADERS: Mapping[str, str] = {
    # No form-action: Chromium applies it to the redirect that follows the form's POST, and
    # that redirect goes to the client's redirect URI, on another origin.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" with the
    # page's own form posts, which the HTTP edge's Origin check rightly refuses. The redirect to
    # the client (another origin) still carries no referrer, so the request id does not leak.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
"""Headers on every response of the consent routes."""

_MAX_FORM_BYTES = 64 * 1024
_MAX_REQUEST_ID = 512

_TEMPLATES = Environment(
    loader=PackageLoader("orchestrator.auth", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_STYLESHEET = (resources.files("orchestrator.auth") / "static" / "consent.css").read_bytes()
_STYLESHEET_VERSION = hashlib.sha256(_STYLESHEET).hexdigest()[:12]


def consent_routes(
    backend: ConsentBackend,
    *,
    path: str = "/consent",
    secure_cookies: bool,
    session_key: bytes | None = None,
) -> list[Route]:
    """The consent page's routes, to mount on the HTTP app next to the OAuth routes.

    Args:
        backend: The authorization server's side of the page.
        path: Where the page lives (the authorization endpoint redirects to ``{path}?request=ID``).
        secure_cookies: Mark the session cookie ``Secure`` (when the issuer is https).
        session_key: Key signing session cookies and CSRF tokens (at least 32 bytes); default a
            random one, so sessions end with the process. Replicas behind one URL share a key.

    Raises:
        ValueError: ``path`` does not start with ``/``, or ``session_key`` is too short.
    """
    if not path.startswith("/") or path.rstrip("/") == "":
        raise ValueError(f"consent path {path!r}: must start with '/' and not be '/' itself")
    page = _ConsentPage(
        backend, path=path.rstrip("/"), secure_cookies=secure_cookies, signer=SessionSigner(session_key)
    )
    return [
        Route(page.path, page.show, methods=["GET"]),
        Route(page.path, page.decide, methods=["POST"]),
        Route(f"{page.path}/sign-in", page.sign_in, methods=["POST"]),
        Route(f"{page.path}/static/consent.css", _stylesheet, methods=["GET"]),
    ]


class _BadForm(Exception):
    """A POST body that is not a small urlencoded form."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class _Form:
    fields: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str:
        return next((value for key, value in self.fields if key == name), "")

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]


class _ConsentPage:
    """The handlers, sharing the backend, the signer and the cookie settings.

    Every URL the page writes (form actions, the stylesheet, the cookie's path) starts with
    the request's ``root_path``, so the page works mounted under a prefix or behind a proxy
    that strips one.
    """

    def __init__(self, backend: ConsentBackend, *, path: str, secure_cookies: bool, signer: SessionSigner) -> None:
        self.backend = backend
        self.path = path
        self.secure_cookies = secure_cookies
        self.signer = signer
        # Browsers refuse a __Secure- cookie that is not Secure, so the prefix only comes with it.
        self.cookie_name = "__Secure-orchestrator-consent" if secure_cookies else "orchestrator-consent"

    async def show(self, request: Request) -> Response:
        """GET: the sign-in form, or the consent form for a signed-in owner."""
        base = self._base(request)
        request_id = request.query_params.get("request", "")
        pending = await self._pending(request_id)
        if pending is None:
            return _unknown_request(base)
        session = self._session(request)
        if session is None or not session.signed_in:
            fresh = session is None
            session = session or self.signer.new(signed_in=False, now=time.time())
            response = self._sign_in_page(base, pending, session, result=None)
            if fresh:
                self._set_cookie(response, base, session)
            return response
        return self._consent_page(base, pending, session)

    async def sign_in(self, request: Request) -> Response:
        """POST the owner password: back to the consent form (303), or the sign-in form again."""
        base = self._base(request)
        try:
            form = await _read_form(request)
        except _BadForm as exc:
            return _problem(base, exc.status, "This form could not be read", str(exc))
        request_id = form.get("request")
        session = self._session(request)
        if session is None or not self.signer.csrf_valid(session, "sign-in", request_id, form.get("csrf")):
            return _forbidden(base, request_id)
        pending = await self._pending(request_id)
        if pending is None:
            return _unknown_request(base)
        result = await self.backend.sign_in(form.get("password"))
        if not result.ok:
            return self._sign_in_page(base, pending, session, result=result)
        response = _with_headers(RedirectResponse(_page_url(base, request_id), status_code=303))
        self._set_cookie(response, base, self.signer.new(signed_in=True, now=time.time()))
        return response

    async def decide(self, request: Request) -> Response:
        """POST Allow or Deny: to the URL the backend returns (303)."""
        base = self._base(request)
        try:
            form = await _read_form(request)
        except _BadForm as exc:
            return _problem(base, exc.status, "This form could not be read", str(exc))
        request_id = form.get("request")
        session = self._session(request)
        if (
            session is None
            or not session.signed_in
            or not self.signer.csrf_valid(session, "decide", request_id, form.get("csrf"))
        ):
            return _forbidden(base, request_id)
        pending = await self._pending(request_id)
        if pending is None:
            return _unknown_request(base)
        decision = form.get("decision")
        try:
            if decision == "deny":
                target = await self.backend.deny(request_id)
            elif decision == "allow":
                offered = _selectors(self.backend.catalogue())
                target = await self.backend.approve(
                    request_id, Grant.of(selector for selector in form.get_all("grant") if selector in offered)
                )
            else:
                return _problem(base, 400, "No decision", "Choose Allow or Deny.")
        except LookupError:  # answered (another tab) or expired between the check and the decision
            return _unknown_request(base)
        return _with_headers(RedirectResponse(target, status_code=303))

    def _base(self, request: Request) -> str:
        root_path = str(request.scope.get("root_path", ""))
        return root_path.rstrip("/") + self.path

    async def _pending(self, request_id: str) -> PendingAuthorization | None:
        if not request_id or len(request_id) > _MAX_REQUEST_ID:
            return None
        return await self.backend.pending(request_id)

    def _session(self, request: Request) -> BrowserSession | None:
        return self.signer.decode(request.cookies.get(self.cookie_name), now=time.time())

    def _set_cookie(self, response: Response, base: str, session: BrowserSession) -> None:
        response.set_cookie(
            self.cookie_name,
            self.signer.encode(session),
            max_age=SIGNED_IN_SECONDS if session.signed_in else VISITOR_SECONDS,
            path=base,
            secure=self.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    def _sign_in_page(
        self, base: str, pending: PendingAuthorization, session: BrowserSession, *, result: SignInResult | None
    ) -> Response:
        return _render(
            "sign_in.html",
            stylesheet=_stylesheet_url(base),
            action=f"{base}/sign-in",
            pending=pending,
            host=redirect_host(pending.redirect_uri),
            csrf=self.signer.csrf_token(session, "sign-in", pending.request_id),
            problems=_sign_in_problems(result, now=datetime.now(UTC)),
        )

    def _consent_page(self, base: str, pending: PendingAuthorization, session: BrowserSession) -> Response:
        groups = self.backend.catalogue()
        return _render(
            "consent.html",
            stylesheet=_stylesheet_url(base),
            action=base,
            pending=pending,
            host=redirect_host(pending.redirect_uri),
            csrf=self.signer.csrf_token(session, "decide", pending.request_id),
            groups=groups,
            ticked=_pre_ticked(pending.current_grant, groups),
        )


def _page_url(base: str, request_id: str) -> str:
    return f"{base}?request={quote(request_id, safe='')}"


def _stylesheet_url(base: str) -> str:
    return f"{base}/static/consent.css?v={_STYLESHEET_VERSION}"


def _problem(base: str, status: int, title: str, message: str, *, link: str | None = None) -> Response:
    return _render(
        "problem.html", status=status, stylesheet=_stylesheet_url(base), title=title, message=message, link=link
    )


def _unknown_request(base: str) -> Response:
    return _problem(
        base,
        400,
        "This request is unknown or has expired",
        "Go back to the app you were connecting and start the connection again.",
    )


def _forbidden(base: str, request_id: str) -> Response:
    again = _page_url(base, request_id) if request_id and len(request_id) <= _MAX_REQUEST_ID else None
    return _problem(
        base,
        403,
        "This form could not be verified",
        "It may have expired, or it did not come from this page. Open the page again and retry.",
        link=again,
    )


def redirect_host(redirect_uri: str) -> str:
    """The host (and port, if any) a redirect URI points at; its scheme when it has no host."""
    parts = urlsplit(redirect_uri)
    if not parts.hostname:
        return f"{parts.scheme}:" if parts.scheme else redirect_uri
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def _selectors(groups: Sequence[ConsentGroup]) -> frozenset[str]:
    """Every selector the page offers: each server whole, and each tool."""
    offered: set[str] = set()
    for group in groups:
        if group.kind == "server":
            offered.add(f"server:{group.key}")
        offered.update(f"tool:{tool.name}" for tool in group.tools)
    return frozenset(offered)


def _pre_ticked(current: Grant | None, groups: Sequence[ConsentGroup]) -> frozenset[str]:
    """The client's current grant; for a new client (or one holding everything) every server and composite."""
    if current is not None and not current.everything:
        return current.selectors
    ticked: set[str] = set()
    for group in groups:
        if group.kind == "server":
            ticked.add(f"server:{group.key}")
        else:
            ticked.update(f"tool:{tool.name}" for tool in group.tools)
    return frozenset(ticked)


def _sign_in_problems(result: SignInResult | None, *, now: datetime) -> list[str]:
    if result is None or result.ok:
        return []
    if result.no_password_set:
        return ["No owner password is set. On the server, run: orchestrator auth set-password"]
    if result.locked_until is not None:
        minutes = max(1, math.ceil((result.locked_until - now).total_seconds() / 60))
        until = result.locked_until.astimezone(UTC).strftime("%H:%M UTC")
        plural = "minute" if minutes == 1 else "minutes"
        return [f"Too many wrong passwords: sign-in is locked. Try again in {minutes} {plural} (after {until})."]
    return ["Wrong password."]


async def _read_form(request: Request) -> _Form:
    """The urlencoded body, read up to a size cap (no multipart, no files).

    Raises:
        _BadForm: Not urlencoded, too large, or not UTF-8.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _BadForm(415, "Expected a form (application/x-www-form-urlencoded).")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > _MAX_FORM_BYTES:
            raise _BadForm(413, "The form is too large.")
    try:
        text = body.decode("utf-8")
        fields = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise _BadForm(400, "The form is not UTF-8.") from exc
    return _Form(tuple(fields))


def _render(template: str, *, status: int = 200, **context: object) -> Response:
    html = _TEMPLATES.get_template(template).render(**context)
    return _with_headers(HTMLResponse(html, status_code=status))


def _with_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


async def _stylesheet(request: Request) -> Response:
    """The page's stylesheet; its URL carries a content hash, so it may be cached for good."""
    response = Response(_STYLESHEET, media_type="text/css; charset=utf-8")
    _with_headers(response)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
