"""Upload a pretrained model: GET /pretrained_models/new (the page) and POST /pretrained_models/new (DIGITS 6's
route; /pretrained_models/new/json is its JSON twin)."""

from __future__ import annotations

import os

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from digits.errors import Forbidden, FormErrors
from digits.model.info import model_json
from digits.model.pretrained import (
    FIELD_LABELS,
    FRAMEWORK_TITLES,
    IMAGE_TYPES,
    UPLOAD_DIR,
    PretrainedForm,
    build_import_job,
    read_pretrained_form,
)
from digits.model.views import code_refusal
from digits.offload import off_loop
from digits.uploads import UploadRefused, save_upload
from digits.views.common import NOT_KEPT, audit, current_user, require_user, workspace
from digits.views.errors import wants_json
from digits.views.jobs import storage_error

bp = Blueprint("pretrained", __name__)


def posted_values() -> dict[str, str]:
    return {k: v for k, v in request.form.items() if k not in NOT_KEPT}


def _save_uploads(form: PretrainedForm, job_dir: str, max_bytes: int) -> None:
    """Stream each upload into the job's upload/ folder, off the event loop; FormErrors names the field."""
    os.makedirs(os.path.join(job_dir, UPLOAD_DIR), exist_ok=True)
    for upload in form.uploads.values():
        storage = request.files[upload.field]
        try:
            off_loop(save_upload, storage, os.path.join(job_dir, upload.target), max_bytes)
        except UploadRefused as e:
            raise FormErrors({upload.field: [str(e)]}, FIELD_LABELS) from None
        except OSError as e:
            raise storage_error(e, upload.filename, job_dir) from None


def create_from_request():
    owner = require_user()
    ws = workspace()
    values = posted_values()
    form, errors = read_pretrained_form(values, request.files)
    if errors:
        raise FormErrors(errors)
    # A network.py a person wrote, and a TorchScript archive's own compiled code, run in the import and in every
    # later use (classify, fine-tuning): code, which needs the permission to run it.
    if form.format in ("state_dict", "torchscript"):
        refusal = code_refusal()
        if refusal:
            raise Forbidden(refusal)
    try:
        job_id = ws.store.reserve()
    except OSError as e:
        raise storage_error(e) from None
    job_dir = ws.store.job_dir(job_id)
    try:
        _save_uploads(form, job_dir, current_app.config["DIGITS_SETTINGS"].max_content_length)
        job = build_import_job(form, owner, values, job_id)
        try:
            ws.add_job(job)
        except OSError as e:
            raise storage_error(e) from None
    except BaseException:
        ws.store.release(job_id)
        raise
    audit("create", job=job, imported=form.format)
    return job


def render_form(values, errors, status: int = 200):
    page = render_template(
        "pretrained/new.html",
        values=values,
        errors=errors,
        labels=FIELD_LABELS,
        frameworks=FRAMEWORK_TITLES,
        image_types=IMAGE_TYPES,
    )
    return page, status


@bp.route("/pretrained_models/new")
def new():
    if not current_user():
        return redirect(url_for("auth.login", next=request.full_path))
    return render_form(dict(request.args.items()), {})


@bp.route("/pretrained_models/new", methods=["POST"])
def create():
    try:
        job = create_from_request()
    except FormErrors as e:
        if wants_json():
            raise
        return render_form(posted_values(), e.errors, 400)
    if wants_json():
        return jsonify(model_json(job, workspace().store.job_dir(job.id), None, metrics=False))
    return redirect(url_for("models.show", job_id=job.id))


bp.add_url_rule("/pretrained_models/new/json", "create_json", create, methods=["POST"])
bp.add_url_rule("/pretrained_models/new.json", "create_dot_json", create, methods=["POST"])  # DIGITS' spelling
