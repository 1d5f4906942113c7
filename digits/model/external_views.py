"""External runs over REST: a script creates a run, logs points, beats and finishes; the run's page and JSON twin.

Any language can call these (see docs/API.md); digits/client.py is the Python client. Only the run's owner (or an
admin) logs to it, as only a job's owner changes it.
"""

from __future__ import annotations

import math

from flask import Blueprint, Flask, current_app, jsonify, render_template, request, url_for

from digits.errors import FormErrors, NotFound
from digits.forms import FormReader
from digits.model.chart_args import chart_args
from digits.model.external import Runs, build_run, is_run
from digits.model.info import chart_json, latest_reported
from digits.model.metric_history import metric_history
from digits.store import JobWriteError
from digits.views.common import audit, job_or_404, require_owner, require_user, workspace
from digits.views.jobs import first_error, storage_error

bp = Blueprint("runs", __name__)
LABELS = {"name": "Name", "notes": "Notes", "epochs": "Epochs", "settings": "Settings", "error": "Error"}
MAX_SETTINGS = 200


def runs() -> Runs:
    return current_app.extensions["digits_runs"]


def run_or_404(job_id: str):
    job = job_or_404(job_id, "model")
    if not is_run(job):
        raise NotFound(f"no external run with id {job_id!r}")
    return job


def _body() -> dict:
    """The JSON object posted, or the form's fields."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise FormErrors({"body": ["expected a JSON object"]}, {"body": "Body"})
        return data
    return request.form.to_dict()


def _settings(value) -> tuple[dict, list[str]]:
    """A run's settings as the script named them: names to numbers, text or booleans (shown and compared)."""
    if value in (None, ""):
        return {}, []
    if not isinstance(value, dict):
        return {}, ["expected an object of names to values"]
    if len(value) > MAX_SETTINGS:
        return {}, [f"at most {MAX_SETTINGS} settings"]
    kept = {}
    for k, v in value.items():
        if not isinstance(v, (str, int, float, bool)) or v is None or len(str(k)) > 100 or len(str(v)) > 1000:
            return {}, [f"{k!r}: each value must be a number, text (up to 1000 characters) or true/false"]
        kept[str(k)] = v
    return kept, []


def urls(job) -> dict:
    return {
        "url": url_for("runs.show", job_id=job.id),
        "json_url": url_for("runs.show_json", job_id=job.id),
        "log_url": url_for("runs.log", job_id=job.id),
        "heartbeat_url": url_for("runs.heartbeat", job_id=job.id),
        "finish_url": url_for("runs.finish", job_id=job.id),
    }


@bp.route("/runs/json", methods=["POST"])
def create():
    """A new external run (JSON: name, optional notes, epochs, settings), Running at once."""
    user = require_user()
    data = _body()
    r = FormReader({k: v for k, v in data.items() if k in ("name", "notes")}, LABELS)
    name = r.text("name", required=True, max_length=200)
    notes = r.text("notes", "", max_length=10_000)
    epochs = data.get("epochs")
    if epochs in ("", None):
        epochs = None
    else:
        try:
            epochs = float(epochs)
            if not math.isfinite(epochs) or epochs <= 0:
                raise ValueError
        except (TypeError, ValueError):
            r.error("epochs", "must be a number above 0 (how many epochs the script will train)")
    settings, problems = _settings(data.get("settings"))
    for problem in problems:
        r.error("settings", problem)
    if r.errors:
        raise FormErrors(r.errors, LABELS)
    ws = workspace()
    job_id = ws.store.reserve()
    job = build_run(job_id, user, name, notes, settings, epochs)
    try:
        with open(ws.store.job_dir(job_id) + "/run.log", "w") as fh:
            fh.write(f"run {name!r} started by {user} from {request.remote_addr}\n")
        runs().add(job)
    except OSError as e:
        ws.store.release(job_id)
        raise storage_error(e, "the run's job.json") from None
    audit("create", job=job, type=job.type)
    # heartbeat_s: a script that makes no call for this long ends in Error.
    answer = {"id": job.id, "name": job.name, "status": job.status.value, "heartbeat_s": runs().heartbeat_s}
    return jsonify({**answer, **urls(job)})


@bp.route("/runs/<job_id>/log", methods=["POST"])
def log(job_id: str):
    """Points: one JSON object, a list of them, or JSON lines; each {epoch and/or step, phase?, name: value...}."""
    job = run_or_404(job_id)
    require_owner(job)
    try:
        count = runs().log(job, request.get_data(cache=False))
    except (OSError, JobWriteError) as e:
        raise storage_error(e, "the run's metrics.jsonl") from None
    return jsonify({"id": job.id, "status": job.status.value, "values": count})


@bp.route("/runs/<job_id>/heartbeat", methods=["POST"])
def heartbeat(job_id: str):
    job = run_or_404(job_id)
    require_owner(job)
    runs().beat(job)
    return jsonify({"id": job.id, "status": job.status.value})


@bp.route("/runs/<job_id>/finish", methods=["POST"])
def finish(job_id: str):
    """The script ended: Done, or Error when it sends {"error": "what went wrong"}."""
    job = run_or_404(job_id)
    require_owner(job)
    data = _body() if request.content_length else {}
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise FormErrors({"error": ["must be text: what went wrong"]}, LABELS)
    error = (error or "").strip()[:10_000]
    runs().finish(job, error or None)
    audit("finish", job=job, status=job.status.value)
    return jsonify({"id": job.id, "status": job.status.value})


def run_json(job, metrics: bool = True) -> dict:
    ext = job.extra.get("external", {})
    error = first_error(job)
    job_dir = workspace().store.job_dir(job.id)
    return {
        "id": job.id,
        "name": job.name,
        "type": job.type,
        "username": job.owner,
        "notes": job.notes,
        "status": job.status.value,
        "error": error["message"] if error else None,
        "creation time": job.created,
        "elapsed": job.elapsed(),
        "progress": round(job.progress, 4),
        "epoch": job.tasks[0].epoch if job.tasks else None,
        "epochs": ext.get("epochs"),
        "x": ext.get("x") or "epoch",
        "settings": ext.get("settings", {}),
        "history": job.history.to_list(),
        "metrics": metric_history(job_dir).as_dict() if metrics else {},
        **urls(job),
    }


@bp.route("/runs/<job_id>/json")
def show_json(job_id: str):
    return jsonify(run_json(run_or_404(job_id)))


@bp.route("/runs/<job_id>/metrics/json")
def metrics_json(job_id: str):
    """The run's charts' points, as /models/<id>/metrics/json gives a model's, with the run's own epochs."""
    job = run_or_404(job_id)
    points, x0, x1 = chart_args(request.args)
    out = chart_json(job, workspace().store.job_dir(job.id), points, x0, x1)
    out["epochs"] = job.extra.get("external", {}).get("epochs")
    return jsonify(out)


@bp.route("/runs/<job_id>")
def show(job_id: str):
    job = run_or_404(job_id)
    job_dir = workspace().store.job_dir(job.id)
    return render_template(
        "runs/show.html",
        job=job,
        info=run_json(job, metrics=False),
        error=first_error(job),
        latest=latest_reported(job_dir),
        charts_endpoint="runs.metrics_json",
        charts_epochs=job.extra.get("external", {}).get("epochs") or "",
    )


def init_app(app: Flask) -> None:
    """The blueprint, and the runs of this server (their heartbeat check starts with the first run)."""
    settings = app.config["DIGITS_SETTINGS"]
    app.extensions["digits_runs"] = Runs(app.extensions["digits"], settings.run_heartbeat_s)
    app.register_blueprint(bp)
