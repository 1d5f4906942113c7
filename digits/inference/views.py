"""Test a model: classify one image, classify a list, top-N per class, the hardest samples; HTML and JSON twins.

Routes and fields follow DIGITS' REST API (`classify_one/json` with job_id and image_file answers
{"predictions": [[label, percent], ...]}), so scripts written for DIGITS keep working.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, request, send_file, url_for

from digits.datapaths import PathRefused, check_server_path
from digits.errors import ApiError, Failed, FormErrors, NotFound, ServiceUnavailable
from digits.folders.model import RESULTS_DIR
from digits.forms import FormReader
from digits.inference import inputs, results
from digits.inference.errors import InferenceError
from digits.inference.spec import dataset_dir, dataset_labels, model_spec
from digits.offload import off_loop
from digits.views.common import job_or_404, workspace
from digits.views.errors import names_html, wants_json

bp = Blueprint("inference", __name__)
RESULT_NAME_RE = re.compile(r"^confusion-[0-9a-f]{16}\.png$")  # where earlier versions kept confusion matrices
MAX_TOP_N = 100
# The Test section's fields as its form shows them (templates/inference/_classify_form.html): messages name these.
FIELD_LABELS = {
    "job_id": "Model",
    "image_file": "Upload an image",
    "image_url": "Image URL",
    "image_list": "Image list",
    "image_folder_zip": "Zip of images",
    "image_folder": "Folder for relative paths",
    "snapshot_epoch": "Snapshot",
    "top_n": "Top-N images per class",
    "show_visualizations": "Show visualizations and statistics",
}


API_ERRORS = {
    "bad_input": ApiError,
    "not_found": NotFound,
    "failed": Failed,
    "unavailable": ServiceUnavailable,
}


def run(op: str, spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """One request to the workspace's inference pool (Workspace.inference); its errors as JSON-ready ApiErrors."""
    pool = getattr(workspace(), "inference", None)
    if pool is None:
        raise ServiceUnavailable("this server runs no inference workers")
    try:
        return pool.request(op, spec, **fields)
    except InferenceError as e:
        raise API_ERRORS[e.kind](e.message) from None


def _form() -> FormReader:
    """The request's fields: the form's, and job_id from the query string when the form has none (DIGITS'
    clients post to `classify_one?job_id=...`)."""
    values = request.form
    if not values.get("job_id") and request.args.get("job_id"):
        values = {**request.form.to_dict(), "job_id": request.args["job_id"]}
    return FormReader(values, FIELD_LABELS)


def _model(r: FormReader):
    job_id = r.text("job_id", required=True, max_length=64)
    if r.errors:
        raise FormErrors(r.errors)
    job = job_or_404(job_id, "model")
    job_dir = workspace().store.job_dir(job.id)
    return job, job_dir, model_spec(job, job_dir, r.text("snapshot_epoch", max_length=40) or None)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _wants_link() -> bool:
    """The caller asked for the result's address only (RFC 7240 `Prefer: return=minimal`): our pages' scripts,
    which then go to the result's page, and show an error in place instead."""
    return "return=minimal" in request.headers.get("Prefer", "").replace(" ", "").lower().split(",")


def _wants_page() -> bool:
    """Whether the answer is a kept result's page (a browser's form) or its address, not the JSON twin's body."""
    return _wants_link() or not wants_json()


def _go(endpoint: str, job_id: str, run_id: str):
    """To a kept result: its address as JSON when asked for (Prefer: return=minimal); a browser (Accept naming
    text/html) is redirected (303) to its page; a script posting the form with no preference (DIGITS' clients) gets
    the page itself (200), as DIGITS answered."""
    url = url_for(endpoint, job_id=job_id, run_id=run_id)
    if _wants_link():
        response = jsonify({"results_url": url, "results_id": run_id})
        response.headers["Preference-Applied"] = "return=minimal"
        return response
    if not names_html():
        return current_app.view_functions[endpoint](job_id=job_id, run_id=run_id)
    return redirect(url, code=303)


def _new_run(job_dir: str, kind: str) -> tuple[str, str]:
    return off_loop(results.new_run, job_dir, kind)


def _drop_run(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


# ---- classify one ----------------------------------------------------------------------------------------
@bp.route("/models/images/classification/classify_one", methods=["POST"])
def classify_one():
    """One image (image_file, image_url or image_path) -> top-5 [label, percent], the image as the network
    saw it, and with show_visualizations every layer's activations, weights and statistics plus Grad-CAM."""
    started = time.perf_counter()
    r = _form()
    job, _, spec = _model(r)
    show = r.boolean("show_visualizations")
    if r.errors:
        raise FormErrors(r.errors)
    settings = workspace().settings
    image = inputs.one_image(request.form, request.files, settings)
    policy = inputs.path_policy(settings)  # the worker refuses an image of more than max_image_pixels
    if not _wants_page():  # the JSON twin answers the result itself and keeps nothing
        result = run("classify_one", spec, image=image, visualize=show, path_policy=policy, job_id=job.id)
        result["server_ms"] = _elapsed_ms(started)
        return jsonify(result)
    # A page: the result is kept with the image (for Grad-CAM of another layer) and the browser sent to it.
    job_dir = workspace().store.job_dir(job.id)
    run_id, folder = _new_run(job_dir, "one")
    try:
        keep = os.path.join(folder, results.INPUT_FILE) if show else None
        result = run(
            "classify_one", spec, image=image, visualize=show, path_policy=policy, job_id=job.id, keep_input=keep
        )
        result["server_ms"] = _elapsed_ms(started)
        kept = {"kind": "one", "result": result, "source": _source_name(), "epoch_label": spec["epoch_label"]}
        off_loop(results.save, folder, kept)
    except BaseException:
        _drop_run(folder)
        raise
    return _go("inference_results.classify_one_page", job.id, run_id)


bp.add_url_rule("/models/images/classification/classify_one/json", "classify_one_json", classify_one, methods=["POST"])
# DIGITS' spelling of the twin
bp.add_url_rule(
    "/models/images/classification/classify_one.json", "classify_one_dot_json", classify_one, methods=["POST"]
)


def _source_name() -> str:
    upload = request.files.get("image_file")
    if upload is not None and upload.filename:
        return upload.filename
    return request.form.get("image_url") or request.form.get("image_path") or ""


# ---- lists -----------------------------------------------------------------------------------------------
def _gather(r: FormReader, labels: list[str], work_dir: str):
    """The request's images (list and/or zip) resolved to readable paths: (items, errors)."""
    settings = workspace().settings
    zip_root = inputs.unpack_zip(request.files, work_dir, settings)
    text = inputs.list_text(request.form, request.files)
    if text is None and zip_root is None:
        raise FormErrors(
            {"image_list": ["Send a list of images (one path or URL per line) or a zip of images."]}, FIELD_LABELS
        )
    if text is not None:
        items, errors = inputs.parse_list(text, labels)
    else:
        items, errors = inputs.zip_items(zip_root, labels), []
    if not items and not errors:
        raise ApiError("the image list names no images")
    folder = r.text("image_folder", max_length=4096) or None
    if folder:
        try:
            folder = check_server_path(folder, settings, want_dir=True)
        except PathRefused as e:
            raise FormErrors({"image_folder": [str(e)]}, FIELD_LABELS) from None
    ready, refused = inputs.resolve(items, settings, work_dir, folder, zip_root)
    return ready, errors + refused


def _worker_items(items: list[inputs.ListItem]) -> list[dict[str, Any]]:
    # seed: the fill resize mode's noise, drawn per image as create-db drew it for a list in the same order
    return [{"path": i.path, "check": i.check, "label": i.label, "seed": i.ordinal} for i in items]


def _all_errors(items: list[inputs.ListItem], errors: list[dict], worker_errors: list[dict]) -> list[dict]:
    out = errors + [
        {"line": items[e["index"]].line, "path": items[e["index"]].text, "message": e["message"]} for e in worker_errors
    ]
    return sorted(out, key=lambda e: e["line"])


@bp.route("/models/images/classification/classify_many", methods=["POST"])
def classify_many():
    """A list of images -> {"classifications": {path: top-5}, "errors": [...]}, and for labeled lists the
    accuracies, the confusion matrix (numbers and a picture) and the accuracy of each class.

    Every image's result and thumbnail are kept in the model's results/ (results_id, results_url: the page
    that sorts, filters, pages and exports them); a browser is sent there."""
    started = time.perf_counter()
    r = _form()
    job, job_dir, spec = _model(r)
    labels = dataset_labels(dataset_dir(job, job_dir))
    run_id, folder = _new_run(job_dir, "many")
    try:
        with tempfile.TemporaryDirectory(prefix="digits-classify-") as work_dir:
            items, errors = _gather(r, labels, work_dir)
            reply = run(
                "classify_many",
                spec,
                items=_worker_items(items),
                path_policy=inputs.path_policy(workspace().settings),
                confusion_png=os.path.join(folder, results.CONFUSION_FILE),
                thumbnails=os.path.join(folder, results.THUMBS_FILE),
                job_id=job.id,
            )
        answer, rows = _many_answer(job, run_id, items, labels, errors, reply)
        answer["server_ms"] = _elapsed_ms(started)
        kept = {"kind": "many", "answer": answer, "rows": rows, "epoch_label": spec["epoch_label"]}
        off_loop(results.save, folder, kept)
    except BaseException:
        _drop_run(folder)
        raise
    if _wants_page():
        return _go("inference_results.classify_many_page", job.id, run_id)
    return jsonify(answer)


def _many_answer(job, run_id: str, items, labels: list[str], errors: list[dict], reply: dict[str, Any]):
    """The JSON twin's answer (DIGITS' fields first) and the kept rows: [line, path, true class, top-5, thumb]."""
    answer: dict[str, Any] = {
        # keyed by each path as the list wrote it (relative to image_folder when one was given), as DIGITS keyed
        "classifications": {items[i].text: top for i, top in reply["top"]},
        "errors": _all_errors(items, errors, reply["errors"]),
        "epoch": reply["epoch"],
    }
    scores = reply.get("evaluation")
    if scores and scores.get("count"):
        answer.update(
            top1_accuracy=scores["top1_accuracy"],
            top5_accuracy=scores["top5_accuracy"],
            confusion_matrix=scores["confusion_matrix"],
            per_class_accuracy=scores["per_class_accuracy"],
            labeled_count=scores["count"],
        )
        if reply.get("confusion_png"):
            answer["confusion_matrix_url"] = url_for("inference_results.confusion_png", job_id=job.id, run_id=run_id)
    answer["results_id"] = run_id
    answer["results_url"] = url_for("inference_results.classify_many_page", job_id=job.id, run_id=run_id)
    thumbs = {index: [offset, length] for index, offset, length in reply.get("thumbnails") or []}
    rows = []
    for i, top in reply["top"]:
        item = items[i]
        truth = labels[item.label] if item.label is not None else None
        rows.append([item.line, item.text, truth, top, thumbs.get(i)])
    return answer, rows


bp.add_url_rule(
    "/models/images/classification/classify_many/json", "classify_many_json", classify_many, methods=["POST"]
)
bp.add_url_rule(  # DIGITS' spelling of the twin
    "/models/images/classification/classify_many.json", "classify_many_dot_json", classify_many, methods=["POST"]
)


@bp.route("/models/images/classification/top_n", methods=["POST"])
def top_n():
    """For each class, the top_n images of the list that score highest for it."""
    r = _form()
    job, job_dir, spec = _model(r)
    n = r.integer("top_n", 9, minimum=1, maximum=MAX_TOP_N)
    if r.errors:
        raise FormErrors(r.errors)
    labels = dataset_labels(dataset_dir(job, job_dir))
    with tempfile.TemporaryDirectory(prefix="digits-topn-") as work_dir:
        items, errors = _gather(r, labels, work_dir)
        policy = inputs.path_policy(workspace().settings)
        reply = run("top_n", spec, items=_worker_items(items), n=n, path_policy=policy, job_id=job.id)
    classes = [
        {
            "label": entry["label"],
            "images": [
                {"path": items[pick["index"]].text, "percent": pick["percent"], "image": pick["image"]}
                for pick in entry["images"]
            ],
        }
        for entry in reply["top_n"]
    ]
    result = {"top_n": classes, "errors": _all_errors(items, errors, reply["errors"]), "epoch": reply["epoch"]}
    if not _wants_page():
        return jsonify(result)
    run_id, folder = _new_run(job_dir, "topn")
    try:
        off_loop(results.save, folder, {"kind": "topn", "result": result, "n": n})
    except BaseException:
        _drop_run(folder)
        raise
    return _go("inference_results.top_n_page", job.id, run_id)


bp.add_url_rule("/models/images/classification/top_n/json", "top_n_json", top_n, methods=["POST"])


# ---- a model's own dataset -------------------------------------------------------------------------------
@bp.route("/models/<job_id>/hardest/json")
def hardest(job_id: str):
    """The misclassified images of a dataset split (split=val, n=50), most confidently wrong first."""
    r = FormReader(request.args, FIELD_LABELS)
    split = r.choice("split", ("train", "val", "test"), "val")
    n = r.integer("n", 50, minimum=1, maximum=1000)
    if r.errors:
        raise FormErrors(r.errors)
    job = job_or_404(job_id, "model")
    spec = model_spec(job, workspace().store.job_dir(job.id), r.text("snapshot_epoch", max_length=40) or None)
    return jsonify(run("hardest", spec, split=split, n=n, job_id=job.id))


@bp.route("/models/<job_id>/results/<name>")
def result_file(job_id: str, name: str):
    """A confusion matrix an earlier version kept (results/confusion-<hex>.png)."""
    job = job_or_404(job_id, "model")
    if not RESULT_NAME_RE.match(name):
        raise NotFound(f"model {job.id} has no result {name!r}")
    path = os.path.join(workspace().store.job_dir(job.id), RESULTS_DIR, name)
    if not os.path.isfile(path):
        raise NotFound(f"model {job.id} has no result {name!r}")
    return send_file(path, mimetype="image/png", max_age=3600)
