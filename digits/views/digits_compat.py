"""Routes DIGITS 6 clients call, in DIGITS' spelling, over what this server already does.

GET /completed_jobs/json (and /completed_jobs.json)   running and finished jobs, DIGITS' home-table shape
PUT /jobs/<id>                                        job_name and/or job_notes (the owner or an admin)
GET /autocomplete/path?query=/some/pre                paths starting with the query that the folder picker
                                                      may show: {"suggestions": [...]}
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from digits.datapaths import PathRules, expand_home, no_paths_message, path_rules
from digits.errors import ApiError, FormErrors
from digits.forms import FormReader
from digits.job import Job
from digits.offload import off_loop
from digits.status import Status
from digits.views.common import job_or_404, require_owner, workspace
from digits.views.errors import HTTP_STATUS
from digits.views.jobs import rename

bp = Blueprint("digits_compat", __name__)


def json_errors(blueprint: Blueprint | Flask) -> None:
    """Errors of `blueprint`'s routes as JSON {"error": {message, type}} whatever the method, as DIGITS' clients
    read them (a GET from jQuery or a script sends Accept: */*); a page only for a browser that names HTML."""

    def answer(status: int, kind: str, message: str, extra: dict | None = None):
        names_html = any(value == "text/html" and q > 0 for value, q in request.accept_mimetypes)
        if names_html:
            return render_template("error.html", status=status, kind=kind, message=message, extra=extra or {}), status
        return jsonify({"error": {"message": message, "type": kind}, **(extra or {})}), status

    @blueprint.errorhandler(ApiError)
    def api_error(e: ApiError):
        extra = {"errors": e.errors} if isinstance(e, FormErrors) else None
        return answer(HTTP_STATUS.get(e.kind, 400), e.kind, e.message, extra)

    @blueprint.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        return answer(e.code or 500, (e.name or "error").lower().replace(" ", "_"), e.description or e.name)


json_errors(bp)

# The Bootstrap colour DIGITS' home tables give each status.
STATUS_CSS = {
    Status.INITIALIZED: "warning",
    Status.WAITING: "warning",
    Status.RUNNING: "info",
    Status.DONE: "success",
    Status.ABORTED: "default",
    Status.ERROR: "danger",
}
EDIT_LABELS = {"job_name": "Name", "job_notes": "Notes"}
MAX_SUGGESTIONS = 1000


def table_row(job: Job) -> dict:
    """One job as DIGITS' home tables list it: id, name, group, status, status_css, submitted, elapsed,
    progress (whole percent), type, and for models their framework and dataset."""
    row = {
        "id": job.id,
        "name": job.name,
        "group": job.group,
        "username": job.owner,
        "status": job.status.value,
        "status_css": STATUS_CSS.get(job.status, "default"),
        "submitted": job.created,
        "elapsed": job.elapsed() or 0.0,
        "progress": int(round(100 * job.progress)),
        "type": job.category,
    }
    if job.category == "model":
        train = next((t for t in job.tasks if t.kind == "model.train"), None)
        row["framework"] = (train.args.get("framework") if train else None) or "caffe"
        row["dataset_id"] = job.extra.get("dataset_id")
    return row


@bp.route("/completed_jobs/json")
@bp.route("/completed_jobs.json")
def completed_jobs():
    """Running jobs, then finished datasets and models, newest first (DIGITS' /completed_jobs.json)."""
    jobs = sorted(workspace().store.all(), key=lambda j: j.created, reverse=True)
    finished = [j for j in jobs if j.status.is_final]
    return jsonify(
        {
            "running": [table_row(j) for j in jobs if not j.status.is_final],
            "datasets": [table_row(j) for j in finished if j.category == "dataset"],
            "models": [table_row(j) for j in finished if j.category == "model"],
            "pretrained_models": [],
            "model_output_fields": [],
        }
    )


@bp.route("/jobs/<job_id>", methods=["PUT"])
def put_job(job_id: str):
    """Rename a job and/or edit its notes, as DIGITS' job pages do (the owner or an admin only)."""
    job = job_or_404(job_id)
    require_owner(job)
    form = request.form
    if "job_name" not in form and "job_notes" not in form:
        raise FormErrors({"job_name": ["Give job_name and/or job_notes."]}, EDIT_LABELS)
    r = FormReader(form, EDIT_LABELS)
    name = r.text("job_name", required=True, max_length=200) if "job_name" in form else job.name
    notes = r.text("job_notes", "", max_length=10_000) if "job_notes" in form else job.notes
    if r.errors:
        raise FormErrors(r.errors)
    rename(job, name, notes)
    return jsonify({"id": job.id, "name": job.name, "notes": job.notes, "message": f"{job.category} updated."})


def path_suggestions(query: str, rules: PathRules, limit: int = MAX_SUGGESTIONS) -> list[str]:
    """Paths that start with `query` and that the folder picker's rules let a person see: inside the data roots
    (any path when there are none to keep to), never hidden names, never the jobs folder. A folder that is
    missing, unreadable or off limits gives no suggestions, the same answer in every case."""
    folder, prefix = os.path.split(query)
    real_folder = os.path.realpath(folder or os.sep)
    out: list[str] = []
    if rules.roots:  # a data root that starts with what was typed, from a folder above every root
        out += [r for r in rules.roots if r.startswith(query) and not rules.allows(real_folder)]
    if not rules.allows(real_folder) or rules.hides(real_folder):
        return sorted(out)[:limit]
    try:
        with os.scandir(real_folder) as entries:
            for entry in entries:
                if not entry.name.startswith(prefix) or entry.name.startswith("."):
                    continue
                real = os.path.realpath(entry.path)
                if not rules.allows(real) or rules.hides(real):
                    continue
                out.append(os.path.join(folder or os.sep, entry.name))
                if len(out) >= limit:
                    break
    except OSError:
        pass
    return sorted(out)[:limit]


@bp.route("/autocomplete/path")
def autocomplete_path():
    """{"suggestions": [...]}: server paths that start with ?query=, limited to what the folder picker may show."""
    settings = current_app.config["DIGITS_SETTINGS"]
    rules = path_rules(settings)
    if rules.roots == []:
        raise ApiError(no_paths_message(settings))
    query = expand_home(request.args.get("query", ""))
    if "\x00" in query:
        raise ApiError("the query contains a NUL character")
    if not os.path.isabs(query):
        query = os.sep + query  # DIGITS completes absolute paths only
    return jsonify({"suggestions": off_loop(path_suggestions, query, rules)})
