"""The New Model > Images > Classification form, with DIGITS' field names, checked before any job exists.

Everything here is torch-free: a custom Caffe network is analyzed (parsed, shapes inferred) in the web
process; a custom PyTorch network is only compiled for syntax (it runs in the training worker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from digits import caffe_status
from digits.config import Settings
from digits.folders import file_in
from digits.folders.dataset import read_labels, training_images
from digits.folders.generic import GENERIC_DATASET_TYPE
from digits.forms import FormReader
from digits.model.best_epoch import read_best_epoch
from digits.model.caffe import analyze, transform_crop
from digits.model.frozen_layers import read_frozen_layers
from digits.model.lr_policy import LRPolicy
from digits.model.quotas import (
    caffe_params_problem,
    optimizer_slots,
    snapshot_bytes,
    snapshot_count,
    snapshots_problem,
)
from digits.model.settings import CAFFE_ENGINES, TrainSettings, input_shape, iterations_per_epoch, model_settings
from digits.model.standard import FRAMEWORKS, get_network
from digits.model.start_weights import read_pretrained, read_previous_weights
from digits.model.torch_networks import check_syntax
from digits.status import Status

SOLVER_TYPES = ("SGD", "NESTEROV", "ADAGRAD", "RMSPROP", "ADADELTA", "ADAM")
LR_POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")
LR_PARAMS = {  # field: (default, minimum, maximum)
    "lr_step_size": (33.0, 0.0, 100.0),
    "lr_step_gamma": (0.1, 0.0, None),
    "lr_multistep_gamma": (0.5, 0.0, None),
    "lr_exp_gamma": (0.95, 0.0, None),
    "lr_inv_gamma": (0.1, 0.0, None),
    "lr_inv_power": (0.5, 0.0, None),
    "lr_poly_power": (3.0, 0.0, None),
    "lr_sigmoid_step": (50.0, 0.0, 100.0),
    "lr_sigmoid_gamma": (0.1, 0.0, None),
}
MAX_SEED = 2**32 - 1  # DIGITS accepted any 32-bit unsigned seed (its own tests use 3405691582)
AUG_FLIPS = ("none", "fliplr", "flipud", "fliplrud")
# The label a person sees for each field of New Model, by its name (DIGITS' names, which scripts send): error
# messages name fields by these. Where the page shows one word for several fields (Gamma), the policy is added.
FIELD_LABELS = {
    "dataset": "Dataset",
    "model_name": "Model name",
    "group_name": "Group name (optional)",
    "framework": "Framework",
    "caffe_engine": "Caffe engine",
    "method": "Network",
    "standard_networks": "Standard networks",
    "previous_networks": "Start from a trained model",
    "custom_network": "Network definition",
    "custom_network_snapshot": "Pretrained weights",
    "train_epochs": "Training epochs",
    "random_seed": "Random seed",
    "snapshot_interval": "Snapshot every (epochs)",
    "val_interval": "Validate every (epochs)",
    "batch_size": "Batch size",
    "batch_accumulation": "Batch accumulation",
    "solver_type": "Solver type",
    "learning_rate": "Base learning rate",
    "momentum": "Momentum",
    "weight_decay": "Weight decay",
    "rms_decay": "RMS decay",
    "lr_policy": "Learning rate policy",
    "lr_step_size": "Step size (% of training)",
    "lr_step_gamma": "Gamma (step down)",
    "lr_multistep_values": "Step values (% of training)",
    "lr_multistep_gamma": "Gamma (arbitrary steps)",
    "lr_exp_gamma": "Gamma (exponential decay)",
    "lr_inv_gamma": "Gamma (inverse decay)",
    "lr_inv_power": "Power (inverse decay)",
    "lr_poly_power": "Power (polynomial decay)",
    "lr_sigmoid_step": "Step (% of training)",
    "lr_sigmoid_gamma": "Gamma (sigmoid decay)",
    "crop_size": "Crop size",
    "use_mean": "Subtract mean",
    "shuffle": "Shuffle the training data each epoch",
    "aug_flip": "Flipping",
    "aug_quad_rot": "Quadrilateral rotation",
    "aug_rot": "Rotation (± degrees)",
    "aug_scale": "Rescale (± fraction)",
    "aug_noise": "Noise (std, fraction of 255)",
    "aug_contrast": "Contrast (± factor)",
    "aug_whitening": "Whitening (per image)",
    "aug_hsv_use": "HSV shifting",
    "aug_hsv_h": "Hue",
    "aug_hsv_s": "Saturation",
    "aug_hsv_v": "Value",
    "select_gpu_count": "Number of GPUs",
    "select_gpus": "Or these GPUs (e.g. 0,1)",
    # Random search (model/sweeps.py): several models with settings drawn from ranges.
    "sweep_random": "Random search",
    "sweep_count": "Number of models",
    "sweep_seed": "Search seed",
    "sweep_lr_min": "Learning rate from",
    "sweep_lr_max": "Learning rate to",
    "sweep_batch_sizes": "Batch sizes to draw from",
}
# The label of DIGITS' `<id>-snapshot` field (the previous model's snapshot to start from).
AUG_QUAD_ROTS = ("none", "rot90", "rot180", "rotall")
CAFFE_ENGINE_TITLES = {"torch": "PyTorch compilation", "pycaffe": "Real Caffe (pycaffe, CPU)"}
# The engine a Caffe network trains on unless the form says otherwise: the faster of the two on LeNet/MNIST
# (bench/caffe_engines.py, 1 epoch on this 2-core CPU: torch 2,261 img/s, pycaffe 877 img/s, val accuracy 98.2% both).
FASTER_CAFFE_ENGINE = "torch"


def caffe_engine_choices() -> dict[str, Any]:
    """What the Caffe engine field offers here: {"engines": [(value, title)], "default", "unavailable": why
    real Caffe cannot be chosen (None where it can)}, from digits.caffe_status without importing caffe."""
    reason = caffe_status.unavailable_reason()
    engines = [e for e in CAFFE_ENGINES if e != "pycaffe" or reason is None]
    return {
        "engines": [(e, CAFFE_ENGINE_TITLES[e]) for e in engines],
        "default": FASTER_CAFFE_ENGINE if FASTER_CAFFE_ENGINE in engines else "torch",
        "unavailable": reason,
    }


def read_caffe_engine(r: FormReader, framework: str) -> str:
    """The engine of a Caffe network; real Caffe where it is not built is an error that says why. PyTorch networks
    have one engine: the field is ignored for them (the page keeps it beside the framework choice)."""
    choices = caffe_engine_choices()
    engine = r.choice("caffe_engine", CAFFE_ENGINES, choices["default"])
    if framework != "caffe":
        return "torch"
    if engine == "pycaffe" and choices["unavailable"]:
        r.error("caffe_engine", f"Real Caffe is not available on this server: {choices['unavailable']}.")
        return "torch"
    return engine


@dataclass
class ModelForm:
    model_name: str
    group_name: str
    dataset_id: str
    method: str
    network_name: str | None
    network_text: str
    previous_job: str | None
    settings: TrainSettings
    gpu_count: int = 0
    gpu_ids: list[int] = field(default_factory=list)


def network_crop(text: str, framework: str) -> int | None:
    """The crop size a Caffe network asks for in its data layer's transform_param, if any (torch-free)."""
    if framework != "caffe":
        return None
    return transform_crop(text)


def check_network(
    text: str, framework: str, image: dict[str, Any], crop: int | None, num_classes: int, r: FormReader, field_name: str
):
    """Report a network that cannot work with this dataset as a field error (line, layer, shapes).

    Returns a Caffe network's analyzed train stage (None for PyTorch networks and on errors).
    """
    if framework == "caffe":
        shape = input_shape(image, crop)
        specs = {}
        for stage in ("train", "val", "deploy"):
            try:
                specs[stage] = analyze(text, stage=stage, input_shape=shape, num_classes=num_classes)
            except Exception as e:  # noqa: BLE001 - NetworkError/TextFormatError carry the message a person needs
                r.error(field_name, f"{e}" if stage == "train" else f"{stage} stage: {e}")
                return None
        return specs["train"]
    problem = check_syntax(text)
    if problem is not None:
        r.error(field_name, str(problem))
    return None


def check_caffe_quotas(spec, train: TrainSettings, entries: int | None, r: FormReader, field_name: str) -> None:
    """Refuse a Caffe network above the parameter quota, or whose snapshots would pass the snapshot quota."""
    problem = caffe_params_problem(spec, train.max_model_params)
    if problem:
        r.error(field_name, problem)
        return
    # The count of snapshots needs trustworthy epochs, interval and batch; their own errors come first.
    if train.max_snapshot_bytes is None or set(r.errors) & {"train_epochs", "snapshot_interval", "batch_size"}:
        return
    buffers = sum(math.prod(shape) for layer in spec.layers for shape in layer.buffer_shapes)
    slots = optimizer_slots(train.framework, train.solver_type, train.momentum)
    blobs = sum(len(layer.param_shapes) + len(layer.buffer_shapes) for layer in spec.layers)
    per_snapshot = snapshot_bytes(spec.total_params, buffers, spec.total_params, slots, tensors=blobs)
    batch = (train.batch_size or spec.batch_size or 64) * train.batch_accumulation
    ipe = iterations_per_epoch(entries, batch) if entries else None
    problem = snapshots_problem(
        epochs=train.epochs,
        interval=train.snapshot_interval,
        per_snapshot=per_snapshot,
        count=snapshot_count(train.epochs, train.snapshot_interval, ipe),
        limit=train.max_snapshot_bytes,
        iters_per_epoch=ipe,
    )
    if problem:
        r.error(field_name if per_snapshot > train.max_snapshot_bytes else "snapshot_interval", problem)


def read_lr_policy(r: FormReader, learning_rate: float) -> dict[str, Any]:
    policy = r.choice("lr_policy", LR_POLICIES, "step")
    params: dict[str, Any] = {}
    for name, (default, low, high) in LR_PARAMS.items():
        params[name] = r.number(name, default, minimum=low, maximum=high)
    params["lr_multistep_values"] = r.text("lr_multistep_values", "50,85", max_length=200)
    try:
        LRPolicy.from_form(policy, learning_rate, 100, **params)
    except ValueError as e:
        r.error("lr_multistep_values" if policy == "multistep" else "lr_policy", str(e))
    return {"policy": policy, **params}


def read_augmentation(r: FormReader) -> dict[str, Any]:
    aug = {
        "flip": r.choice("aug_flip", AUG_FLIPS, "none"),
        "quad_rot": r.choice("aug_quad_rot", AUG_QUAD_ROTS, "none"),
        "rot": r.integer("aug_rot", 0, minimum=0, maximum=180),
        "scale": r.number("aug_scale", 0.0, minimum=0.0, maximum=1.0),
        "noise": r.number("aug_noise", 0.0, minimum=0.0, maximum=1.0),
        "contrast": r.number("aug_contrast", 0.0, minimum=0.0, maximum=5.0),
        "whitening": r.boolean("aug_whitening"),
        "hsv": None,
    }
    if r.boolean("aug_hsv_use"):
        aug["hsv"] = {c: r.number(f"aug_hsv_{c}", 0.02 if c == "h" else 0.04, minimum=0.0, maximum=0.5) for c in "hsv"}
    return aug


def read_gpus(r: FormReader, available: list[int]) -> tuple[int, list[int]]:
    """(count, specific indices) of GPUs for the job; (0, []) on a CPU-only server."""
    if not available:
        return 0, []
    ids = r.text("select_gpus") or r.text("select_gpu")
    if ids and ids != "next":
        try:
            chosen = sorted({int(x) for x in ids.replace(" ", "").split(",") if x})
        except ValueError:
            r.error("select_gpus", f"Expected GPU indices like 0,1 (got {ids!r}).")
            return 1, []
        unknown = [g for g in chosen if g not in available]
        if unknown:
            r.error("select_gpus", f"GPU {unknown[0]} is not on this server (it has {available}).")
        return len(chosen), chosen
    return r.integer("select_gpu_count", 1, minimum=1, maximum=len(available)) or 1, []


def read_solver(r: FormReader, quotas: Settings) -> dict[str, Any]:
    """The training fields every model form shares (epochs and snapshot interval within the server's limits, the
    solver and its learning-rate schedule, batch, seed, shuffle, the best epoch), as TrainSettings' arguments."""
    d = TrainSettings()  # the defaults, as the worker would fill them in
    epochs = r.integer("train_epochs", d.epochs, minimum=1)
    if epochs is not None and epochs > quotas.max_epochs:
        r.error("train_epochs", f"At most {quotas.max_epochs:,} epochs on this server (setting max_epochs).")
    interval = r.number("snapshot_interval", d.snapshot_interval, minimum=0.0, exclusive_minimum=True) or 1.0
    if interval < quotas.min_snapshot_interval:
        r.error(
            "snapshot_interval",
            f"At least {quotas.min_snapshot_interval:g} epochs between snapshots on this server "
            "(setting min_snapshot_interval).",
        )
    learning_rate = r.number("learning_rate", d.learning_rate, minimum=0.0, exclusive_minimum=True, maximum=10.0)
    return dict(
        epochs=epochs or d.epochs,
        snapshot_interval=interval,
        val_interval=r.number("val_interval", d.val_interval, minimum=0.0, exclusive_minimum=True) or d.val_interval,
        seed=r.integer("random_seed", None, minimum=0, maximum=MAX_SEED) or d.seed,
        batch_size=r.integer("batch_size", d.batch_size, minimum=1, maximum=65536),
        batch_accumulation=r.integer("batch_accumulation", d.batch_accumulation, minimum=1, maximum=1024) or 1,
        solver_type=r.choice("solver_type", SOLVER_TYPES, d.solver_type),
        learning_rate=learning_rate or d.learning_rate,
        momentum=r.number("momentum", d.momentum, minimum=0.0, maximum=0.999999),
        weight_decay=r.number("weight_decay", d.weight_decay, minimum=0.0, maximum=1.0),
        rms_decay=r.number("rms_decay", d.rms_decay, minimum=0.0, maximum=0.999999),
        lr_policy=read_lr_policy(r, learning_rate or d.learning_rate),
        shuffle=r.boolean("shuffle", d.shuffle),
        max_model_params=quotas.max_model_params,
        max_snapshot_bytes=quotas.max_snapshot_bytes,
        **read_best_epoch(r),
    )


def read_model_form(values, store, gpus: list[int], settings=None) -> tuple[ModelForm | None, dict[str, list[str]]]:
    """Check a submitted model form against the jobs in `store`; returns (form, {}) or (None, errors)."""
    quotas = settings if settings is not None else Settings()
    r = FormReader(values, FIELD_LABELS)
    name = r.text("model_name", required=True, max_length=200)
    group = r.text("group_name", max_length=200)
    framework = r.choice("framework", tuple(FRAMEWORKS), "caffe")
    method = r.choice("method", ("standard", "previous", "custom"), "standard")

    dataset_id = r.text("dataset", required=True)
    dataset = store.get(dataset_id) if dataset_id else None
    image, labels = {}, 0
    if dataset_id and (dataset is None or dataset.category != "dataset"):
        r.error("dataset", f"No dataset with id {dataset_id!r}.")
    elif dataset is not None and dataset.type == GENERIC_DATASET_TYPE:
        r.error("dataset", f"Dataset {dataset.name} is a generic dataset: train on it with New Model > Generic.")
    elif dataset is not None:
        if dataset.status in (Status.ERROR, Status.ABORTED):
            r.error("dataset", f"Dataset {dataset.name} ended {dataset.status.value}; it cannot be trained on.")
        image = dataset.extra.get("image", {})
        labels = _label_count(store, dataset)

    network_name, previous, text, start_weights = None, None, "", None
    if method == "standard":
        network_name = r.text("standard_networks", "lenet")
        try:
            text = get_network(network_name).text(framework)
        except KeyError as e:
            r.error("standard_networks", str(e.args[0]))
    elif method == "previous":
        previous = r.text("previous_networks", required=True)
        prev = store.get(previous) if previous else None
        if previous and (prev is None or prev.category != "model"):
            r.error("previous_networks", f"No model with id {previous!r}.")
        elif prev is not None:
            framework = model_settings(prev).framework
            text = _read_network(store, prev)
            if not text:
                r.error("previous_networks", f"Model {prev.name}'s network file is gone from its folder.")
            start_weights = read_previous_weights(r, store, prev)
    else:
        # A browser posts a textarea's line breaks as CRLF; the network file keeps the text as it was typed.
        text = r.text("custom_network", required=True, max_length=2_000_000).replace("\r\n", "\n")
        if text and not text.endswith("\n"):
            text += "\n"

    caffe_engine = read_caffe_engine(r, framework)
    solver = read_solver(r, quotas)
    crop = r.integer("crop_size", None, minimum=1, maximum=4096)
    train = TrainSettings(
        framework=framework,
        caffe_engine=caffe_engine,
        crop_size=crop,
        use_mean=r.choice("use_mean", ("none", "image", "pixel"), TrainSettings().use_mean),
        augmentation=read_augmentation(r),
        pretrained=(read_pretrained(r, settings) if settings is not None else None) or start_weights,
        frozen_layers=read_frozen_layers(r, framework, text),
        **solver,
    )
    gpu_count, gpu_ids = read_gpus(r, gpus)
    if text and image and "dataset" not in r.errors:
        net_crop = crop or network_crop(text, framework)
        if net_crop and (net_crop > int(image["height"]) or net_crop > int(image["width"])):
            r.error(
                "crop_size", f"Crop {net_crop} is larger than the dataset's {image['width']}x{image['height']} images."
            )
        else:
            field_name = {"standard": "standard_networks", "previous": "previous_networks"}.get(
                method, "custom_network"
            )
            spec = check_network(text, framework, image, net_crop, max(labels, 2), r, field_name)
            if spec is not None:
                check_caffe_quotas(spec, train, _train_entries(store, dataset), r, field_name)
    if r.errors:
        return None, r.errors
    return ModelForm(name, group, dataset_id, method, network_name, text, previous, train, gpu_count, gpu_ids), {}


def _label_count(store, dataset) -> int:
    return len(read_labels(store.job_dir(dataset.id)))


def _train_entries(store, dataset) -> int | None:
    """Training images in the dataset, when its folder says, for the iterations per epoch."""
    return training_images(store.job_dir(dataset.id))


def _read_network(store, job) -> str:
    path = file_in(store.job_dir(job.id), model_settings(job).network_file)
    if path is None:
        return ""
    with open(path, encoding="utf-8") as fh:
        return fh.read()
