"""The New Model helpers DIGITS 6 clients call, in DIGITS' spelling, over the ones we have.

GET|POST /models/customize?network=NAME_OR_JOB&framework=caffe   {"network": text, "snapshot": file or null}
GET|POST /models/visualize-network?framework=caffe               custom_network -> the Visualize graph
GET|POST /models/visualize-lr                                    lr_policy fields -> {"data": {"columns"}}
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from digits.errors import ApiError, FormErrors, NotFound
from digits.folders import file_in
from digits.folders.model import pick_snapshot, snapshots
from digits.forms import FormReader
from digits.job import is_job_id
from digits.model.caffe import analyze_for_display
from digits.model.forms import FIELD_LABELS, network_crop, read_lr_policy
from digits.model.lr_policy import LRPolicy
from digits.model.settings import input_shape, model_settings
from digits.model.standard import FRAMEWORKS, get_network
from digits.model.tools import DEFAULT_IMAGE
from digits.offload import off_loop
from digits.views.common import job_or_404, workspace
from digits.views.digits_compat import json_errors

bp = Blueprint("model_compat", __name__)
json_errors(bp)
# DIGITS draws the curve at each whole percent of training.
LR_POINTS = 101
MAX_LEARNING_RATES = 20


def _framework(required: bool = False) -> str:
    framework = request.args.get("framework") or request.form.get("framework") or ""
    if not framework:
        if required:
            raise ApiError("give the framework: ?framework=caffe")
        return "caffe"
    if framework not in FRAMEWORKS:
        raise ApiError(f"no framework {framework!r} (known: {', '.join(FRAMEWORKS)})")
    return framework


@bp.route("/models/customize", methods=["GET", "POST"])
def customize():
    """A network's text for the editor: a standard network by name, or a previous model's network (and, with
    snapshot_epoch, the file of that snapshot in the model's folder; -1 or a missing epoch: none)."""
    network = request.values.get("network", "").strip()
    if not network:
        raise ApiError("give the network: ?network=lenet (a standard network) or a model's job id")
    framework = _framework()
    if not is_job_id(network):
        try:
            return jsonify({"network": get_network(network).text(framework), "snapshot": None})
        except KeyError as e:
            raise NotFound(str(e.args[0])) from None
    job = job_or_404(network, "model")
    job_dir = workspace().store.job_dir(job.id)
    name = model_settings(job).network_file
    path = file_in(job_dir, name)
    if path is None:
        raise NotFound(f"model {job.id} has no {name}")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    snapshot = None
    epoch = request.values.get("snapshot_epoch", "0").strip() or "0"
    try:
        wanted = float(epoch)
    except ValueError:
        raise ApiError(f"snapshot_epoch must be a number, not {epoch!r}") from None
    if wanted > 0:
        snap = pick_snapshot(snapshots(job, job_dir), epoch)
        if snap is None:
            raise NotFound(f"model {job.id} has no snapshot at epoch {epoch}")
        snapshot = snap.name
    return jsonify({"network": text, "snapshot": snapshot, "framework": model_settings(job).framework})


@bp.route("/models/visualize-network", methods=["GET", "POST"])
def visualize_network():
    """The network posted as custom_network, drawn as Visualize draws it: its layers with output shapes and
    parameter counts, the faulty layer marked (for the input the network declares, else a 256x256 colour
    image; the class count is unknown, so a layer left for it says so)."""
    framework = _framework(required=True)
    r = FormReader(request.values, FIELD_LABELS)
    text = r.text("custom_network", required=True, max_length=2_000_000)
    if r.errors:
        raise FormErrors(r.errors)
    if framework != "caffe":
        raise ApiError("Visualize draws Caffe networks; a PyTorch network is built and checked when training starts.")
    crop = network_crop(text, framework)
    if crop and crop > min(DEFAULT_IMAGE["height"], DEFAULT_IMAGE["width"]):
        crop = None
    shape = input_shape(DEFAULT_IMAGE, crop)
    return jsonify(off_loop(analyze_for_display, text, "deploy", None, 0, shape))


@bp.route("/models/visualize-lr", methods=["GET", "POST"])
def visualize_lr():
    """The learning rate at each whole percent of training, one column per learning rate (DIGITS sweeps a
    comma-separated list): {"data": {"columns": [["Learning Rate 0", lr0, ..., lr100], ...]}}."""
    values = request.values
    text = values.get("learning_rate", "0.01")
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        message = f"Expected numbers separated by commas (got {text[:50]!r})."
        raise FormErrors({"learning_rate": [message]}, FIELD_LABELS) from None
    if not rates or len(rates) > MAX_LEARNING_RATES or any(not lr > 0 for lr in rates):
        message = f"Give 1 to {MAX_LEARNING_RATES} learning rates, each greater than 0."
        raise FormErrors({"learning_rate": [message]}, FIELD_LABELS)
    r = FormReader(values, FIELD_LABELS)
    params = read_lr_policy(r, rates[0])
    if r.errors:
        raise FormErrors(r.errors)
    name = params.pop("policy")
    columns = []
    for i, lr in enumerate(rates):
        curve = LRPolicy.from_form(name, lr, LR_POINTS - 1, **params).curve(LR_POINTS)
        columns.append([f"Learning Rate {i}", *(value for _, value in curve)])
    return jsonify({"data": {"columns": columns}, "policy": name})
