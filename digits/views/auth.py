"""Signing in and out, sessions and API tokens, CSRF checks, and who may change a job.

--auth none keeps DIGITS' username-only sign-in (loopback servers only); --auth password checks accounts
(digits/accounts.py). Scripts send `Authorization: Bearer <token>` instead of a cookie.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from digits.accounts import USERNAME_RE
from digits.audit import audit
from digits.views.errors import FormErrors, Unauthorized, wants_json

bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "auth.logout", "static"}
# Answers anonymous callers too, with no jobs in it: the version check and readiness probe of scripts.
PROBE_ENDPOINTS = {"console.home_json"}


class SignedIn(UserMixin):
    def __init__(self, username: str, is_admin: bool = False):
        self.id = username
        self.is_admin = is_admin


def _accounts():
    return current_app.extensions["digits"].accounts


def _password_mode() -> bool:
    return current_app.config["DIGITS_SETTINGS"].auth == "password"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf = CSRFProtect(app)

    @manager.user_loader
    def load_user(user_id: str):
        if not _password_mode():
            return SignedIn(user_id)
        accounts = _accounts()
        if user_id not in dict(accounts.list()):
            return None  # the account was removed: the session ends
        return SignedIn(user_id, accounts.is_admin(user_id))

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
        if (
            _password_mode()
            and not current_user.is_authenticated
            and request.endpoint not in OPEN_ENDPOINTS
            and request.endpoint not in PROBE_ENDPOINTS
        ):
            if wants_json() or bearer_token() or request.path.startswith("/socket.io"):
                raise Unauthorized(
                    "sign in first: POST /login with username and password, or send 'Authorization: Bearer <token>'"
                )
            return redirect(url_for("auth.login", next=request.full_path))
        # A POST from a browser page (it says so with Origin, Referer or Sec-Fetch-Site) must carry the form's
        # CSRF token. Scripts (curl, requests) send none of those headers and cannot be tricked by another site;
        # JSON twins and token-authenticated calls are for them. Browsers also withhold the SameSite=Lax
        # session cookie from cross-site POSTs, so a forged JSON call arrives signed out.
        if (
            request.method == "POST"
            and from_browser()
            and not request.path.endswith("/json")
            and not bearer_token()
            and request.endpoint not in OPEN_ENDPOINTS
            and request.endpoint is not None
        ):
            csrf.protect()
        return None


def from_browser() -> bool:
    return any(h in request.headers for h in ("Origin", "Referer", "Sec-Fetch-Site"))


def current_username() -> str | None:
    return current_user.get_id() if current_user.is_authenticated else None


def is_admin() -> bool:
    return bool(current_user.is_authenticated and getattr(current_user, "is_admin", False))


def _safe_next(target: str | None) -> str:
    """Only local paths, so a login link cannot send a person to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.home")


def _refuse(errors: dict[str, list[str]], username: str):
    if wants_json():
        raise FormErrors(errors)
    return render_template(
        "auth/login.html",
        next=request.form.get("next", ""),
        errors=errors,
        username=username,
        password_mode=_password_mode(),
    ), 400


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template(
            "auth/login.html", next=request.args.get("next", ""), errors={}, password_mode=_password_mode()
        )
    username = (request.form.get("username") or "").strip()
    if not USERNAME_RE.match(username):
        return _refuse(
            {"username": ["Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit."]}, username
        )
    is_admin_user = False
    if _password_mode():
        found = _accounts().verify(username, request.form.get("password") or "")
        if found is None:
            audit("login_failed", user=username)
            if wants_json():
                raise Unauthorized("wrong username or password")
            return _refuse({"password": ["Wrong username or password."]}, username)
        is_admin_user = found[1]
    session.clear()
    login_user(SignedIn(username, is_admin_user))
    audit("login", user=username)
    if wants_json():
        return jsonify({"username": username})
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    user = current_username()
    logout_user()
    session.clear()
    if wants_json():
        return jsonify({"username": user, "signed_out": True})
    return redirect(url_for("console.home"))
