"""Predict with a model over generic data: one row (a field per feature, or a pasted CSV row) and many (a CSV
with the same header), answered by the warm inference workers (the `predict` request); HTML, JSON and CSV.

    POST /models/generic/predict_one[/json]      job_id, snapshot_epoch, feature_0 ... feature_N-1 or row
    POST /models/generic/predict_many[/json]     job_id, snapshot_epoch, csv_file
    POST /models/generic/predict_many.csv        the same, answered as CSV
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from digits.errors import FormErrors, NotFound
from digits.folders import file_in
from digits.folders.generic import GENERIC_MODEL_TYPE, GenericFolderError, model_generic_dir, open_generic
from digits.forms import FormReader
from digits.inference.generic_rows import ReadRows, RowsRefused, csv_answers, parse_row_text, read_csv
from digits.inference.spec import choose_snapshot
from digits.inference.views import run
from digits.job import Job
from digits.model.settings import model_settings
from digits.offload import off_loop
from digits.views.common import job_or_404, workspace
from digits.views.errors import wants_json

bp = Blueprint("generic_predict", __name__)
FIELD_LABELS = {"job_id": "Model", "snapshot_epoch": "Snapshot", "row": "Or paste a CSV row", "csv_file": "CSV file"}
NETWORK_OPTIONS = "network_options"  # the train task's argument (digits.model.generic_views)


def feature_field(index: int) -> str:
    return f"feature_{index}"


def generic_info(job: Job, job_dir: str) -> dict[str, Any] | None:
    """The features, problem, labels and target of a generic model (None for any other model, or when its
    dataset cannot be read)."""
    if job.type != GENERIC_MODEL_TYPE:
        return None
    folder = model_generic_dir(job_dir, job.extra.get("dataset_id", ""))
    if folder is None:
        return None
    try:
        dataset = open_generic(folder)
    except GenericFolderError:
        return None
    return {
        "folder": folder,
        "features": dataset.feature_names,
        "problem": dataset.problem,
        "labels": dataset.labels,
        "target": dataset.target_name,
    }


def generic_spec(job: Job, job_dir: str, info: dict[str, Any], wanted_epoch: str | None) -> dict[str, Any]:
    """The predict request's "model" (the image models' digits.inference.spec.model_spec, for generic data)."""
    snap = choose_snapshot(job, job_dir, wanted_epoch)
    settings = model_settings(job)
    path = os.path.join(job_dir, snap.name)
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        raise NotFound(f"model {job.id}: snapshot {snap.name} is gone") from None
    network = file_in(job_dir, settings.network_file)
    if network is None:
        raise NotFound(f"model {job.id}: its network file is gone")
    args = next((t.args for t in job.tasks if t.name == "train"), {}) or {}
    return {
        "kind": "generic",
        "key": f"{job.id}@{snap.label}@{mtime}",
        "job_id": job.id,
        "epoch": snap.epoch,
        "epoch_label": snap.label,
        "snapshot": path,
        "framework": settings.framework,
        "network_file": network,
        "dataset_dir": info["folder"],
        "network_options": args.get(NETWORK_OPTIONS) or {},
    }


def _model(r: FormReader) -> tuple[Job, dict[str, Any], dict[str, Any]]:
    """The posted model (a generic one, or a 400 naming Model), its info and its predict spec."""
    values = r.values
    job_id = r.text("job_id", required=True, max_length=64)
    if r.errors:
        raise FormErrors(r.errors, FIELD_LABELS)
    job = job_or_404(job_id, "model")
    job_dir = workspace().store.job_dir(job.id)
    info = off_loop(generic_info, job, job_dir)
    if info is None:
        message = (
            f"Model {job.name} is not a model over generic data: classify images with it instead."
            if job.type != GENERIC_MODEL_TYPE
            else f"Model {job.name}'s dataset cannot be read (its feature names are gone)."
        )
        raise FormErrors({"job_id": [message]}, FIELD_LABELS)
    epoch = str(values.get("snapshot_epoch") or "").strip()[:40] or None
    return job, info, off_loop(generic_spec, job, job_dir, info, epoch)


def _form() -> FormReader:
    values = request.form
    if not values.get("job_id") and request.args.get("job_id"):  # DIGITS' clients post to ...?job_id=
        values = {**request.form.to_dict(), "job_id": request.args["job_id"]}
    return FormReader(values, FIELD_LABELS)


def _one_row(r: FormReader, features: list[str]) -> list[float]:
    labels = {**FIELD_LABELS, **{feature_field(i): name for i, name in enumerate(features)}}
    pasted = r.text("row", max_length=100_000)
    if pasted:
        values, problem = parse_row_text(pasted, features)
        if problem:
            raise FormErrors({"row": [problem]}, labels)
        return values
    row = [r.number(feature_field(i), required=True) for i in range(len(features))]
    if r.errors:
        raise FormErrors(r.errors, labels)
    return row


@bp.route("/models/generic/predict_one", methods=["POST"])
def predict_one():
    r = _form()
    job, info, spec = _model(r)
    row = _one_row(r, info["features"])
    answer = run("predict", spec, rows=[row])
    result = {
        **answer["answers"][0],
        "features": dict(zip(info["features"], row, strict=True)),
        "problem": info["problem"],
        "target": info["target"],
        "epoch": answer["epoch"],
    }
    if wants_json() or request.path.endswith("/json"):
        return jsonify(result)
    return render_template("models/generic_predicted.html", job=job, info=info, one=result, many=None)


bp.add_url_rule("/models/generic/predict_one/json", "predict_one_json", predict_one, methods=["POST"])


def _many(r: FormReader) -> tuple[Job, dict[str, Any], ReadRows, dict[str, Any]]:
    job, info, spec = _model(r)
    upload = request.files.get("csv_file")
    if upload is None or not upload.filename:
        raise FormErrors({"csv_file": ["Upload a CSV whose header names the model's features."]}, FIELD_LABELS)
    data = upload.read()
    try:
        rows = off_loop(read_csv, data, info["features"])
    except RowsRefused as e:
        raise FormErrors({"csv_file": [str(e)]}, FIELD_LABELS) from None
    answer = run("predict", spec, rows=rows.rows) if rows.rows else {"answers": [], "epoch": spec["epoch"]}
    return job, info, rows, answer


@bp.route("/models/generic/predict_many", methods=["POST"])
def predict_many():
    job, info, rows, answer = _many(_form())
    result = {
        "problem": info["problem"],
        "target": info["target"],
        "features": info["features"],
        "epoch": answer["epoch"],
        "rows": [
            {"line": line, "features": row, **a}
            for line, row, a in zip(rows.lines, rows.rows, answer["answers"], strict=True)
        ],
        "errors": rows.errors,
    }
    if wants_json() or request.path.endswith("/json"):
        return jsonify(result)
    return render_template("models/generic_predicted.html", job=job, info=info, one=None, many=result)


bp.add_url_rule("/models/generic/predict_many/json", "predict_many_json", predict_many, methods=["POST"])


@bp.route("/models/generic/predict_many.csv", methods=["POST"])
def predict_many_csv():
    job, info, rows, answer = _many(_form())
    text = off_loop(csv_answers, info["features"], info["problem"], rows, answer["answers"])
    return Response(
        text,
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="predictions-{job.id}.csv"'},
    )


@bp.app_template_global()
def generic_model_info(job: Job) -> dict[str, Any] | None:
    """What the model page's predict forms need of a generic model (None for image models)."""
    if job.type != GENERIC_MODEL_TYPE:
        return None
    return generic_info(job, workspace().store.job_dir(job.id))
