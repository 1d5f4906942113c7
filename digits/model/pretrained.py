"""Upload a pretrained model (DIGITS 6's /pretrained_models/new): the form's fields, checked, and the import job.

The web process only checks what is cheap (the fields, the files' names and sizes) and streams the files into the
new job's upload/ folder; the import task's worker (digits/engine/import_worker.py) parses and loads the weights,
checks them against the network and the labels, and writes the folder a trained model has (torch-free here).

    upload/weights.<ext>       the weights as uploaded (.caffemodel, a state dict .pt/.pth, or a TorchScript archive)
    upload/network.<ext>       the network as uploaded (a deploy .prototxt, or a network.py), when there is one
    upload/labels.txt          the labels file as uploaded
    upload/mean.<ext>          the mean as uploaded (.binaryproto or an image), when there is one
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from digits.folders.model import NETWORK_FILES
from digits.formats.images import RESIZE_MODES
from digits.forms import FormReader
from digits.job import Job, Task
from digits.model import IMPORT_KIND, MODEL_TYPE
from digits.model.settings import TRAIN_TASK

UPLOAD_DIR = "upload"
FIELD_LABELS = {
    "job_name": "Model name",
    "group_name": "Group name",
    "framework": "Framework",
    "model_def_file": "Network definition",
    "weights_file": "Weights file",
    "labels_file": "Labels file",
    "mean_file": "Mean file",
    "image_type": "Image type",
    "width": "Width",
    "height": "Height",
    "resize_mode": "Resize mode",
}
FRAMEWORK_TITLES = {
    "caffe": "Caffe: a deploy .prototxt and its .caffemodel",
    "torch": "PyTorch: a network.py and its state dict (.pt/.pth), or a TorchScript archive alone",
}
IMAGE_TYPES = {"3": "Color (3 channels)", "1": "Grayscale (1 channel)"}
# DIGITS' spellings of the image type, besides the channel count.
IMAGE_TYPE_WORDS = {"color": "3", "rgb": "3", "grayscale": "1", "gray": "1"}
WEIGHTS_EXTENSIONS = {"caffe": (".caffemodel",), "torch": (".pt", ".pth", ".ts")}
MODEL_DEF_EXTENSIONS = {"caffe": (".prototxt",), "torch": (".py",)}
MEAN_EXTENSIONS = (".binaryproto", ".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
# What each format is called where people read it (the model page, the JSON twin).
FORMAT_TITLES = {
    "caffemodel": "Caffe .caffemodel",
    "state_dict": "PyTorch state dict",
    "torchscript": "TorchScript archive",
}


@dataclass
class Upload:
    """One uploaded file: its form field, the name it was sent with, and where it goes in the job folder."""

    field: str
    filename: str
    target: str  # relative to the job folder


@dataclass
class PretrainedForm:
    name: str
    group: str
    framework: str
    format: str  # caffemodel | state_dict | torchscript
    image: dict[str, Any]
    uploads: dict[str, Upload] = field(default_factory=dict)  # by role: weights, network, labels, mean

    @property
    def network_file(self) -> str:
        return NETWORK_FILES[self.framework]

    def import_args(self) -> dict[str, Any]:
        """The import task's arguments: the settings a model's task carries (framework, network file, mean; read
        by inference, downloads and fine-tuning as a trained model's) and what to import."""
        return {
            "framework": self.framework,
            "network_file": self.network_file,
            "use_mean": "image" if "mean" in self.uploads else "none",
            "import": {
                "format": self.format,
                "image": self.image,
                **{role: upload.target for role, upload in self.uploads.items()},
            },
        }


def _extension(filename: str) -> str:
    return os.path.splitext(filename)[1].lower()


def _file(r: FormReader, files, name: str, extensions: tuple[str, ...], required: bool) -> str | None:
    """The name of the file sent in field `name`, checked against `extensions`; None when none was sent."""
    storage = files.get(name)
    filename = (storage.filename or "").strip() if storage is not None else ""
    if not filename:
        if required:
            r.error(name, "Choose a file.")
        return None
    if _extension(filename) not in extensions:
        r.error(name, f"{filename}: expected a {' or '.join(extensions)} file.")
        return None
    return filename


def read_pretrained_form(values, files) -> tuple[PretrainedForm | None, dict[str, list[str]]]:
    """Check the upload form (fields and file names; the files' content is the worker's to judge)."""
    r = FormReader(values, FIELD_LABELS)
    name = r.text("job_name", required=True, max_length=200)
    group = r.text("group_name", max_length=200)
    framework = r.choice("framework", tuple(FRAMEWORK_TITLES), "caffe")
    raw_type = (r.raw("image_type") or "3").lower()
    image_type = IMAGE_TYPE_WORDS.get(raw_type, raw_type)
    if image_type not in IMAGE_TYPES:
        r.error("image_type", f"Choose 3 (color) or 1 (grayscale) (got {raw_type!r}).")
        image_type = "3"
    width = r.integer("width", None, minimum=1, maximum=4096, required=True)
    height = r.integer("height", None, minimum=1, maximum=4096, required=True)
    resize_mode = r.choice("resize_mode", tuple(RESIZE_MODES), "squash")

    weights = _file(r, files, "weights_file", WEIGHTS_EXTENSIONS[framework], required=True)
    model_def = _file(r, files, "model_def_file", MODEL_DEF_EXTENSIONS[framework], required=framework == "caffe")
    labels = _file(r, files, "labels_file", (".txt", ".labels", ""), required=True)
    mean = _file(r, files, "mean_file", MEAN_EXTENSIONS, required=False)
    if framework == "caffe":
        fmt = "caffemodel"
    elif model_def:
        fmt = "state_dict"
        if weights and _extension(weights) == ".ts":
            r.error("weights_file", f"{weights}: a TorchScript archive is uploaded without a network definition.")
    else:
        fmt = "torchscript"
    if mean and framework != "caffe":
        r.error("mean_file", "A mean is subtracted for Caffe models only; a PyTorch model normalizes in its network.")
    if r.errors:
        return None, r.errors
    form = PretrainedForm(
        name=name,
        group=group,
        framework=framework,
        format=fmt,
        image={
            "channels": int(image_type),
            "width": width,
            "height": height,
            "resize_mode": resize_mode,
        },
    )
    chosen = {"weights": ("weights_file", weights), "network": ("model_def_file", model_def)}
    chosen.update(labels=("labels_file", labels), mean=("mean_file", mean))
    for role, (field_name, filename) in chosen.items():
        if filename:
            target = f"{UPLOAD_DIR}/{role}{_extension(filename) or '.txt'}"
            form.uploads[role] = Upload(field_name, filename, target)
    return form, {}


def build_import_job(form: PretrainedForm, owner: str, values: dict, job_id: str) -> Job:
    """A model job made by importing weights: one task (named as a trained model's, so that everything reading a
    model's settings reads these) run by the import worker."""
    task = Task(TRAIN_TASK, IMPORT_KIND, form.import_args(), {"cpu": 1})
    return Job(
        id=job_id,
        type=MODEL_TYPE,
        category="model",
        name=form.name,
        owner=owner,
        group=form.group,
        form=values,
        tasks=[task],
        extra={
            "network_name": f"pretrained ({FORMAT_TITLES[form.format]})",
            "dataset_id": "",
            "image": form.image,
            "imported": {
                "format": form.format,
                "format_title": FORMAT_TITLES[form.format],
                "files": {role: upload.filename for role, upload in form.uploads.items()},
            },
        },
    )


def imported(job: Job) -> dict[str, Any] | None:
    """What an imported model was made from (format, the files' names as uploaded), or None for a trained one."""
    info = job.extra.get("imported")
    return info if isinstance(info, dict) else None
