"""Routes every job has, whatever its kind: status, JSON, log, abort, delete."""

from __future__ import annotations

import os
import time

from flask import Blueprint, jsonify, redirect, render_template, request, send_file, url_for

from digits.errors import ApiError, Conflict, Forbidden, FormErrors, InsufficientStorage, NotFound, StorageUnavailable
from digits.events import JobStatusChanged
from digits.forms import FormReader
from digits.job import Job
from digits.scheduler import JobInUse
from digits.store import JobWriteError, is_disk_full, write_problem
from digits.views.common import audit, job_or_404, require_owner, workspace
from digits.views.errors import wants_json

bp = Blueprint("jobs", __name__)


@bp.app_template_global()
def job_aborting(job: Job) -> bool:
    """Whether the job's page should read "Aborting…": asked to stop, its workers not ended yet."""
    return not job.status.is_final and workspace().scheduler.aborting(job)


KINDS = "<any(jobs, datasets, models):kind>"
CATEGORY = {"jobs": None, "datasets": "dataset", "models": "model"}


def storage_error(error: OSError, what: str = "a file", folder: str | None = None) -> ApiError:
    """The answer for a write the jobs folder refused: 507 for a full disk, 503 otherwise, naming the file."""
    if isinstance(error, JobWriteError):
        message = error.message
    else:
        message = write_problem(what, error, folder or workspace().store.jobs_dir)
    return (InsufficientStorage if is_disk_full(error) else StorageUnavailable)(message)


def first_error(job: Job) -> dict | None:
    for task in job.tasks:
        if task.error:
            return {"task": task.name, **task.error}
    return None


def status_json(job: Job) -> dict:
    error = first_error(job)
    return {
        "id": job.id,
        "name": job.name,
        "type": job.type,
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "error": error["message"] if error else None,
        "log_tail": error["log_tail"] if error else [],
        "history": job.history.to_list(),
    }


@bp.route(f"/{KINDS}/<job_id>/status")
def status(kind: str, job_id: str):
    return jsonify(status_json(job_or_404(job_id, CATEGORY[kind])))


@bp.route("/jobs/<job_id>/json")
def job_json(job_id: str):
    job = job_or_404(job_id)
    return jsonify({**job.to_dict(), "progress": round(job.progress, 4), "elapsed": job.elapsed()})


@bp.route("/jobs/<job_id>")
def job_page(job_id: str):
    job = job_or_404(job_id)
    return render_template("jobs/show.html", job=job, error=first_error(job))


@bp.route("/jobs/<job_id>/logs/<task_name>")
def task_log(job_id: str, task_name: str):
    job = job_or_404(job_id)
    try:
        task = job.task(task_name)
    except KeyError:
        raise NotFound(f"job {job.id} has no task {task_name!r}") from None
    path = os.path.join(workspace().store.job_dir(job.id), task.log_file)
    if not os.path.isfile(path):
        raise NotFound(f"task {task.name} has not written a log yet")
    return send_file(path, mimetype="text/plain; charset=utf-8", max_age=0)


@bp.route(f"/{KINDS}/<job_id>/abort", methods=["POST"])
def abort(kind: str, job_id: str):
    job = job_or_404(job_id, CATEGORY[kind])
    require_owner(job)
    if job.status.is_final:
        raise Conflict(f"job {job.id} is not running (it is {job.status.value})")
    workspace().scheduler.abort(job)
    audit("abort", job=job)
    if wants_json():
        return jsonify(status_json(job))
    return redirect(request.referrer or url_for("jobs.job_page", job_id=job.id))


def rename(job: Job, name: str, notes: str) -> None:
    """Give a job a new name and notes: audited, saved (or nothing kept), and told to its open pages."""
    ws = workspace()
    old = job.name, job.notes
    try:
        audit("edit", job=job, old_name=job.name, new_name=name)
        job.name, job.notes = name, notes
        ws.store.save(job)
    except OSError as e:
        job.name, job.notes = old  # what could not be saved is not kept
        raise storage_error(e, "the audit log", ws.settings.jobs_path) from None
    ws.bus.publish(JobStatusChanged(job.id, job.status, "edited", job.progress, time.time(), job_name=job.name))


@bp.route(f"/{KINDS}/<job_id>/edit", methods=["POST"])
def edit(kind: str, job_id: str):
    """Rename a job and edit its notes (the owner only)."""
    job = job_or_404(job_id, CATEGORY[kind])
    require_owner(job)
    r = FormReader(request.form)
    name = r.text("name", required=True, max_length=200) if "name" in request.form else job.name
    notes = r.text("notes", "", max_length=10_000) if "notes" in request.form else job.notes
    if r.errors:
        raise FormErrors(r.errors)
    rename(job, name, notes)
    if wants_json():
        return jsonify({"id": job.id, "name": job.name, "notes": job.notes})
    return redirect(request.referrer or url_for("jobs.job_page", job_id=job.id))


@bp.route(f"/{KINDS}/<job_id>", methods=["DELETE"])
@bp.route(f"/{KINDS}/<job_id>/delete", methods=["POST"])
def delete(kind: str, job_id: str):
    job = job_or_404(job_id, CATEGORY[kind])
    require_owner(job)
    try:
        workspace().scheduler.delete(job)
    except JobInUse as e:
        # 403 as DIGITS answered, the jobs in the way named in the message (and listed for scripts).
        if wants_json():
            users = [{"id": j.id, "name": j.name, "type": j.type, "status": j.status.value} for j in e.users]
            return jsonify({"error": {"message": str(e), "type": "forbidden"}, "dependents": users}), 403
        raise Forbidden(str(e)) from None
    audit("delete", job=job)
    if wants_json():
        return jsonify({"id": job.id, "deleted": True})
    return redirect(url_for("console.home"))
