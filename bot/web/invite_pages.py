"""The invitation page: `GET /invite/<token>` shows it, `POST /invite/<token>` accepts it.

What each state shows is decided in bot/invitations.py; this module handles HTTP: the CSRF
check, the security headers, rendering. Server-side templates only, no JavaScript.

CSRF and the page token: the form carries `issued.mac`, an HMAC over (invitation token, a
random nonce kept in a SameSite=Strict cookie, issue time, the client's key). A POST needs the
cookie, a matching MAC, the same client that opened the page and a form younger than
FORM_MAX_AGE; anything else compares no address, counts nothing and shows the form again.
So every guess needs a fresh page, from the client whose attempts it is counted against.

The client is REMOTE_ADDR: X-Forwarded-For is not trusted (anyone could send one to escape
the per-client lock-out). Behind a reverse proxy, configure the WSGI server to set
REMOTE_ADDR from the proxy's header (waitress `trusted_proxy`), never this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from bot.clock import Clock
from bot.i18n import LANGUAGES, from_accept_language, html_lang, install_jinja, use
from bot.invitations import (
    CUSTOMER,
    Branding,
    Invitation,
    Invitations,
    InviteState,
    derive_key,
    page_for,
)
from bot.service import PreregistrationService
from bot.settings import Settings

log = logging.getLogger(__name__)

CSRF_COOKIE = "invite_csrf"
FORM_MAX_AGE_SECONDS = 30 * 60
MAX_EMAIL_CHARS = 320

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def content_security_policy(logo_url: str | None) -> str:
    """The page policy, letting the vendor's logo (VENDOR_LOGO_URL) load from its origin."""
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    if not logo_url:
        return policy
    parts = urlsplit(logo_url)
    return policy.replace("img-src 'self'", f"img-src 'self' {parts.scheme}://{parts.netloc}")


DECLINE_PURPOSE = "|not-me"
"""Appended to the token the "this wasn't me" form is signed for: an acceptance form's field
does not work there, nor the other way round."""


class FormGuard:
    """Signs and checks the hidden CSRF field of one invitation's form."""

    def __init__(self, secret: str, now: Callable[[], datetime]) -> None:
        self._key = derive_key(secret, "invitation-form")
        self._now = now

    def _mac(self, token: str, nonce: str, issued: int, client: str) -> str:
        text = f"{token}|{nonce}|{issued}|{client}"
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, token: str, nonce: str, client: str) -> str:
        issued = int(self._now().timestamp())
        return f"{issued}.{self._mac(token, nonce, issued, client)}"

    def check(self, token: str, nonce: str | None, field: str | None, client: str) -> bool:
        if not nonce or not field or "." not in field:
            return False
        issued_text, mac = field.split(".", 1)
        if not issued_text.isdigit():
            return False
        issued = int(issued_text)
        age = self._now().timestamp() - issued
        if not -300 <= age <= FORM_MAX_AGE_SECONDS:
            return False
        expected = self._mac(token, nonce, issued, client)
        return hmac.compare_digest(mac.encode(), expected.encode())


def invite_blueprint(
    service: PreregistrationService,
    settings: Settings,
    clock: Clock,
    notices_recorded: Callable[[], None],
) -> Blueprint:
    """`notices_recorded` is called after an acceptance recorded notices (wakes delivery)."""
    invitations = Invitations(service, settings.invite_secret, settings.public_base_url)
    guard = FormGuard(settings.invite_secret or "", clock.now)
    secure_cookie = (settings.public_base_url or "").startswith("https://")
    bp = Blueprint(
        "invite",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/invite-assets",
    )

    branding = Branding.from_settings(settings)
    csp = content_security_policy(branding.logo_url)
    bp.record_once(lambda state: install_jinja(state.app.jinja_env))

    def chosen_language() -> str | None:
        """The language the reader picked with the switch (`?lang=`), which the forms carry
        on in a hidden field and the redirect after them in its query string."""
        chosen = request.args.get("lang") or request.form.get("lang")
        return chosen if chosen in LANGUAGES else None

    def language() -> str:
        """The reader's choice, else the browser's Accept-Language."""
        return chosen_language() or from_accept_language(request.headers.get("Accept-Language"))

    def switch_links(token: str) -> list[tuple[str, str, str]]:
        """(code, name, link) of each language: this page again (a form's page as a fresh
        GET of the same address), in that language, the token kept."""
        endpoint = request.endpoint or "invite.invitation"
        return [
            (code, name, url_for(endpoint, token=token, lang=code))
            for code, name in LANGUAGES.items()
        ]

    def client() -> str:
        return invitations.client_of(request.remote_addr)

    def render(token: str, invitation: Invitation, email: str = "", status: int | None = None):
        with use(language()):
            return render_in_language(token, invitation, email, status)

    def render_in_language(token: str, invitation: Invitation, email: str, status: int | None):
        page = page_for(invitation)
        nonce = request.cookies.get(CSRF_COOKIE) or ""
        if len(nonce) != 22:
            nonce = secrets.token_urlsafe(16)
        signed_for = token + DECLINE_PURPOSE if page.decline_form else token
        with_form = page.show_form or page.decline_form
        view = invitation.preregistration
        html = render_template(
            "invite_page.html",
            page=page,
            brand=branding.localised(),
            lang=language(),
            chosen_lang=chosen_language(),
            html_lang=html_lang(),
            languages=switch_links(token),
            partner_contact=view.partner_contact_email if view is not None else None,
            action=url_for(
                "invite.decline" if page.decline_form else "invite.invitation", token=token
            ),
            decline_link=url_for("invite.confirm_decline", token=token),
            csrf=guard.issue(signed_for, nonce, client()) if with_form else "",
            email=email,
        )
        response = Response(html, status=status or page.http_status, mimetype="text/html")
        response.headers["Content-Language"] = html_lang()
        if with_form:
            response.set_cookie(
                CSRF_COOKIE,
                nonce,
                max_age=FORM_MAX_AGE_SECONDS,
                path="/invite/",
                secure=secure_cookie,
                httponly=True,
                samesite="Strict",
            )
        return response

    def refused(token: str, invitation: Invitation) -> None:
        """One log line per refused visit or form: which invitation, why, from where."""
        view = invitation.preregistration
        log.warning(
            "invitation page refused %s %s… (preregistration %s): %s, from %s",
            request.method,
            token[:12],
            view.id if view is not None else "-",
            invitation.state.value,
            request.remote_addr,
        )

    def form_checked(token: str, signed_for: str) -> bool:
        nonce, field = request.cookies.get(CSRF_COOKIE), request.form.get("csrf")
        return guard.check(signed_for, nonce, field, client())

    @bp.get("/invite/<token>")
    def invitation(token: str) -> Response:
        found = invitations.resolve(token)
        if found.state in (InviteState.FORGED, InviteState.UNKNOWN):
            refused(token, found)
        return render(token, found)

    @bp.post("/invite/<token>")
    def accept(token: str) -> Response:
        email = request.form.get("email", "")[:MAX_EMAIL_CHARS]
        invitation = invitations.resolve(token)
        if invitation.state is not InviteState.VALID:
            refused(token, invitation)
            return render(token, invitation)
        if not form_checked(token, token):
            form_expired = Invitation(InviteState.FORM_EXPIRED, invitation.preregistration)
            refused(token, form_expired)
            return render(token, form_expired, email)
        outcome = invitations.accept(token, email, client())
        if outcome.state is InviteState.ASSOCIATED or outcome.notified:
            notices_recorded()
        if outcome.state is InviteState.ASSOCIATED:
            # POST/redirect/GET: one success page, which a reload does not turn into an error
            return redirect(
                url_for("invite.accepted", token=token, lang=chosen_language()), code=303
            )
        refused(token, outcome)
        keep = email if outcome.state is InviteState.MISMATCH else ""
        return render(token, outcome, keep)

    @bp.get("/invite/<token>/accepted")
    def accepted(token: str) -> Response:
        found = invitations.resolve(token)
        if found.state is InviteState.USED:
            return render(token, Invitation(InviteState.ASSOCIATED, found.preregistration))
        return render(token, found)

    @bp.get("/invite/<token>/not-me")
    def confirm_decline(token: str) -> Response:
        """The email's "this wasn't me" link: a page asking to confirm, never a change."""
        found = invitations.resolve(token)
        if found.state is InviteState.VALID:
            return render(token, Invitation(InviteState.DECLINE, found.preregistration))
        if found.state in (InviteState.FORGED, InviteState.UNKNOWN):
            refused(token, found)
        return render(token, found)

    @bp.post("/invite/<token>/not-me")
    def decline(token: str) -> Response:
        found = invitations.resolve(token)
        if found.state is not InviteState.VALID:
            refused(token, found)
            return render(token, found)
        if not form_checked(token, token + DECLINE_PURPOSE):
            again = Invitation(InviteState.DECLINE, found.preregistration)
            refused(token, Invitation(InviteState.FORM_EXPIRED, found.preregistration))
            return render(token, again, status=400)
        outcome = invitations.decline(token)
        if outcome.notified:
            notices_recorded()
        if outcome.state is InviteState.DECLINED:
            return redirect(
                url_for("invite.withdrawn", token=token, lang=chosen_language()), code=303
            )
        return render(token, outcome)

    @bp.get("/invite/<token>/withdrawn")
    def withdrawn(token: str) -> Response:
        found = invitations.resolve(token)
        view = found.preregistration
        if found.state is InviteState.DELETED and view is not None and view.deleted_by == CUSTOMER:
            return render(token, Invitation(InviteState.DECLINED, view))
        return render(token, found)

    @bp.app_errorhandler(404)
    @bp.app_errorhandler(405)
    def not_an_invitation(error: HTTPException) -> Response | HTTPException:
        """A mangled address under /invite/ (no such page, or a method no page takes) gets
        the page for a link copied incompletely, in the reader's language, not Flask's
        English error page; elsewhere Flask's answer stands."""
        if not request.path.startswith("/invite/"):
            return error
        with use(language()):
            html = render_template(
                "invite_page.html",
                page=page_for(Invitation(InviteState.FORGED)),
                brand=branding.localised(),
                lang=language(),
                chosen_lang=chosen_language(),
                html_lang=html_lang(),
                languages=[
                    (code, name, f"{quote(request.path)}?lang={code}")
                    for code, name in LANGUAGES.items()
                ],
                partner_contact=None,
                action="",
                decline_link="",
                csrf="",
                email="",
            )
            response = Response(html, status=error.code, mimetype="text/html")
            response.headers["Content-Language"] = html_lang()
        if error.code == 405:
            response.headers["Allow"] = ", ".join(error.valid_methods or ())  # type: ignore[attr-defined]
        return security_headers(response)

    @bp.after_request
    def security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = csp
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
            response.vary.add("Accept-Language")
        return response

    return bp
