"""The home page: every dataset and model, live; and its JSON twin /index/json."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, url_for

from digits import __version__
from digits.job import Job
from digits.views.common import current_user, workspace

bp = Blueprint("console", __name__)


def _ordered(category: str) -> list[Job]:
    """Running and waiting jobs first, then the rest; newest first within each."""
    jobs = [j for j in workspace().store.all() if j.category == category]
    jobs.sort(key=lambda j: j.id, reverse=True)
    jobs.sort(key=lambda j: 0 if j.status.is_active else 1)
    return jobs


def _unreadable() -> list[dict[str, str]]:
    """Job folders whose job.json could not be read at start: shown, never touched."""
    return [{"folder": folder, "reason": reason} for folder, reason in sorted(workspace().store.unreadable.items())]


def _url_if_installed(endpoint: str) -> str | None:
    """The page of a wing, when the wing is installed on this server."""
    return url_for(endpoint) if endpoint in current_app.view_functions else None


@bp.route("/")
def home():
    return render_template(
        "console/home.html",
        datasets=_ordered("dataset"),
        models=_ordered("model"),
        new_dataset_url=_url_if_installed("datasets.new"),
        new_model_url=_url_if_installed("models.new"),
        unreadable=_unreadable(),
    )


bp.add_url_rule("/index", endpoint="index", view_func=home)


@bp.route("/index/json")
def home_json():
    if current_app.config["DIGITS_SETTINGS"].auth == "password" and not current_user():
        # Anonymous callers get the version and no jobs: a readiness probe for scripts and load balancers.
        hint = "sign in to see the jobs: POST /login, or send 'Authorization: Bearer <token>'"
        return jsonify({"version": __version__, "datasets": [], "models": [], "signed_in": False, "message": hint})
    return jsonify(
        {
            "version": __version__,
            "datasets": [j.summary() for j in _ordered("dataset")],
            "models": [j.summary() for j in _ordered("model")],
            "unreadable": _unreadable(),
        }
    )


bp.add_url_rule("/index.json", "home_dot_json", home_json)  # DIGITS' spelling of the twin
