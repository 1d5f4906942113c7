"""New Dataset > Images > Classification: the form, its JSON twin, and the dataset page."""

from __future__ import annotations

import os

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, send_file, url_for

from digits.audit import audit
from digits.datapaths import allowed_roots
from digits.dataset import DATASET_TYPE
from digits.dataset.forms import DatasetForm, read_dataset_form
from digits.dataset.info import dataset_json
from digits.job import Job, Task, new_job_id
from digits.uploads import UploadRefused, extract_zip, remove_tree, save_upload
from digits.views.common import current_user, job_or_404, require_user, workspace
from digits.views.errors import FormErrors, NotFound, wants_json
from digits.views.jobs import first_error

bp = Blueprint("datasets", __name__)
ZIP_FIELDS = {"train": "folder_train_zip", "val": "folder_val_zip", "test": "folder_test_zip"}


def build_job(form: DatasetForm, owner: str, job_id: str, values: dict) -> Job:
    """A dataset job: parse the sources, then one create-db task per split, each after the one before."""
    settings = current_app.config["DIGITS_SETTINGS"]
    parse_args = {**form.parse_args(), "allowed_roots": allowed_roots(settings), "wanted_splits": form.splits}
    tasks = [Task("parse_folder" if form.method == "folder" else "parse_lists", "dataset.parse", parse_args)]
    for split in form.splits:
        tasks.append(
            Task(
                f"create_db_{split}",
                "dataset.create_db",
                {"split": split, "image": form.image_settings()},
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


def _unpack_zips(job_dir: str, max_bytes: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Unpack uploaded zips of class folders into the job folder: ({split: folder}, errors)."""
    folders, errors = {}, {}
    for split, field in ZIP_FIELDS.items():
        upload = request.files.get(field)
        if not upload or not upload.filename:
            continue
        try:
            folders[split] = extract_zip(upload.stream, os.path.join(job_dir, "upload", split), max_bytes)
        except UploadRefused as e:
            errors[field] = [f"{upload.filename}: {e}"]
    return folders, errors


def create_from_request() -> Job:
    """Check the submitted form and start the job; FormErrors when anything is wrong (nothing is kept then)."""
    owner = require_user()
    settings = current_app.config["DIGITS_SETTINGS"]
    store = workspace().store
    job_id = new_job_id()
    job_dir = store.job_dir(job_id)
    try:
        uploaded, errors = _unpack_zips(job_dir, settings.max_unpacked_bytes)
        form, form_errors = read_dataset_form(request.form, request.files, settings, uploaded)
        errors.update(form_errors)
        if errors:
            raise FormErrors(errors)
        for field, storage in form.uploads.items():
            name = "upload_labels.txt" if field == "textfile_labels_file" else f"upload_{field.split('_')[1]}.txt"
            os.makedirs(job_dir, exist_ok=True)
            save_upload(storage, os.path.join(job_dir, name), settings.max_content_length)
        values = {k: v for k, v in request.form.items()}
        job = build_job(form, owner, job_id, values)
        workspace().add_job(job)
        audit("create", job=job)
        return job
    except UploadRefused as e:
        remove_tree(job_dir)
        raise FormErrors({"textfile_train_images": [str(e)]}) from None
    except BaseException:
        remove_tree(job_dir)
        raise


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
        labels=info["labels"],  # dataset_json read labels.txt and stats.json already
        stats=info["stats"],
    )


@bp.route("/datasets/<job_id>/json")
def show_json(job_id: str):
    job = job_or_404(job_id, "dataset")
    info = dataset_json(job, workspace().store.job_dir(job.id))
    error = first_error(job)
    info["error"] = error["message"] if error else None
    return jsonify(info)


@bp.route("/datasets/<job_id>/<any('mean.png', 'mean.binaryproto', 'labels.txt'):name>")
def job_file(job_id: str, name: str):
    job = job_or_404(job_id, "dataset")
    path = os.path.join(workspace().store.job_dir(job.id), name)
    if not os.path.isfile(path):
        raise NotFound(f"dataset {job.id} has no {name} (yet)")
    mimetype = {"mean.png": "image/png", "labels.txt": "text/plain; charset=utf-8"}.get(
        name, "application/octet-stream"
    )
    return send_file(path, mimetype=mimetype, max_age=0, as_attachment=name == "mean.binaryproto")
