"""New Model > Generic: the form over a generic (CSV / NumPy) dataset and its JSON twin, DIGITS' routes
(/models/generic/new, POST /models/generic[/json]). The model's page is the models' page (templates/models/
show.html), which shows its predict forms (digits.inference.generic_views) in place of classify."""

from __future__ import annotations

import os

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from digits.errors import Forbidden, FormErrors
from digits.folders.generic import GENERIC_DATASET_TYPE, GENERIC_MODEL_TYPE
from digits.job import Job, Task
from digits.model import GENERIC_TRAIN_KIND
from digits.model.forms import LR_PARAMS
from digits.model.generic_forms import FIELD_LABELS, GENERIC_FRAMEWORKS, GenericModelForm, read_generic_model_form
from digits.model.info import model_json
from digits.model.settings import TRAIN_TASK
from digits.model.standard import list_networks, runs_code
from digits.model.views import code_refusal
from digits.offload import off_loop
from digits.status import Status
from digits.views.common import audit, current_user, job_or_404, posted_with_clone, require_user, workspace
from digits.views.errors import wants_json
from digits.views.jobs import storage_error

bp = Blueprint("generic_models", __name__)
NETWORK_OPTIONS = "network_options"  # the train task's argument the worker passes to build_model


def is_generic_model(job: Job) -> bool:
    return job.type == GENERIC_MODEL_TYPE


def build_job(form: GenericModelForm, owner: str, values: dict, job_id: str) -> Job:
    """A generic model job: one train task run by the generic worker, its settings and the MLP's options."""
    if form.gpu_ids:
        resources = {"gpu_ids": form.gpu_ids}
    elif form.gpu_count:
        resources = {"gpu": form.gpu_count}
    else:
        resources = {"cpu": 1}
    args = {**form.settings.to_dict(), NETWORK_OPTIONS: form.options}
    return Job(
        id=job_id,
        type=GENERIC_MODEL_TYPE,
        category="model",
        name=form.model_name,
        owner=owner,
        group=form.group_name,
        form=values,
        tasks=[Task(TRAIN_TASK, GENERIC_TRAIN_KIND, args, resources)],
        depends_on=[form.dataset_id],
        extra={"network_name": form.network_name, "dataset_id": form.dataset_id, "generic": {"problem": form.problem}},
    )


def _check_code(framework: str, text: str) -> None:
    if framework and text and runs_code(framework, text):
        refusal = code_refusal()
        if refusal:
            raise Forbidden(refusal)


def create_from_request() -> Job:
    owner = require_user()
    ws = workspace()
    values = posted_with_clone("model")
    if values.get("method") == "custom":  # refused before the rest of the form is checked, as the image form does
        _check_code(values.get("framework") or "torch", values.get("custom_network") or "")
    form, errors = off_loop(read_generic_model_form, values, ws.store, ws.gpus, ws.settings)
    if errors:
        raise FormErrors(errors, FIELD_LABELS)
    _check_code(form.settings.framework, form.network_text)
    try:
        job_id = ws.store.reserve()
    except OSError as e:
        raise storage_error(e) from None
    try:
        job = build_job(form, owner, values, job_id)
        try:
            with open(os.path.join(ws.store.job_dir(job_id), form.settings.network_file), "w", encoding="utf-8") as fh:
                fh.write(form.network_text)
            ws.add_job(job)
        except OSError as e:
            raise storage_error(e, form.settings.network_file) from None
    except BaseException:
        ws.store.release(job_id)
        raise
    audit("create", job=job)
    return job


def _form_context(values, errors) -> dict:
    datasets = [
        j
        for j in workspace().store.all()
        if j.type == GENERIC_DATASET_TYPE and j.status not in (Status.ERROR, Status.ABORTED)
    ]
    return dict(
        values=values,
        errors=errors,
        labels=FIELD_LABELS,
        datasets=sorted(datasets, key=lambda j: j.id, reverse=True),
        networks=list_networks(data="generic"),
        frameworks=GENERIC_FRAMEWORKS,
        code_refusal=code_refusal(),
        gpus=workspace().gpus,
        lr_params=LR_PARAMS,
    )


@bp.route("/models/generic/new")
def new():
    if not current_user():
        return redirect(url_for("auth.login", next=request.full_path))
    values = dict(request.args.items())
    clone = request.args.get("clone")
    if clone:
        cloned = job_or_404(clone, "model")
        values = {**cloned.form, "model_name": f"{cloned.name} (clone)"}
    return render_template("models/generic_new.html", **_form_context(values, {}))


@bp.route("/models/generic", methods=["POST"])
def create():
    try:
        job = create_from_request()
    except FormErrors as e:
        if wants_json():
            raise
        values = {k: v for k, v in posted_with_clone("model").items() if k != "csrf_token"}
        return render_template("models/generic_new.html", **_form_context(values, e.errors)), 400
    if wants_json():
        store = workspace().store
        return jsonify(model_json(job, store.job_dir(job.id), store.get(job.extra["dataset_id"])))
    return redirect(url_for("models.show", job_id=job.id))


bp.add_url_rule("/models/generic/json", "create_json", create, methods=["POST"])
bp.add_url_rule("/models/generic.json", "create_dot_json", create, methods=["POST"])


@bp.app_template_global()
def generic_clone_url(job: Job) -> str | None:
    """New Model > Generic with a generic model's fields (the model page's Clone), None for other models."""
    return url_for("generic_models.new", clone=job.id) if is_generic_model(job) else None
