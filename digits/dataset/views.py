"""New Dataset > Images > Classification: the form, its JSON twin, and the dataset page."""

from __future__ import annotations

import os

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, send_file, url_for

from digits.datapaths import path_rules
from digits.dataset import DATASET_TYPE
from digits.dataset.forms import DatasetForm, attach_unpacked, pending_zips, read_dataset_form
from digits.dataset.info import dataset_json
from digits.errors import FormErrors, NotFound
from digits.folders import file_in
from digits.folders.dataset import LABELS, MEAN, MEAN_PNG, UPLOAD_DIR
from digits.job import Job, Task
from digits.offload import off_loop
from digits.uploads import UploadRefused, ZipLimits, extract_zip, save_upload
from digits.views.common import audit, current_user, job_or_404, require_user, workspace
from digits.views.errors import wants_json
from digits.views.jobs import first_error, storage_error

bp = Blueprint("datasets", __name__)
ZIP_FIELDS = {"train": "folder_train_zip", "val": "folder_val_zip", "test": "folder_test_zip"}


def build_job(form: DatasetForm, owner: str, job_id: str, values: dict) -> Job:
    """A dataset job: parse the sources, then one create-db task per split, each after the one before."""
    settings = current_app.config["DIGITS_SETTINGS"]
    # The parse worker reads only what the form could name (the data roots, never the jobs folder) plus
    # this job's own upload folder; see digits.dataset.parse.ReadRules.
    parse_args = {**form.parse_args(), **path_rules(settings).to_args(), "wanted_splits": form.splits}
    tasks = [Task("parse_folder" if form.method == "folder" else "parse_lists", "dataset.parse", parse_args)]
    for split in form.splits:
        tasks.append(
            Task(
                f"create_db_{split}",
                "dataset.create_db",
                {"split": split, "image": form.image_settings(), "max_image_pixels": settings.max_image_pixels},
                depends_on=[tasks[-1].name],
            )
        )
    return Job(
        id=job_id,
        type=DATASET_TYPE,
        category="dataset",
        name=form.dataset_name,
        owner=owner,
        group=form.group_name,
        form=values,
        tasks=tasks,
        extra={"image": form.image_settings(), "splits": form.splits},
    )


def _unpack_zips(form: DatasetForm, job_dir: str, limits: ZipLimits) -> dict[str, str]:
    """Unpack the form's zips of class folders into the job folder, one after another off the event loop:
    {split: folder}. FormErrors names the zip's field when one is refused."""
    folders = {}
    for split in pending_zips(form):
        field_name = ZIP_FIELDS[split]
        upload = request.files[field_name]
        target = os.path.join(job_dir, UPLOAD_DIR, split)
        try:
            folders[split] = off_loop(extract_zip, upload.stream, target, limits)
        except UploadRefused as e:
            raise FormErrors({field_name: [f"{upload.filename}: {e}"]}) from None
        except OSError as e:
            raise storage_error(e, f"the files of {upload.filename}", job_dir) from None
    return folders


def _save_lists(form: DatasetForm, job_dir: str, max_bytes: int) -> None:
    for field_name, (storage, name) in form.uploads.items():
        try:
            save_upload(storage, os.path.join(job_dir, name), max_bytes)
        except UploadRefused as e:
            raise FormErrors({field_name: [str(e)]}) from None
        except OSError as e:
            raise storage_error(e, storage.filename or name, job_dir) from None


def create_from_request() -> Job:
    """Check the submitted form and start the job; FormErrors when anything is wrong (nothing is kept then).

    The fields come first, so a bad form costs nothing; then the job's folder is made (exclusively: an id
    another job holds is never shared); then zips are judged by their headers and unpacked off the event loop.
    Whatever fails, only the folder this request made is removed.
    """
    owner = require_user()
    settings = current_app.config["DIGITS_SETTINGS"]
    ws = workspace()
    zip_splits = {s for s, f in ZIP_FIELDS.items() if request.files.get(f) and request.files[f].filename}
    form, errors = read_dataset_form(request.form, request.files, settings, zip_splits=zip_splits)
    if errors:
        raise FormErrors(errors)
    try:
        job_id = ws.store.reserve()
    except OSError as e:
        raise storage_error(e) from None
    job_dir = ws.store.job_dir(job_id)
    try:
        folders = _unpack_zips(form, job_dir, ZipLimits.from_settings(settings))
        errors = attach_unpacked(form, folders, ZIP_FIELDS)
        if errors:
            raise FormErrors(errors)
        _save_lists(form, job_dir, settings.max_content_length)
        job = build_job(form, owner, job_id, dict(request.form.items()))
        try:
            ws.add_job(job)
        except OSError as e:
            raise storage_error(e) from None
    except BaseException:
        ws.store.release(job_id)
        raise
    audit("create", job=job)
    return job


@bp.route("/datasets/images/classification/new")
def new():
    if not current_user():
        return redirect(url_for("auth.login", next=request.full_path))
    return render_template("datasets/new.html", values={}, errors={})


@bp.route("/datasets/images/classification", methods=["POST"])
def create():
    try:
        job = create_from_request()
    except FormErrors as e:
        if wants_json():
            raise
        return render_template("datasets/new.html", values=request.form, errors=e.errors), 400
    if wants_json():
        return jsonify({"id": job.id, "name": job.name, "status": job.status.value})
    return redirect(url_for("datasets.show", job_id=job.id))


bp.add_url_rule("/datasets/images/classification/json", "create_json", create, methods=["POST"])


@bp.route("/datasets/<job_id>")
def show(job_id: str):
    job = job_or_404(job_id, "dataset")
    job_dir = workspace().store.job_dir(job.id)
    info = dataset_json(job, job_dir)
    return render_template(
        "datasets/show.html",
        job=job,
        info=info,
        error=first_error(job),
        labels=info["labels"],  # dataset_json read the labels and stats already
        stats=info["stats"],
    )


@bp.route("/datasets/<job_id>/json")
def show_json(job_id: str):
    job = job_or_404(job_id, "dataset")
    info = dataset_json(job, workspace().store.job_dir(job.id))
    error = first_error(job)
    info["error"] = error["message"] if error else None
    return jsonify(info)


SERVED = {MEAN_PNG: "image/png", LABELS: "text/plain; charset=utf-8", MEAN: "application/octet-stream"}


@bp.route(f"/datasets/<job_id>/<any({', '.join(map(repr, SERVED))}):name>")
def job_file(job_id: str, name: str):
    job = job_or_404(job_id, "dataset")
    path = file_in(workspace().store.job_dir(job.id), name)
    if path is None:
        raise NotFound(f"dataset {job.id} has no {name} (yet)")
    return send_file(path, mimetype=SERVED[name], max_age=0, as_attachment=name == MEAN)
