"""New Model > Images > Classification: the form, its JSON twin, the model page, resume, standard network texts."""

from __future__ import annotations

import os
import uuid

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from digits import sandbox
from digits.errors import Conflict, Forbidden, FormErrors, NotFound
from digits.folders import file_in
from digits.folders.generic import GENERIC_DATASET_TYPE, GENERIC_MODEL_TYPE
from digits.folders.model import NETWORK_FILES, snapshots
from digits.job import Job, Task
from digits.model import MODEL_TYPE
from digits.model.chart_args import chart_args
from digits.model.forms import (
    CAFFE_ENGINE_TITLES,
    FIELD_LABELS,
    LR_PARAMS,
    ModelForm,
    caffe_engine_choices,
    read_model_form,
)
from digits.model.info import chart_json, latest_reported, model_json, sparkline
from digits.model.settings import TRAIN_TASK, model_settings
from digits.model.standard import FRAMEWORKS, get_network, list_networks, runs_code
from digits.model.sweep_group import group_json, group_members, sweep_label
from digits.model.sweeps import MAX_SWEEP_JOBS, plan
from digits.offload import off_loop
from digits.status import Status
from digits.views.auth import has_permission
from digits.views.common import (
    audit,
    current_user,
    job_or_404,
    posted_with_clone,
    require_owner,
    require_user,
    workspace,
)
from digits.views.errors import wants_json
from digits.views.jobs import first_error, status_json, storage_error

bp = Blueprint("models", __name__)


def build_job(form: ModelForm, owner: str, values: dict, job_id: str) -> Job:
    """A model job: one train task whose arguments are the training settings (kept nowhere else)."""
    settings = form.settings  # a previous model's weights (DIGITS' <id>-snapshot) are chosen by the form
    dataset = workspace().store.get(form.dataset_id)
    if form.gpu_ids:
        resources = {"gpu_ids": form.gpu_ids}
    elif form.gpu_count:
        resources = {"gpu": form.gpu_count}
    else:
        resources = {"cpu": 1}
    task = Task(TRAIN_TASK, "model.train", settings.to_dict(), resources)
    return Job(
        id=job_id,
        type=MODEL_TYPE,
        category="model",
        name=form.model_name,
        owner=owner,
        group=form.group_name,
        form=values,
        tasks=[task],
        depends_on=[form.dataset_id],
        extra={
            "network_name": form.network_name,
            "dataset_id": form.dataset_id,
            "image": dataset.extra.get("image", {}) if dataset else {},
        },
    )


CODE_PERMISSION = "code"


def code_refusal() -> str | None:
    """Why the signed-in person may not run a network written as Python here, or None when they may."""
    settings = workspace().settings
    if not has_permission(CODE_PERMISSION):
        return (
            "A PyTorch network written as Python runs as code on this server, which needs the 'code' permission "
            "(an admin grants it: python -m digits.users grant NAME code). Standard networks and Caffe prototxt "
            "networks need no permission."
        )
    if settings.auth == "password" and not sandbox.landlock_abi() and not settings.allow_unisolated_code:
        return (
            "This server cannot confine a member's Python code (its kernel has no Landlock), so it runs none; "
            "an admin may allow it anyway with the setting allow_unisolated_code."
        )
    return None


def _check_code(framework: str | None, text: str | None) -> None:
    if framework and text and runs_code(framework, text):
        refusal = code_refusal()
        if refusal:
            raise Forbidden(refusal)


def model_runs_code(job: Job) -> bool:
    """Whether a model job's network is Python a person wrote (so training or resuming it runs their code)."""
    settings = model_settings(job)
    framework = settings.framework
    if framework != "torch":
        return False
    path = file_in(workspace().store.job_dir(job.id), settings.network_file)
    if path is None:
        return True  # unknown: treated as code
    with open(path, encoding="utf-8") as fh:
        return runs_code(framework, fh.read())


def posted_values() -> dict[str, str]:
    """The submitted model form, a clone's fields under it (views/common.posted_with_clone)."""
    return posted_with_clone("model")


def create_from_request() -> list[Job]:
    """The model the form describes, or with a sweep (DIGITS' "[0.01, 0.02]" in Base learning rate or Batch size)
    one model per combination. Every combination is checked before any job is made; a refusal makes none."""
    owner = require_user()
    ws = workspace()
    values = posted_values()
    if values.get("method") == "custom":  # refused before the rest of the form is checked
        _check_code(values.get("framework"), values.get("custom_network"))
    # Up to 64 whole forms checked (a Caffe network analyzed for each): off the event loop.
    made = off_loop(plan, values, lambda v: read_model_form(v, ws.store, ws.gpus, ws.settings))
    combos, named = made.combos, made.named
    if made.errors:
        raise FormErrors(made.errors)
    _check_code(combos[0].form.settings.framework, combos[0].form.network_text)  # one network for all
    group = uuid.uuid4().hex[:12] if len(combos) > 1 else None
    ids: list[str] = []
    try:
        for _ in combos:
            ids.append(ws.store.reserve())  # a folder of its own, made exclusively
    except OSError as e:
        for job_id in ids:
            ws.store.release(job_id)
        raise storage_error(e) from None
    jobs: list[Job] = []
    for index, (combo, job_id) in enumerate(zip(combos, ids, strict=True)):
        form = combo.form
        try:
            job = build_job(form, owner, combo.values, job_id)
            if group:
                job.name = combo.name(form.model_name, named)
                job.extra["sweep_group"] = group
                job.extra["sweep"] = combo.swept
                job.extra["sweep_search"] = made.search
                job.extra["sweep_index"] = index  # ids made in the same second do not sort in the order made
            path = os.path.join(ws.store.job_dir(job_id), form.settings.network_file)
            try:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(form.network_text)
                ws.add_job(job)
            except OSError as e:
                raise storage_error(e, form.settings.network_file) from None
        except BaseException:
            for unused in ids[index:]:
                ws.store.release(unused)
            raise
        audit("create", job=job)
        jobs.append(job)
    return jobs


def _form_context(values, errors):
    datasets = [
        j
        for j in workspace().store.all()
        if j.category == "dataset" and j.type != GENERIC_DATASET_TYPE and j.status not in (Status.ERROR, Status.ABORTED)
    ]  # a generic dataset trains with New Model > Generic (model/generic_views.py)
    store = workspace().store
    models = [j for j in store.all() if j.category == "model" and j.status == Status.DONE]
    return dict(
        values=values,
        errors=errors,
        datasets=sorted(datasets, key=lambda j: j.id, reverse=True),
        previous=sorted(models, key=lambda j: j.id, reverse=True),
        previous_code={j.id for j in models if model_runs_code(j)},
        previous_snapshots={j.id: [s.epoch for s in snapshots(j, store.job_dir(j.id))] for j in models},
        previous_pretrained={j.id for j in models if model_settings(j).pretrained},
        code_refusal=code_refusal(),
        frameworks=FRAMEWORKS,
        networks=list_networks(),
        gpus=workspace().gpus,
        lr_params=LR_PARAMS,
        labels={**FIELD_LABELS, **getattr(errors, "labels", {})},  # with DIGITS' <id>-snapshot's
        max_sweep_jobs=MAX_SWEEP_JOBS,
    )


@bp.route("/models/images/classification/new")
def new():
    if not current_user():
        return redirect(url_for("auth.login", next=request.full_path))
    values = dict(request.args.items())
    clone = request.args.get("clone")
    if clone:
        cloned = job_or_404(clone, "model")  # the same pattern as a dataset's Clone: every field, the name marked
        values = {**cloned.form, "model_name": f"{cloned.name} (clone)"}
    return render_template("models/new.html", **_form_context(values, {}))


@bp.route("/models/images/classification", methods=["POST"])
def create():
    try:
        jobs = create_from_request()
    except FormErrors as e:
        if wants_json():
            raise
        return render_template("models/new.html", **_form_context(posted_values(), e.errors)), 400
    if len(jobs) > 1:  # a sweep: DIGITS answers {"jobs": [...]}, or sends a browser to the home page
        if wants_json():
            store = workspace().store
            return jsonify(
                jobs=[
                    {
                        **model_json(j, store.job_dir(j.id), store.get(j.extra["dataset_id"]), metrics=False),
                        "sweep_group": j.extra["sweep_group"],
                        "sweep": j.extra["sweep"],
                    }
                    for j in jobs
                ]
            )
        if jobs[0].extra["sweep_search"].get("method") == "random":  # ours: to the group's page
            return redirect(url_for("models.sweep_page", group=jobs[0].extra["sweep_group"]))
        return redirect(url_for("console.home"))
    job = jobs[0]
    if wants_json():
        dataset = workspace().store.get(job.extra["dataset_id"])
        return jsonify(model_json(job, workspace().store.job_dir(job.id), dataset))
    return redirect(url_for("models.show", job_id=job.id))


bp.add_url_rule("/models/images/classification/json", "create_json", create, methods=["POST"])
bp.add_url_rule("/models/images/classification.json", "create_dot_json", create, methods=["POST"])  # DIGITS' spelling


@bp.route("/models/<job_id>")
def show(job_id: str):
    job = job_or_404(job_id, "model")
    job_dir = workspace().store.job_dir(job.id)
    dataset = workspace().store.get(job.extra.get("dataset_id", ""))
    info = model_json(job, job_dir, dataset, metrics=False)  # the charts fetch the history, decimated
    return render_template(
        "models/show.html",
        job=job,
        dataset=dataset,
        error=first_error(job),
        info=info,
        latest=latest_reported(job_dir),
    )


@bp.route("/models/<job_id>/json")
def show_json(job_id: str):
    job = job_or_404(job_id, "model")
    dataset = workspace().store.get(job.extra.get("dataset_id", ""))
    info = model_json(job, workspace().store.job_dir(job.id), dataset)
    error = first_error(job)
    info["error"] = error["message"] if error else None
    return jsonify(info)


bp.add_url_rule("/models/<job_id>.json", "show_dot_json", show_json)  # DIGITS' spelling of the twin


@bp.route("/models/<job_id>/metrics/json")
def metrics_json(job_id: str):
    """The charts' points: every series decimated to ?points (two a pixel column), over ?from..?to epochs."""
    job = job_or_404(job_id, "model")
    points, x0, x1 = chart_args(request.args)
    return jsonify(chart_json(job, workspace().store.job_dir(job.id), points, x0, x1))


def _sweep_or_404(group: str) -> list[Job]:
    """The models of a sweep group; whoever may see its models may see it (job_or_404's rule: every job)."""
    jobs = group_members(workspace().store, group)
    if not jobs:
        raise NotFound(f"no sweep group {group!r}")
    return jobs


@bp.route("/models/sweeps/<group>")
def sweep_page(group: str):
    """A sweep's models side by side: their swept settings, status, final and best results, and their curves."""
    jobs = _sweep_or_404(group)
    info = group_json(workspace().store, group, jobs, points=16)  # the chart fetches its curves from the twin
    return render_template("models/sweep.html", group=group, jobs=jobs, info=info)


@bp.route("/models/sweeps/<group>/json")
def sweep_json(group: str):
    """The group page's JSON twin; ?points=N&from=EPOCH&to=EPOCH as the model's metrics route takes them."""
    jobs = _sweep_or_404(group)
    points, x0, x1 = chart_args(request.args)
    return jsonify(group_json(workspace().store, group, jobs, points, x0, x1))


@bp.app_template_global()
def sweep_url(job: Job) -> str | None:
    """The page of the sweep a model was made by, or None."""
    group = job.extra.get("sweep_group")
    return url_for("models.sweep_page", group=group) if group else None


bp.add_app_template_global(sweep_label, "sweep_label")


@bp.route("/models/<job_id>/resume", methods=["POST"])
def resume(job_id: str):
    job = job_or_404(job_id, "model")
    user = require_owner(job)
    if job.status not in (Status.ABORTED, Status.ERROR):
        raise Conflict(f"model {job.id} is {job.status.value}; only an aborted or failed model can be resumed")
    if model_runs_code(job):
        refusal = code_refusal()
        if refusal:
            raise Forbidden(refusal)
    workspace().scheduler.submit(job, message=f"resumed by {user}")
    audit("resume", job=job)
    if wants_json():
        return jsonify(status_json(job))
    return redirect(url_for("models.show", job_id=job.id))


@bp.route(f"/models/<job_id>/<any({', '.join(map(repr, NETWORK_FILES.values()))}):name>")
def network_file(job_id: str, name: str):
    job = job_or_404(job_id, "model")
    path = file_in(workspace().store.job_dir(job.id), name) if model_settings(job).network_file == name else None
    if path is None:
        raise NotFound(f"model {job.id} has no {name}")
    with open(path, encoding="utf-8") as fh:
        return Response(fh.read(), mimetype="text/plain; charset=utf-8")


@bp.route("/models/networks/<framework>/<name>")
def standard_network(framework: str, name: str):
    """A standard network's text, for "customize" in the editor."""
    if framework not in FRAMEWORKS:
        raise NotFound(f"no framework {framework!r} (known: {', '.join(FRAMEWORKS)})")
    try:
        text = get_network(name).text(framework)
    except KeyError as e:
        raise NotFound(str(e.args[0])) from None
    return Response(text, mimetype="text/plain; charset=utf-8")


@bp.app_template_global()
def model_settings_summary(job: Job) -> list[tuple[str, str]]:
    s = model_settings(job)
    rows = [
        (
            "Framework",
            s.framework
            if s.framework != "caffe"
            else f"caffe on {CAFFE_ENGINE_TITLES.get(s.caffe_engine, s.caffe_engine)}",
        ),
        ("Epochs", str(s.epochs)),
        ("Batch size", str(s.batch_size or "network default")),
        ("Solver", f"{s.solver_type} lr {s.learning_rate}, momentum {s.momentum}, weight decay {s.weight_decay}"),
        ("Learning rate policy", s.lr_policy.get("policy", "")),
        ("Mean", s.use_mean),
        ("Crop", str(s.crop_size or "network default")),
        ("Seed", str(s.seed)),
    ]
    if job.type == GENERIC_MODEL_TYPE:  # rows of features: no mean image, no crop
        rows = [row for row in rows if row[0] not in ("Mean", "Crop")]
    return rows


bp.add_app_template_global(model_settings, "model_settings")
bp.add_app_template_global(caffe_engine_choices, "caffe_engine_choices")


@bp.app_template_global()
def model_sparkline(job: Job) -> dict | None:
    """The console's accuracy (or loss) sparkline of a model."""
    return sparkline(workspace().store.job_dir(job.id))
