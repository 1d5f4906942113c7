"""New Dataset > Generic (CSV / NumPy): the form, its JSON twin, and the generic dataset's page and rows.

DIGITS' generic datasets (/datasets/generic/new) took LMDBs made by a Python extension; ours take what such
data usually is: a CSV with a header row, or NumPy arrays. The build runs in a worker (digits.dataset.generic_task).
"""

from __future__ import annotations

import os

import numpy as np
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from digits.datapaths import PathRefused, check_server_path, path_rules
from digits.dataset.generic_task import GENERIC_KIND, TASK_NAME
from digits.errors import FormErrors, NotFound
from digits.folders.dataset import SPLITS, UPLOAD_DIR
from digits.folders.generic import GENERIC_DATASET_TYPE, PROBLEMS, GenericFolderError, generic_summary, open_generic
from digits.forms import FormReader
from digits.job import Job, Task
from digits.offload import off_loop
from digits.uploads import UploadRefused, save_upload
from digits.views.common import audit, current_user, job_or_404, posted_with_clone, require_user, workspace
from digits.views.errors import wants_json
from digits.views.jobs import first_error, storage_error

bp = Blueprint("generic_datasets", __name__)
FIELD_LABELS = {
    "dataset_name": "Dataset name",
    "group_name": "Group name (optional)",
    "problem": "Problem",
    "train_file": "Training data file",
    "train_path": "Or a training data file on the server",
    "val_file": "Validation data file (optional)",
    "val_path": "Or a validation data file on the server",
    "val_percent": "% for validation",
    "target_column": "Label / target column (CSV)",
    "features_key": "Features array (.npz)",
    "labels_key": "Labels array (.npz)",
}
EXTENSIONS = (".csv", ".txt", ".npy", ".npz")
ROWS_PER_PAGE = 50


def is_generic(job: Job) -> bool:
    return job.type == GENERIC_DATASET_TYPE


def _source(r: FormReader, which: str, settings, required: bool) -> tuple[str, str, object | None] | None:
    """(where the worker reads it, the name shown, the upload to save) for train or val; None when not given."""
    upload = request.files.get(f"{which}_file")
    path = r.text(f"{which}_path", max_length=4096)
    if upload is not None and upload.filename:
        name = os.path.basename(upload.filename.replace("\\", "/"))
        ext = os.path.splitext(name)[1].lower()
        if ext not in EXTENSIONS:
            r.error(f"{which}_file", f"{name}: expected a .csv, .npy or .npz file")
            return None
        return f"{UPLOAD_DIR}/{which}{ext}", name, upload
    if path:
        ext = os.path.splitext(path)[1].lower()
        if ext not in EXTENSIONS:
            r.error(f"{which}_path", f"{path}: expected a .csv, .npy or .npz file")
            return None
        try:
            real = off_loop(check_server_path, path, settings, False)
        except PathRefused as e:
            r.error(f"{which}_path", str(e))
            return None
        return real, os.path.basename(path), None
    if required:
        r.error(f"{which}_file", "Upload a CSV or NumPy file, or name one on the server.")
    return None


def read_generic_form(values, settings):
    """The checked form: (task arguments, name, group, uploads {relative path: upload}); FormErrors otherwise."""
    r = FormReader(values, FIELD_LABELS)
    name = r.text("dataset_name", required=True, max_length=200)
    group = r.text("group_name", max_length=200)
    problem = r.choice("problem", PROBLEMS, "classification")
    val_percent = r.number("val_percent", 10.0, minimum=0.0, maximum=90.0)
    train = _source(r, "train", settings, required=True)
    val = _source(r, "val", settings, required=False)
    args = {
        "problem": problem,
        "val_percent": val_percent if val_percent is not None else 10.0,
        "target": r.text("target_column", max_length=200) or None,
        "features_key": r.text("features_key", max_length=200) or None,
        "labels_key": r.text("labels_key", max_length=200) or None,
        "seed": 0,
        **path_rules(settings).to_args(),
    }
    if r.errors:
        raise FormErrors(r.errors, FIELD_LABELS)
    uploads = {}
    for which, source in (("train", train), ("val", val)):
        if source is None:
            continue
        args[which], args[f"{which}_name"], upload = source
        if upload is not None:
            uploads[source[0]] = (f"{which}_file", upload)
    return args, name, group, uploads


def create_from_request() -> Job:
    owner = require_user()
    ws = workspace()
    settings = current_app.config["DIGITS_SETTINGS"]
    values = posted_with_clone("dataset")
    args, name, group, uploads = read_generic_form(values, settings)
    try:
        job_id = ws.store.reserve()
    except OSError as e:
        raise storage_error(e) from None
    job_dir = ws.store.job_dir(job_id)
    try:
        os.makedirs(os.path.join(job_dir, UPLOAD_DIR), exist_ok=True)
        for rel, (field_name, upload) in uploads.items():
            try:
                save_upload(upload, os.path.join(job_dir, rel), settings.max_content_length)
            except UploadRefused as e:
                raise FormErrors({field_name: [str(e)]}, FIELD_LABELS) from None
            except OSError as e:
                raise storage_error(e, upload.filename or rel, job_dir) from None
        job = Job(
            id=job_id,
            type=GENERIC_DATASET_TYPE,
            category="dataset",
            name=name,
            owner=owner,
            group=group,
            form=values,
            tasks=[Task(TASK_NAME, GENERIC_KIND, args)],
            extra={"generic": {"problem": args["problem"]}},
        )
        try:
            ws.add_job(job)
        except OSError as e:
            raise storage_error(e) from None
    except BaseException:
        ws.store.release(job_id)
        raise
    audit("create", job=job)
    return job


@bp.route("/datasets/generic/new")
def new():
    if not current_user():
        return redirect(url_for("auth.login", next=request.full_path))
    return render_template(
        "datasets/generic_new.html", values=dict(request.args.items()), errors={}, labels=FIELD_LABELS
    )


@bp.route("/datasets/generic", methods=["POST"])
def create():
    try:
        job = create_from_request()
    except FormErrors as e:
        if wants_json():
            raise
        values = {k: v for k, v in request.form.items() if k != "csrf_token"}
        return render_template("datasets/generic_new.html", values=values, errors=e.errors, labels=FIELD_LABELS), 400
    if wants_json():
        return jsonify({"id": job.id, "name": job.name, "status": job.status.value})
    return redirect(url_for("datasets.show", job_id=job.id))


bp.add_url_rule("/datasets/generic/json", "create_json", create, methods=["POST"])
bp.add_url_rule("/datasets/generic.json", "create_dot_json", create, methods=["POST"])


def generic_json(job: Job, job_dir: str) -> dict:
    """The JSON twin of a generic dataset's page."""
    summary = generic_summary(job_dir)
    error = first_error(job)
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status.value,
        "type": "Generic Dataset",
        "username": job.owner,
        "group": job.group,
        "creation time": job.created,
        "progress": round(job.progress, 4),
        "problem": job.extra.get("generic", {}).get("problem"),
        "error": error["message"] if error else None,
        **summary,
    }


def render_generic(job: Job):
    """The dataset page of a generic dataset (digits.dataset.views.show hands it over)."""
    job_dir = workspace().store.job_dir(job.id)
    info = generic_json(job, job_dir)
    rows = off_loop(read_rows, job_dir, "train", 0) if info.get("features") else None
    # The model wing's generic form, when it is installed (the wings do not import each other).
    new_model = (
        url_for("generic_models.new", dataset=job.id) if "generic_models.new" in current_app.view_functions else None
    )
    return render_template(
        "datasets/generic_show.html", job=job, info=info, error=first_error(job), rows=rows, new_model_url=new_model
    )


def read_rows(job_dir: str, split: str, page: int) -> dict:
    """One page of a split's rows (features as stored, and the label or target), read from its .npy by mmap."""
    try:
        dataset = open_generic(job_dir)
        x, y = dataset.load(split, mmap=True)
    except GenericFolderError as e:
        raise NotFound(str(e)) from None
    start = page * ROWS_PER_PAGE
    x_page, y_page = np.asarray(x[start : start + ROWS_PER_PAGE]), np.asarray(y[start : start + ROWS_PER_PAGE])
    if dataset.problem == "classification":
        targets = [dataset.labels[int(v)] for v in y_page]
    else:
        targets = [float(v) for v in y_page]
    return {
        "split": split,
        "page": page,
        "pages": max(1, -(-len(x) // ROWS_PER_PAGE)),
        "total": int(len(x)),
        "first": start,
        "columns": dataset.feature_names,
        "target": dataset.target_name,
        "rows": [
            {"index": start + i, "features": [float(v) for v in row], "target": t}
            for i, (row, t) in enumerate(zip(x_page, targets, strict=True))
        ],
    }


@bp.route("/datasets/generic/<job_id>/rows")
def rows(job_id: str):
    """Explore a generic dataset: a page of a split's rows; ?split=train|val&page=N (from 0)."""
    job = job_or_404(job_id, "dataset")
    if not is_generic(job):
        raise NotFound(f"dataset {job.id} is not a generic dataset")
    split = request.args.get("split", "train")
    if split not in SPLITS:
        raise NotFound(f"no split {split!r} (train, val)")
    try:
        page = max(0, int(request.args.get("page", "0")))
    except ValueError:
        page = 0
    data = off_loop(read_rows, workspace().store.job_dir(job.id), split, page)
    if wants_json() or request.path.endswith(".json"):
        return jsonify(data)
    return render_template("datasets/generic_rows.html", job=job, data=data)


bp.add_url_rule("/datasets/generic/<job_id>/rows.json", "rows_json", rows)
