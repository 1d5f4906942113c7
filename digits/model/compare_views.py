"""Run comparison: GET /models/compare?job_id=A&job_id=B (DIGITS' repeated field; &group=G adds a sweep's models),
its JSON twin /models/compare/json and the table as CSV, /models/compare.csv."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request

from digits.errors import FormErrors, NotFound
from digits.job import Job
from digits.model.chart_args import chart_args
from digits.model.compare import MAX_MODELS, RESULTS, compare_csv, compare_json
from digits.model.sweep_group import group_members
from digits.views.common import job_or_404, job_url, workspace

bp = Blueprint("compare", __name__)
LABELS = {"job_id": "Models", "group": "Sweep group"}


def chosen_models() -> list[Job]:
    """The models ?job_id= names (in that order, each once), then those of each ?group= sweep. Each must be a model
    (404 naming the id, or the group); none at all, or more than MAX_MODELS, is a 400 naming the field."""
    ids = list(dict.fromkeys(i.strip() for i in request.args.getlist("job_id") if i.strip()))
    if len(ids) > MAX_MODELS:
        raise FormErrors({"job_id": [f"at most {MAX_MODELS} models at once ({len(ids)} chosen)"]}, LABELS)
    jobs = {job_id: job_or_404(job_id, "model") for job_id in ids}
    for group in request.args.getlist("group"):
        members = group_members(workspace().store, group.strip())
        if not members:
            raise NotFound(f"no sweep group {group!r}")
        jobs.update((j.id, j) for j in members if j.id not in jobs)
    if not jobs:
        raise FormErrors({"job_id": ["choose the models to compare: ?job_id=ID&job_id=ID (or ?group=SWEEP)"]}, LABELS)
    if len(jobs) > MAX_MODELS:
        raise FormErrors({"job_id": [f"at most {MAX_MODELS} models at once ({len(jobs)} chosen)"]}, LABELS)
    return list(jobs.values())


@bp.route("/models/compare")
def page():
    """The chosen models side by side: the settings that differ, their results (sortable) and their curves."""
    jobs = chosen_models()
    info = compare_json(workspace().store, jobs, points=16)  # the charts fetch their curves from the twin
    urls = {job.id: job_url(job) for job in jobs}  # an external run has a page of its own
    return render_template("models/compare.html", jobs=jobs, info=info, results=RESULTS, urls=urls)


@bp.route("/models/compare/json")
def as_json():
    """The page's JSON twin; ?points=N&from=EPOCH&to=EPOCH as the model's metrics route takes them."""
    jobs = chosen_models()
    points, x0, x1 = chart_args(request.args)
    return jsonify(compare_json(workspace().store, jobs, points, x0, x1))


@bp.route("/models/compare.csv")
def as_csv():
    """The page's table as CSV (a download)."""
    text = compare_csv(compare_json(workspace().store, chosen_models(), points=16))
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="comparison.csv"'
    return response
