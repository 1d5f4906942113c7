"""The LR finder's routes (digits/model/lr_finder.py): start a ramp from the New Model form as it stands, and
follow it.

    POST /models/lr_finder/json        the New Model form's fields -> 202 {"id", "status", "url"}
    GET  /models/lr_finder/<id>/json   {"id", "status", "progress", "points", "suggestion", "stopped", "done", ...}
"""

from __future__ import annotations

import os

from flask import Blueprint, jsonify, url_for

from digits.errors import Conflict, FormErrors, NotFound
from digits.model.forms import FIELD_LABELS, read_model_form
from digits.model.lr_finder import build_lr_finder_job, is_lr_finder, read_result
from digits.model.views import _check_code, posted_values
from digits.offload import off_loop
from digits.status import Status
from digits.views.common import require_user, workspace
from digits.views.jobs import first_error, storage_error

bp = Blueprint("model_lr_finder", __name__)


def _finders_of(owner: str) -> list:
    return [j for j in workspace().store.all() if is_lr_finder(j) and j.owner == owner]


@bp.route("/models/lr_finder/json", methods=["POST"])
def start():
    """Run the LR finder on the posted New Model form (its name may be left empty)."""
    owner = require_user()
    ws = workspace()
    values = dict(posted_values())
    values["model_name"] = values.get("model_name") or "LR finder"
    if values.get("method") == "custom":
        _check_code(values.get("framework"), values.get("custom_network"))
    form, errors = off_loop(read_model_form, values, ws.store, ws.gpus, ws.settings)
    if errors:
        raise FormErrors(errors)
    _check_code(form.settings.framework, form.network_text)
    dataset = ws.store.get(form.dataset_id)
    if dataset.status != Status.DONE:
        why = f"Dataset {dataset.name} is {dataset.status.value}; the LR finder needs its training images."
        raise FormErrors({"dataset": [why]}, FIELD_LABELS)
    mine = _finders_of(owner)
    running = [j for j in mine if not j.status.is_final]
    if running:
        raise Conflict(
            f"Your LR finder ({running[0].id}) is still running; wait for its answer before starting another."
        )
    for old in mine:  # each person keeps their latest answer only
        ws.scheduler.delete(old)
    if form.gpu_ids:
        resources = {"gpu_ids": form.gpu_ids}
    elif form.gpu_count and ws.gpus:
        resources = {"gpu": form.gpu_count}
    else:
        resources = {"cpu": 1}
    try:
        job_id = ws.store.reserve()
    except OSError as e:
        raise storage_error(e) from None
    job = build_lr_finder_job(job_id, owner, form.settings, form.dataset_id, resources)
    try:
        with open(os.path.join(ws.store.job_dir(job_id), form.settings.network_file), "w", encoding="utf-8") as fh:
            fh.write(form.network_text)
        ws.add_job(job)
    except OSError as e:
        ws.store.release(job_id)
        raise storage_error(e, form.settings.network_file) from None
    url = url_for("model_lr_finder.show_json", job_id=job.id)
    return jsonify({"id": job.id, "status": job.status.value, "url": url}), 202


@bp.route("/models/lr_finder/<job_id>/json")
def show_json(job_id: str):
    """Where a ramp is: its status and progress, the points so far and, once done, the suggestion."""
    require_user()
    job = workspace().store.get(job_id)
    if not is_lr_finder(job):
        raise NotFound(f"no LR finder with id {job_id!r}")
    result = off_loop(read_result, workspace().store.job_dir(job.id))
    error = first_error(job)
    return jsonify(
        {
            "id": job.id,
            "status": job.status.value,
            "progress": round(job.progress, 4),
            **result,
            "error": error["message"] if error else None,
        }
    )
