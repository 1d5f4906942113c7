"""Signing in and out, sessions and API tokens, CSRF checks, permissions, and who may change a job.

--auth none keeps DIGITS' username-only sign-in (loopback servers only); --auth password checks accounts
(digits/accounts.py): the session cookie names a server-side session row, so signing out, a new password or
removing the user ends it everywhere. Scripts send `Authorization: Bearer <token>` instead of a cookie.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from digits.accounts import USERNAME_RE, password_matches
from digits.errors import Forbidden, FormErrors, Unauthorized
from digits.offload import off_loop
from digits.throttle import LoginThrottle, Refusal
from digits.views.common import audit
from digits.views.common import current_user as current_user_name
from digits.views.errors import names_html, wants_json
from digits.views.guards import UNSAFE_METHODS, cross_origin_refusal

bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "auth.logout", "static"}
# Answers anonymous callers too, with no jobs in it: the version check and readiness probe of scripts.
PROBE_ENDPOINTS = {"console.home_json"}
# The session cookie's key naming the server-side session (password mode).
SESSION_KEY = "digits_sid"
# Password checks at once: each takes an argon2 hash's 64 MiB and a core for a fifth of a second; more would only
# queue inside the CPU, next to the event loop.
HASHING_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)


class SignedIn(UserMixin):
    def __init__(self, username: str, is_admin: bool = False):
        self.id = username
        self.is_admin = is_admin


def _accounts():
    return current_app.extensions["digits"].accounts


def _settings():
    return current_app.config["DIGITS_SETTINGS"]


def _password_mode() -> bool:
    return _settings().auth == "password"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    settings = app.config["DIGITS_SETTINGS"]
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    if settings.session_hours > 0:
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=settings.session_hours)
    app.extensions["digits_login_throttle"] = LoginThrottle(settings.login_max_failures, settings.login_window_s)
    # threading's semaphore is gevent's under the devserver (cooperative), a real one in threaded tests.
    app.extensions["digits_hashing_slots"] = threading.BoundedSemaphore(HASHING_AT_ONCE)
    csrf = CSRFProtect(app)

    @manager.user_loader
    def load_user(user_id: str):
        if not _password_mode():
            return SignedIn(user_id)
        if bearer_token():
            return None  # a request that brings a token is judged by the token alone
        found = _accounts().user_for_session(session.get(SESSION_KEY))
        if found is None or found[0] != user_id:
            return None  # signed out, expired, new password, or the user was removed: the session ended
        return SignedIn(*found)

    @manager.request_loader
    def load_from_token(req):
        token = bearer_token()
        if token and _password_mode():
            found = _accounts().user_for_token(token)
            if found:
                return SignedIn(*found)
        return None

    @app.before_request
    def guard():
        # A browser's state-changing request must come from our own pages, whatever authenticates it (the
        # cookie of a signed-in person, or nothing yet: a forged sign-in). Token calls cannot be forged by a page.
        if request.method in UNSAFE_METHODS and not bearer_token():
            refusal = cross_origin_refusal()
            if refusal:
                raise Forbidden(refusal)
        if _password_mode() and not current_user.is_authenticated and request.endpoint != "static":
            if bearer_token():
                raise Unauthorized(
                    "this API token is unknown, revoked or expired; ask an admin for a new one "
                    "(python -m digits.users token NAME)"
                )
            if request.endpoint not in OPEN_ENDPOINTS and request.endpoint not in PROBE_ENDPOINTS:
                # A form posted by a script (no text/html in its Accept) gets 401 as from DIGITS, not a sign-in page.
                posted_by_script = request.method in UNSAFE_METHODS and not names_html()
                if wants_json() or posted_by_script or request.path.startswith("/socket.io"):
                    raise Unauthorized(
                        "sign in first: POST /login with username and password, or send 'Authorization: Bearer <token>'"
                    )
                return redirect(url_for("auth.login", next=request.full_path))
        # A form posted from a browser page (it says so with Origin, Referer or Sec-Fetch-Site) must also carry
        # the form's CSRF token. Scripts (curl, requests) send none of those headers; JSON twins are for them and
        # for our pages' fetch() calls, which the same-origin check above already covers.
        if (
            request.method == "POST"
            and from_browser()
            and not request.path.endswith("/json")
            and not bearer_token()
            and request.endpoint not in (None, "static")
        ):
            csrf.protect()
        return None


def from_browser() -> bool:
    return any(h in request.headers for h in ("Origin", "Referer", "Sec-Fetch-Site"))


def has_permission(name: str) -> bool:
    """Whether the signed-in person holds a permission (digits.accounts.PERMISSIONS); always on an --auth none
    server, which is one person on their own loopback machine."""
    if not _password_mode():
        return True
    return bool(current_user.is_authenticated and name in _accounts().permissions(current_user.get_id()))


def _safe_next(target: str | None) -> str:
    """Only a path on this server, so a sign-in link cannot send a person to another site.

    Browsers drop tabs and newlines inside URLs and read '\\' as '/', so '/\\t/evil.example' or '/\\\\evil'
    would become '//evil.example': another host. Anything with those, or a scheme or host, goes to the console.
    """
    home = url_for("console.home")
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return home
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return home
    try:
        parts = urlsplit(target)
    except ValueError:
        return home
    if parts.scheme or parts.netloc:
        return home
    return request.script_root + target


def _login_page(status: int = 200, errors: dict[str, list[str]] | None = None, username: str = ""):
    return render_template(
        "auth/login.html",
        next=request.values.get("next", ""),
        errors=errors or {},
        username=username,
        password_mode=_password_mode(),
    ), status


def _refuse(errors: dict[str, list[str]], username: str):
    if wants_json():
        raise FormErrors(errors)
    return _login_page(400, errors, username)


def _throttled(refusal: Refusal, username: str):
    message = f"Too many wrong passwords for this name or from this address; try again in {refusal.retry_after} s."
    if refusal.first:
        audit("login_throttled", user=username, retry_after=refusal.retry_after)
    if wants_json():
        response = jsonify({"error": {"message": message, "type": "too_many_requests"}})
        response.status_code = 429
    else:
        response = current_app.make_response(_login_page(429, {"password": [message]}, username))
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def _check_password(username: str) -> tuple[bool, bool] | Refusal:
    """(right password, is admin), or a Refusal when this name or address is throttled."""
    throttle: LoginThrottle = current_app.extensions["digits_login_throttle"]
    refusal = throttle.begin(username, request.remote_addr)
    if refusal:
        return refusal
    # The lookup on the event loop (SQLAlchemy is not for other threads under gevent); argon2 on a native thread.
    stored, exists, admin = _accounts().password_record(username)
    with current_app.extensions["digits_hashing_slots"]:
        right = off_loop(password_matches, stored, request.form.get("password") or "") and exists
    if right:
        throttle.succeeded(username, request.remote_addr)
    return right, admin


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return _login_page()
    username = (request.form.get("username") or "").strip()
    if not USERNAME_RE.match(username):
        return _refuse(
            {"username": ["Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit."]}, username
        )
    is_admin_user = False
    sid = None
    if _password_mode():
        checked = _check_password(username)
        if isinstance(checked, Refusal):
            return _throttled(checked, username)
        right, is_admin_user = checked
        if not right:
            audit("login_failed", user=username)
            if wants_json():
                raise Unauthorized("wrong username or password")
            return _refuse({"password": ["Wrong username or password."]}, username)
        sid = _accounts().start_session(username, _settings().session_hours)
    session.clear()
    if sid:
        session[SESSION_KEY] = sid
    session.permanent = _settings().session_hours > 0
    login_user(SignedIn(username, is_admin_user))
    audit("login", user=username)
    if wants_json():
        return jsonify({"username": username})
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """POST signs out (ending the server-side session); GET only shows the button, so a link cannot sign out."""
    if request.method == "GET":
        return render_template("auth/logout.html")
    user = current_user_name()
    if _password_mode() and not bearer_token():
        _accounts().end_session(session.get(SESSION_KEY))
    logout_user()
    session.clear()
    if user:
        audit("logout", user=user)
    if wants_json():
        return jsonify({"username": user, "signed_out": True})
    return redirect(url_for("console.home"))
