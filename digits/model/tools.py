"""Helpers for the new-model page: draw a network with its shapes (Visualize) and preview an lr policy."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from digits.errors import ApiError, FormErrors
from digits.folders.dataset import read_labels
from digits.forms import FormReader
from digits.model.caffe import analyze_for_display
from digits.model.caffe.solver import MAX_SOLVER_BYTES, SolverFileError, solver_form
from digits.model.forms import LR_POLICIES, network_crop, read_lr_policy
from digits.model.lr_policy import LRPolicy
from digits.model.settings import input_shape
from digits.model.standard import get_network
from digits.offload import off_loop
from digits.views.common import workspace

bp = Blueprint("model_tools", __name__)
DEFAULT_IMAGE = {"channels": 3, "width": 256, "height": 256}
VISUALIZE_LABELS = {
    "input_channels": "Input channels",
    "input_height": "Input height",
    "input_width": "Input width",
    "num_classes": "Number of classes",
    "crop_size": "Crop size",
}
MAX_INPUT_SIDE = 65_536
SOLVER_LABELS = {"solver": "Solver (solver.prototxt)", "solver_file": "Solver file (solver.prototxt)"}


def _network_text(r: FormReader) -> tuple[str, str]:
    framework = r.choice("framework", ("caffe", "torch"), "caffe")
    if r.raw("custom_network"):
        return r.text("custom_network", max_length=2_000_000), framework
    try:
        return get_network(r.text("standard_networks", "lenet")).text(framework), framework
    except KeyError as e:
        raise ApiError(str(e.args[0])) from None


def _explicit_input(r: FormReader) -> tuple[int, int, int] | None:
    """(channels, height, width) typed for Visualize: all three or none."""
    given = {
        name: r.integer(name, None, minimum=1, maximum=MAX_INPUT_SIDE)
        for name in ("input_channels", "input_height", "input_width")
    }
    if r.errors or not any(given.values()):
        return None
    for name, size in given.items():
        if size is None:
            r.error(name, "Give the input's channels, height and width together.")
    return None if r.errors else (given["input_channels"], given["input_height"], given["input_width"])


@bp.route("/models/visualize/json", methods=["POST"])
def visualize():
    """The network as a graph of layers with output shapes and parameter counts; the faulty layer is marked.

    The input is, in order: the one posted (input_channels, input_height, input_width), the one the network
    declares (an Input layer, net-level input_shape/input_dim), the dataset's images (cropped), 3x256x256.
    The class count is the posted num_classes, else the dataset's, else unknown (never guessed). A layer
    type DIGITS refuses (Python, WindowData) answers 400 with the graph and why.
    """
    r = FormReader(request.form, VISUALIZE_LABELS)
    text, framework = _network_text(r)
    if framework != "caffe":
        raise ApiError("Visualize draws Caffe networks; a PyTorch network is built and checked when training starts.")
    explicit = _explicit_input(r)
    classes = r.integer("num_classes", None, minimum=1, maximum=1_000_000)
    crop = r.integer("crop_size", None, minimum=1)
    stage = r.choice("stage", ("train", "val", "deploy"), "deploy")
    if r.errors:
        raise FormErrors(r.errors)
    image = DEFAULT_IMAGE
    dataset = workspace().store.get(r.text("dataset")) if r.text("dataset") else None
    if dataset is not None and dataset.category == "dataset":
        image = dataset.extra.get("image") or DEFAULT_IMAGE
        if classes is None:
            classes = len(read_labels(workspace().store.job_dir(dataset.id))) or None
    crop = crop or network_crop(text, framework)
    if crop and (crop > int(image["height"]) or crop > int(image["width"])):
        crop = None
    graph = off_loop(analyze_for_display, text, stage, explicit, classes or 0, default_input=input_shape(image, crop))
    if graph.get("error", {}).get("refused"):
        return jsonify(graph), 400
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


@bp.route("/models/solver/json", methods=["POST"])
def solver_fields():
    """A Caffe solver.prototxt (`solver`: its text, or `solver_file`: an upload) as the New Model form's fields:
    {"fields": {field: value}, "notes": [what was converted or left out, and why]}."""
    upload = request.files.get("solver_file")
    if upload is not None and upload.filename:
        data = upload.stream.read(MAX_SOLVER_BYTES + 1)
        if len(data) > MAX_SOLVER_BYTES:
            raise FormErrors({"solver_file": [f"A solver file is at most {MAX_SOLVER_BYTES:,} bytes."]}, SOLVER_LABELS)
        text = data.decode("utf-8", "replace")
        field = "solver_file"
    else:
        text = request.form.get("solver", "")
        field = "solver"
    if not text.strip():
        raise FormErrors({field: ["Send a Caffe solver.prototxt."]}, SOLVER_LABELS)
    try:
        fields, notes = solver_form(text)
    except SolverFileError as e:
        raise FormErrors({field: [str(e)]}, SOLVER_LABELS) from None
    return jsonify({"fields": fields, "notes": notes})
