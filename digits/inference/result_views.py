"""Kept classification results (digits.inference.results), seen again: classify one with Grad-CAM of any
convolution layer, classify many sorted, filtered, paged and exported, top-N per class; HTML and JSON twins.

A result is read by whoever may read its model: the model page's rule (job_or_404, behind the server's sign-in).
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, send_file, url_for

from digits.errors import ApiError, NotFound
from digits.inference import results
from digits.inference.render import css_gradient
from digits.inference.spec import model_spec
from digits.inference.views import run
from digits.offload import off_loop
from digits.views.common import job_or_404, workspace

bp = Blueprint("inference_results", __name__)
MAX_LAYER_NAME = 200


def _run(job_id: str, run_id: str, kind: str) -> tuple[Any, str, dict[str, Any]]:
    """(model job, its folder, the kept run) or 404 naming why."""
    job = job_or_404(job_id, "model")
    job_dir = workspace().store.job_dir(job.id)
    if not run_id.startswith(kind + "-"):
        raise NotFound(f"model {job.id} has no such result")
    try:
        data = off_loop(results.load, job_dir, run_id)
    except results.RunMissing:
        raise NotFound(
            f"model {job.id} has no result {run_id[:40]!r}: the newest {results.KEEP[kind]} of each kind are kept"
        ) from None
    return job, job_dir, data


# ---- classify one ----------------------------------------------------------------------------------------
@bp.route("/models/<job_id>/classify_one/<run_id>")
def classify_one_page(job_id: str, run_id: str):
    job, _, data = _run(job_id, run_id, "one")
    return render_template(
        "inference/classify_one.html",
        job=job,
        result=data["result"],
        source=data.get("source", ""),
        run_id=run_id,
        legend=css_gradient(),
    )


@bp.route("/models/<job_id>/classify_one/<run_id>/gradcam/json")
def gradcam(job_id: str, run_id: str):
    """Grad-CAM of another convolution layer (layer=NAME) for the kept image, on the snapshot it was classified
    with: {gradcam (a PNG data URL), gradcam_layer, gradcam_layers, target}."""
    job, job_dir, data = _run(job_id, run_id, "one")
    layer = request.args.get("layer", "")
    if len(layer) > MAX_LAYER_NAME:
        raise ApiError(f"Grad-CAM layer: a layer name is at most {MAX_LAYER_NAME} characters")
    kept = os.path.join(results.run_dir(job_dir, run_id), results.INPUT_FILE)
    if not os.path.isfile(kept):
        raise NotFound("this result was made without visualizations: it kept no image for Grad-CAM")
    spec = model_spec(job, job_dir, data.get("epoch_label"))
    # The class is the top prediction, as on the page: the worker scores the kept image again to know it.
    return jsonify(run("gradcam", spec, input=kept, layer=layer or None, target=None, job_id=job.id))


# ---- classify many ---------------------------------------------------------------------------------------
def _many_context(job, run_id: str, data: dict[str, Any]) -> dict[str, Any]:
    query = results.Query.from_args(request.args)
    view = "mistakes" if request.args.get("view") == "mistakes" else "table"
    if view == "mistakes":
        query.outcome = "wrong"
    # Sorting and filtering 10,000 records takes tens of milliseconds: off the event loop.
    page = off_loop(results.page_of, data, query)
    truths, predicted = off_loop(results.classes_of, data)

    def page_url(**changes) -> str:
        """This page's address with `changes` to its query (view="table" or "mistakes" switches views)."""
        shown = changes.pop("view", view)
        args = query.args(**changes)
        if shown == "mistakes":
            args.pop("outcome", None)
            args["view"] = "mistakes"
        elif view == "mistakes" and "outcome" not in changes:
            args.pop("outcome", None)
        return url_for("inference_results.classify_many_page", job_id=job.id, run_id=run_id, **args)

    return {
        "page_url": page_url,
        "query": query,
        "view": view,
        "page": page,
        "truths": truths,
        "predicted_classes": predicted,
        "labeled": bool(truths),
        "mistakes": results.mistakes(data),
    }


@bp.route("/models/<job_id>/classify_many/<run_id>")
def classify_many_page(job_id: str, run_id: str):
    """A classify-many run: scores, then its images a page at a time, sorted and filtered as the query says
    (truth, predicted, outcome=right|wrong, min_confidence, max_confidence, sort, order, page, per_page), as a
    table or (view=mistakes) a gallery of the wrongly classified."""
    job, _, data = _run(job_id, run_id, "many")
    context = _many_context(job, run_id, data)
    return render_template(
        "inference/classify_many.html",
        job=job,
        run_id=run_id,
        result=data["answer"],
        per_page_choices=results.PER_PAGE,
        **context,
    )


@bp.route("/models/<job_id>/classify_many/<run_id>/json")
def classify_many_page_json(job_id: str, run_id: str):
    """One page of a classify-many run's images under the same query as its page."""
    job, _, data = _run(job_id, run_id, "many")
    context = _many_context(job, run_id, data)
    page = context["page"]
    for row in page["rows"]:
        row["thumbnail_url"] = (
            url_for("inference_results.thumbnail", job_id=job.id, run_id=run_id, index=row["index"])
            if row["has_thumbnail"]
            else None
        )
    return jsonify(
        {
            **page,
            "view": context["view"],
            "query": context["query"].args(),
            "problems": context["query"].problems,
            "mistakes": context["mistakes"],
            "epoch": data["answer"].get("epoch"),
        }
    )


@bp.route("/models/<job_id>/classify_many/<run_id>/thumbs/<int:index>")
def thumbnail(job_id: str, run_id: str, index: int):
    job, job_dir, _ = _run(job_id, run_id, "many")
    found = results.thumbnail(job_dir, run_id, index)
    if found is None:
        raise NotFound(f"image {index} of this result has no thumbnail")
    blob, mimetype = found
    response = Response(blob, mimetype=mimetype)
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"  # a run never changes
    return response


@bp.route("/models/<job_id>/classify_many/<run_id>/confusion.png")
def confusion_png(job_id: str, run_id: str):
    job, job_dir, _ = _run(job_id, run_id, "many")
    path = os.path.join(results.run_dir(job_dir, run_id), results.CONFUSION_FILE)
    if not os.path.isfile(path):
        raise NotFound("this result has no confusion matrix (its list had no labels)")
    return send_file(path, mimetype="image/png", max_age=3600)


def _download_name(job, run_id: str, ext: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in job.name)[:60] or "model"
    return f"{safe}-{run_id}.{ext}"


@bp.route("/models/<job_id>/classify_many/<run_id>/export.csv")
def export_csv(job_id: str, run_id: str):
    """Every image of the run, one CSV row each in list order (not classified ones with their reason)."""
    job, _, data = _run(job_id, run_id, "many")
    text = off_loop(results.export_csv, data)
    name = _download_name(job, run_id, "csv")
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.route("/models/<job_id>/classify_many/<run_id>/export.json")
def export_json(job_id: str, run_id: str):
    """The JSON twin's answer for the run, plus every image as a record (`images`)."""
    job, _, data = _run(job_id, run_id, "many")
    text = off_loop(lambda: json.dumps(results.export_json(data), separators=(",", ":")))  # megabytes for 10,000
    name = _download_name(job, run_id, "json")
    return Response(
        text, mimetype="application/json", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# ---- top-N -----------------------------------------------------------------------------------------------
@bp.route("/models/<job_id>/top_n/<run_id>")
def top_n_page(job_id: str, run_id: str):
    job, _, data = _run(job_id, run_id, "topn")
    return render_template("inference/top_n.html", job=job, result=data["result"], n=data["n"])
