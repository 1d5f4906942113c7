"""The New Model > Generic form (DIGITS' /models/generic/new): a model over a generic (CSV / NumPy) dataset.

The network is the standard MLP (its hidden layer sizes and dropout are fields), a PyTorch network.py defining
build_model(*, num_features, num_outputs), or a Caffe prototxt over an Input of 1 x 1 x features ending in an
InnerProduct and SoftmaxWithLoss (classification only). The solver's fields are the image form's, read by the
same helpers. Torch-free: a Caffe network is analyzed here, a PyTorch one only compiled for syntax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from digits.config import Settings
from digits.folders.generic import GENERIC_DATASET_TYPE, GenericFolderError, open_generic
from digits.forms import FormReader
from digits.model.best_epoch import LABELS as BEST_EPOCH_LABELS
from digits.model.caffe import analyze
from digits.model.forms import FIELD_LABELS as IMAGE_LABELS
from digits.model.forms import read_gpus, read_solver
from digits.model.settings import TrainSettings
from digits.model.standard import get_network, list_networks
from digits.model.torch_networks import check_syntax
from digits.status import Status

GENERIC_FRAMEWORKS = {"torch": "PyTorch", "caffe": "Caffe"}
MAX_HIDDEN_LAYERS = 16
MAX_HIDDEN_SIZE = 65536
FIELD_LABELS = {
    **{k: v for k, v in IMAGE_LABELS.items() if not k.startswith(("aug_", "sweep_", "caffe_", "previous_"))},
    "dataset": "Dataset",
    "method": "Network",
    "standard_networks": "Standard networks",
    "custom_network": "Network definition",
    "mlp_hidden_sizes": "Hidden layer sizes",
    "mlp_dropout": "Dropout",
    **BEST_EPOCH_LABELS,
}


@dataclass
class GenericModelForm:
    model_name: str
    group_name: str
    dataset_id: str
    problem: str
    method: str
    network_name: str | None
    network_text: str
    settings: TrainSettings
    options: dict[str, Any] = field(default_factory=dict)
    gpu_count: int = 0
    gpu_ids: list[int] = field(default_factory=list)


def read_hidden_sizes(r: FormReader) -> list[int]:
    """'64, 32' -> [64, 32]; empty: the MLP's default (no hidden layer is '0' or 'none')."""
    raw = r.text("mlp_hidden_sizes", "64,64", max_length=400)
    if raw.lower() in ("0", "none"):
        return []
    try:
        sizes = [int(part) for part in raw.replace(" ", "").split(",") if part]
    except ValueError:
        r.error("mlp_hidden_sizes", f"Expected whole numbers separated by commas, like 64,32 (got {raw!r}).")
        return []
    if len(sizes) > MAX_HIDDEN_LAYERS:
        r.error("mlp_hidden_sizes", f"At most {MAX_HIDDEN_LAYERS} hidden layers.")
    elif any(not 1 <= s <= MAX_HIDDEN_SIZE for s in sizes):
        r.error("mlp_hidden_sizes", f"Each size must be from 1 to {MAX_HIDDEN_SIZE:,}.")
    return sizes


def _dataset(r: FormReader, store):
    """The chosen generic dataset (opened when its folder is built), or None with the field's error."""
    dataset_id = r.text("dataset", required=True)
    job = store.get(dataset_id) if dataset_id else None
    if not dataset_id:
        return None, None
    if job is None or job.category != "dataset":
        r.error("dataset", f"No dataset with id {dataset_id!r}.")
        return None, None
    if job.type != GENERIC_DATASET_TYPE:
        r.error("dataset", f"Dataset {job.name} is an image dataset: train on it with New Model > Images.")
        return None, None
    if job.status in (Status.ERROR, Status.ABORTED):
        r.error("dataset", f"Dataset {job.name} ended {job.status.value}; it cannot be trained on.")
        return None, None
    try:
        return job, open_generic(store.job_dir(job.id))
    except GenericFolderError:
        return job, None  # still being built: the network is checked by the worker when it starts


def check_generic_network(text: str, framework: str, problem: str, dataset, r: FormReader, field_name: str) -> None:
    """Report a network that cannot train on this dataset (None while it is being built) as a field's error."""
    if framework == "torch":
        error = check_syntax(text)
        if error is not None:
            r.error(field_name, str(error))
        return
    if problem == "regression":
        r.error(
            "framework",
            "A Caffe network trains on a classification dataset here (SoftmaxWithLoss); this dataset has a numeric "
            "target: use the MLP or a PyTorch network.",
        )
        return
    if dataset is None:
        return  # its numbers are not known yet: the worker builds the network when the dataset is done
    shape = (1, 1, dataset.num_features)
    for stage in ("train", "val", "deploy"):
        try:
            analyze(text, stage=stage, input_shape=shape, num_classes=dataset.num_outputs)
        except Exception as e:  # noqa: BLE001 - NetworkError/TextFormatError carry the message a person needs
            r.error(field_name, f"{e}" if stage == "train" else f"{stage} stage: {e}")
            return


def read_generic_model_form(
    values, store, gpus: list[int], settings: Settings | None = None
) -> tuple[GenericModelForm | None, dict[str, list[str]]]:
    """Check a submitted generic model form against the jobs in `store`; (form, {}) or (None, errors)."""
    quotas = settings if settings is not None else Settings()
    r = FormReader(values, FIELD_LABELS)
    name = r.text("model_name", required=True, max_length=200)
    group = r.text("group_name", max_length=200)
    job, dataset = _dataset(r, store)
    method = r.choice("method", ("standard", "custom"), "standard")
    framework = r.choice("framework", tuple(GENERIC_FRAMEWORKS), "torch")
    network_name, text, options = None, "", {}
    if method == "standard":
        network_name = r.text("standard_networks", "mlp")
        if network_name not in [n.name for n in list_networks(data="generic")]:
            known = ", ".join(n.name for n in list_networks(data="generic"))
            r.error("standard_networks", f"No standard network {network_name!r} for generic data (known: {known}).")
        else:
            framework = get_network(network_name).frameworks[0]
            text = get_network(network_name).text(framework)
        options = {
            "hidden_sizes": read_hidden_sizes(r),
            "dropout": r.number("mlp_dropout", 0.0, minimum=0.0, maximum=0.95) or 0.0,
        }
    else:
        text = r.text("custom_network", required=True, max_length=2_000_000).replace("\r\n", "\n")
        if text and not text.endswith("\n"):
            text += "\n"

    train = TrainSettings(
        framework=framework,
        use_mean="none",  # features are normalized by the training split's mean and std instead
        **read_solver(r, quotas),
    )
    gpu_count, gpu_ids = read_gpus(r, gpus)
    problem = ""
    if job is not None:
        problem = dataset.problem if dataset is not None else (job.extra.get("generic") or {}).get("problem", "")
    if problem == "regression" and train.best_monitor == "val_accuracy":
        r.error("best_monitor", "A regression model reports no val accuracy: watch its val loss.")
    if text:
        field_name = "standard_networks" if method == "standard" else "custom_network"
        check_generic_network(text, framework, problem, dataset, r, field_name)
    if r.errors:
        return None, r.errors
    form = GenericModelForm(
        name, group, job.id, problem, method, network_name, text, train, options, gpu_count, gpu_ids
    )
    return form, {}
