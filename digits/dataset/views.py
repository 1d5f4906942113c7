"""New Dataset > Images > Classification: the form, its JSON twin, and the dataset page."""

from __future__ import annotations

import os

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, send_file, url_for

from digits.datapaths import path_rules
from digits.dataset import DATASET_TYPE
from digits.dataset.forms import FIELD_LABELS, DatasetForm, attach_unpacked, pending_zips, read_dataset_form
from digits.dataset.generic_views import generic_json, is_generic, render_generic
from digits.dataset.import_job import import_extra, import_tasks, probe_sources
from digits.dataset.info import dataset_json
from digits.dataset.lmdb_import import LmdbProbe
from digits.errors import FormErrors, NotFound
from digits.folders import file_in
from digits.folders.dataset import LABELS, MEAN, MEAN_PNG, SPLITS, UPLOAD_DIR, list_name
from digits.forms import TRUE_WORDS
from digits.job import Job, Task
from digits.offload import off_loop
from digits.uploads import UploadRefused, ZipLimits, extract_zip, save_upload
from digits.views.common import NOT_KEPT, audit, current_user, job_or_404, posted_with_clone, require_user, workspace
from digits.views.errors import wants_json
from digits.views.jobs import first_error, storage_error

bp = Blueprint("datasets", __name__)
ZIP_FIELDS = {"train": "folder_train_zip", "val": "folder_val_zip", "test": "folder_test_zip"}
# Form fields never kept in job.json (nor prefilled by Clone): the page's CSRF token belongs to one session.
# The lists a dataset was built from ("path label" lines) and its labels, linked from its page so a person can
# read what was parsed.
LISTS = [LABELS, *(list_name(s) for s in SPLITS)]


def build_job(
    form: DatasetForm, owner: str, job_id: str, values: dict, probes: dict[str, LmdbProbe] | None = None
) -> Job:
    """A dataset job: parse the sources, then one create-db task per split, each after the one before (for Caffe
    LMDBs, one import task per split instead, given the LMDBs' `probes`)."""
    settings = current_app.config["DIGITS_SETTINGS"]
    extra = {"image": form.image_settings(), "splits": form.splits}
    if form.method == "lmdb":
        tasks = import_tasks(form, probes, settings)
        extra["import"] = import_extra(form, probes)
    else:
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
        extra=extra,
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
            raise FormErrors({field_name: [f"{upload.filename}: {e}"]}, FIELD_LABELS) from None
        except OSError as e:
            raise storage_error(e, f"the files of {upload.filename}", job_dir) from None
    return folders


def _save_lists(form: DatasetForm, job_dir: str, max_bytes: int) -> None:
    for field_name, (storage, name) in form.uploads.items():
        try:
            save_upload(storage, os.path.join(job_dir, name), max_bytes)
        except UploadRefused as e:
            raise FormErrors({field_name: [str(e)]}, FIELD_LABELS) from None
        except OSError as e:
            raise storage_error(e, storage.filename or name, job_dir) from None


def posted_values() -> dict[str, str]:
    """The submitted dataset form, a clone's fields under it (views/common.posted_with_clone). Files are never
    copied: a clone of an uploaded source must be given it again."""
    return posted_with_clone("dataset")


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
    values = posted_values()
    form, errors = read_dataset_form(values, request.files, settings, zip_splits=zip_splits)
    if errors:
        raise FormErrors(errors)
    probes = None
    if form.method == "lmdb":  # their first records say the image size, and catch what is no LMDB at once
        probes, errors = off_loop(probe_sources, form)
        if errors:
            raise FormErrors(errors, FIELD_LABELS)
    try:
        job_id = ws.store.reserve()
    except OSError as e:
        raise storage_error(e) from None
    job_dir = ws.store.job_dir(job_id)
    try:
        folders = _unpack_zips(form, job_dir, ZipLimits.from_settings(settings))
        errors = attach_unpacked(form, folders, ZIP_FIELDS)
        if errors:
            raise FormErrors(errors, FIELD_LABELS)
        _save_lists(form, job_dir, settings.max_content_length)
        job = build_job(form, owner, job_id, values, probes)
        try:
            ws.add_job(job)
        except OSError as e:
            raise storage_error(e) from None
    except BaseException:
        ws.store.release(job_id)
        raise
    audit("create", job=job)
    return job


def clone_values(job: Job) -> dict[str, str]:
    """A dataset job's form, to fill in New Dataset again: the same fields, the name marked as a clone."""
    values = {k: str(v) for k, v in job.form.items() if k not in NOT_KEPT}
    values["dataset_name"] = f"{job.name} (clone)"
    return values


def uploaded_fields(job: Job) -> list[str]:
    """The labels of the files a job was given with its form (zips, lists): a clone must be given them again."""
    form = job.form

    def ticked(name: str) -> bool:
        return str(form.get(name, "")).strip().lower() in TRUE_WORDS

    if form.get("method") == "lmdb":  # an uploaded labels file is kept in the tasks' arguments by its job name
        uploaded = any(t.args.get("labels_file") and not os.path.isabs(t.args["labels_file"]) for t in job.tasks)
        return [FIELD_LABELS["lmdb_labels_file"]] if uploaded else []
    if form.get("method", "folder") == "folder":
        splits = [s for s in SPLITS if s == "train" or ticked(f"has_{s}_folder")]
        return [FIELD_LABELS[f"folder_{s}_zip"] for s in splits if not form.get(f"folder_{s}")]
    if ticked("textfile_use_local_files"):
        return []
    names = ["textfile_train_images"] + [f"textfile_{s}_images" for s in ("val", "test") if ticked(f"textfile_use_{s}")]
    return [FIELD_LABELS[n] for n in names + ["textfile_labels_file"]]


def render_form(values, errors, status: int = 200, cloned: Job | None = None):
    page = render_template(
        "datasets/new.html",
        values=values,
        errors=errors,
        labels=FIELD_LABELS,
        cloned=cloned,
        reupload=uploaded_fields(cloned) if cloned else [],
    )
    return page, status


@bp.route("/datasets/images/classification/new")
def new():
    """New Dataset; ?clone=<job id> fills it in with that dataset's fields, to fix and try again."""
    if not current_user():
        return redirect(url_for("auth.login", next=request.full_path))
    clone = request.args.get("clone")
    if clone:
        job = job_or_404(clone, "dataset")
        return render_form(clone_values(job), {}, cloned=job)
    return render_form({}, {})


@bp.route("/datasets/images/classification", methods=["POST"])
def create():
    try:
        job = create_from_request()
    except FormErrors as e:
        if wants_json():
            raise
        return render_form(posted_values(), e.errors, 400)  # a clone's fields too, to fix in place
    if wants_json():
        return jsonify({"id": job.id, "name": job.name, "status": job.status.value})
    return redirect(url_for("datasets.show", job_id=job.id))


bp.add_url_rule("/datasets/images/classification/json", "create_json", create, methods=["POST"])
bp.add_url_rule("/datasets/images/classification.json", "create_dot_json", create, methods=["POST"])  # DIGITS' spelling


@bp.route("/datasets/<job_id>")
def show(job_id: str):
    job = job_or_404(job_id, "dataset")
    if is_generic(job):
        return render_generic(job)
    job_dir = workspace().store.job_dir(job.id)
    info = dataset_json(job, job_dir)
    return render_template(
        "datasets/show.html",
        job=job,
        info=info,
        error=first_error(job),
        labels=info["labels"],  # dataset_json read the labels and stats already
        stats=info["stats"],
        lists=[name for name in LISTS if file_in(job_dir, name)],
    )


@bp.route("/datasets/<job_id>/json")
def show_json(job_id: str):
    job = job_or_404(job_id, "dataset")
    if is_generic(job):
        return jsonify(generic_json(job, workspace().store.job_dir(job.id)))
    info = dataset_json(job, workspace().store.job_dir(job.id))
    error = first_error(job)
    info["error"] = error["message"] if error else None
    return jsonify(info)


bp.add_url_rule("/datasets/<job_id>.json", "show_dot_json", show_json)  # DIGITS' spelling of the twin


SERVED = {
    MEAN_PNG: "image/png",
    MEAN: "application/octet-stream",
    **dict.fromkeys(LISTS, "text/plain; charset=utf-8"),
}


@bp.route(f"/datasets/<job_id>/<any({', '.join(map(repr, SERVED))}):name>")
def job_file(job_id: str, name: str):
    job = job_or_404(job_id, "dataset")
    path = file_in(workspace().store.job_dir(job.id), name)
    if path is None:
        raise NotFound(f"dataset {job.id} has no {name} (yet)")
    return send_file(path, mimetype=SERVED[name], max_age=0, as_attachment=name == MEAN)
