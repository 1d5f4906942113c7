"""Sign in and out. For now DIGITS' username-only login; passwords and tokens arrive with the team server."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for

from digits.views.common import current_user
from digits.views.errors import FormErrors, wants_json

bp = Blueprint("auth", __name__)
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _safe_next(target: str | None) -> str:
    """Only local paths, so a login link cannot send a person to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("auth/login.html", next=request.args.get("next", ""), errors={})
    username = (request.form.get("username") or "").strip()
    if not USERNAME_RE.match(username):
        errors = {"username": ["Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit."]}
        if wants_json():
            raise FormErrors(errors)
        return render_template(
            "auth/login.html", next=request.form.get("next", ""), errors=errors, username=username
        ), 400
    session.clear()
    session["username"] = username
    if wants_json():
        return jsonify({"username": username})
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    user = current_user()
    session.clear()
    if wants_json():
        return jsonify({"username": user, "signed_out": True})
    return redirect(url_for("console.home"))
