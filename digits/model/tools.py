"""Helpers for the new-model page: draw a network with its shapes (Visualize) and preview an lr policy."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from digits.errors import ApiError, FormErrors
from digits.folders.dataset import read_labels
from digits.forms import FormReader
from digits.model.caffe import analyze_for_display
from digits.model.forms import LR_POLICIES, network_crop, read_lr_policy
from digits.model.lr_policy import LRPolicy
from digits.model.settings import input_shape
from digits.model.standard import get_network
from digits.views.common import workspace

bp = Blueprint("model_tools", __name__)
DEFAULT_IMAGE = {"channels": 3, "width": 256, "height": 256}


def _network_text(r: FormReader) -> tuple[str, str]:
    framework = r.choice("framework", ("caffe", "torch"), "caffe")
    if r.raw("custom_network"):
        return r.text("custom_network", max_length=2_000_000), framework
    try:
        return get_network(r.text("standard_networks", "lenet")).text(framework), framework
    except KeyError as e:
        raise ApiError(str(e.args[0])) from None


@bp.route("/models/visualize/json", methods=["POST"])
def visualize():
    """The network as a graph of layers with output shapes and parameter counts; the faulty layer is marked."""
    r = FormReader(request.form)
    text, framework = _network_text(r)
    if framework != "caffe":
        raise ApiError("Visualize draws Caffe networks; a PyTorch network is built and checked when training starts.")
    image, classes = DEFAULT_IMAGE, 10
    dataset = workspace().store.get(r.text("dataset")) if r.text("dataset") else None
    if dataset is not None and dataset.category == "dataset":
        image = dataset.extra.get("image") or DEFAULT_IMAGE
        classes = len(read_labels(workspace().store.job_dir(dataset.id))) or classes
    crop = r.integer("crop_size", None, minimum=1) or network_crop(text, framework)
    if crop and (crop > int(image["height"]) or crop > int(image["width"])):
        crop = None
    stage = r.choice("stage", ("train", "val", "deploy"), "deploy")
    graph = analyze_for_display(text, stage, input_shape(image, crop), classes)
    return jsonify(graph)


@bp.route("/models/lr_policy/json")
def lr_policy():
    """The learning rate over training (percent of training, lr) for the chosen policy, as the form shows it."""
    r = FormReader(request.args)
    lr = r.number("learning_rate", 0.01, minimum=0.0, exclusive_minimum=True) or 0.01
    policy = read_lr_policy(r, lr)
    if r.errors:
        raise FormErrors(r.errors)
    params = dict(policy)
    name = params.pop("policy")
    if name not in LR_POLICIES:
        raise ApiError(f"unknown lr policy {name!r}")
    curve = LRPolicy.from_form(name, lr, 1000, **params).curve(101)
    return jsonify({"policy": name, "points": [[round(pct, 3), value] for pct, value in curve]})
