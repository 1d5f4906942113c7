"""The dataset routes DIGITS 6 clients call, in DIGITS' spelling, over the dataset page and explorer we have.

GET  /datasets/summary?job_id=ID                   a short HTML summary (New Model shows it)
GET  /datasets/images/classification/explore?job_id=ID&db=train   our explorer, by redirect
GET  /files/<id>/mean.jpg                          the dataset's mean image as JPEG
POST /datasets/images/resize-example               an example picture resized by the form's settings
"""

from __future__ import annotations

import base64
import io

import numpy as np
from flask import Blueprint, jsonify, redirect, render_template, request, send_file, url_for
from PIL import Image

from digits.dataset.info import dataset_json
from digits.errors import ApiError, FormErrors, NotFound
from digits.folders import file_in
from digits.folders.dataset import MEAN_PNG, SPLITS
from digits.formats.images import ENCODINGS, RESIZE_MODES, encode_image, resize_image
from digits.forms import FormReader
from digits.offload import off_loop
from digits.views.common import job_or_404, workspace
from digits.views.digits_compat import json_errors

bp = Blueprint("dataset_compat", __name__)
json_errors(bp)
# The example picture is at most this big on a side: it is for seeing what a resize mode does, not for work.
EXAMPLE_MAX_SIDE = 1024
EXAMPLE_SIZE = (320, 200)  # width, height: wider than tall, so crop, fill and half-crop differ visibly
EXAMPLE_LABELS = {
    "width": "Width",
    "height": "Height",
    "channels": "Image type",
    "resize_mode": "Resize transformation",
    "encoding": "Image encoding",
}


def _job_id_arg() -> str:
    job_id = request.values.get("job_id", "").strip()
    if not job_id:
        raise ApiError("give the dataset: ?job_id=ID")
    return job_id


@bp.route("/datasets/summary")
@bp.route("/datasets/images/classification/summary")
def summary():
    """A short HTML summary of a dataset, as DIGITS' New Model form shows next to the chosen dataset."""
    job = job_or_404(_job_id_arg(), "dataset")
    info = dataset_json(job, workspace().store.job_dir(job.id))
    return render_template("datasets/summary.html", job=job, info=info)


def split_of(db: str) -> str:
    """DIGITS names a database by anything containing its split's name ('train', 'val_db', 'Test')."""
    for split in SPLITS:
        if split in db.lower():
            return split
    raise NotFound(f"no database {db!r}; databases are {', '.join(SPLITS)}")


@bp.route("/datasets/images/classification/explore")
def explore():
    """DIGITS' explorer URL leads to ours: the same database, label and page."""
    job = job_or_404(_job_id_arg(), "dataset")
    args = {"split": split_of(request.args.get("db", "train"))}
    for name in ("label", "page"):
        if request.args.get(name, "") != "":
            args[name] = request.args[name]
    return redirect(url_for("dataset_explore.explore", job_id=job.id, **args))


def mean_as_jpeg(path: str) -> bytes:
    """The mean image (a PNG) as JPEG bytes (plain data in and out: it runs off the event loop)."""
    with Image.open(path) as img:
        out = io.BytesIO()
        img.convert("L" if img.mode in ("L", "I", "I;16") else "RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


@bp.route("/files/<job_id>/mean.jpg")
def mean_jpg(job_id: str):
    """A dataset's mean image as JPEG, where DIGITS kept one (its pages and clients load /files/<id>/mean.jpg)."""
    job = job_or_404(job_id, "dataset")
    path = file_in(workspace().store.job_dir(job.id), MEAN_PNG)
    if path is None:
        raise NotFound(f"dataset {job.id} has no mean image (yet)")
    return send_file(io.BytesIO(off_loop(mean_as_jpeg, path)), mimetype="image/jpeg", max_age=0)


def example_picture() -> np.ndarray:
    """A small colour picture made here (DIGITS showed a photo it shipped): a gradient sky, a sun and a
    checkered ground, so that each resize mode's stretching, cropping and filling can be seen."""
    width, height = EXAMPLE_SIZE
    y, x = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = 60 + 120 * y // height
    img[..., 1] = 120 + 100 * y // height
    img[..., 2] = 230
    sun = (x - width * 0.7) ** 2 + (y - height * 0.3) ** 2 < (height * 0.15) ** 2
    img[sun] = (250, 210, 40)
    ground = y > height * 0.65
    checks = ((x // 20 + y // 20) % 2).astype(bool)
    img[ground & checks] = (40, 140, 60)
    img[ground & ~checks] = (90, 190, 90)
    return img


def resized_example(width: int, height: int, channels: int, mode: str, encoding: str) -> tuple[bytes, str, int]:
    """(picture bytes, their type, the size one record takes) of the example picture as the settings make it."""
    arr = example_picture()
    if channels == 1:
        arr = np.asarray(Image.fromarray(arr).convert("L"))[:, :, None]
    out = resize_image(arr, height, width, mode)
    stored = encode_image(out, encoding)
    shown = stored if stored is not None else encode_image(out, "png")
    kind = "image/jpeg" if encoding == "jpg" else "image/png"
    return shown, kind, len(stored) if stored is not None else out.nbytes


def size_text(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@bp.route("/datasets/images/resize-example", methods=["GET", "POST"])
def resize_example():
    """The example picture resized by width, height, channels, resize_mode and encoding: DIGITS' HTML fragment
    (an <img> and the record's size), or JSON for a client that asks for it."""
    r = FormReader(request.values, EXAMPLE_LABELS)
    width = r.integer("width", 256, minimum=1, maximum=EXAMPLE_MAX_SIDE)
    height = r.integer("height", 256, minimum=1, maximum=EXAMPLE_MAX_SIDE)
    channels = int(r.choice("channels", ("1", "3"), "3"))
    mode = r.choice("resize_mode", tuple(RESIZE_MODES), "squash")
    encoding = r.choice("encoding", ENCODINGS, "png")
    if r.errors:
        raise FormErrors(r.errors)
    data, kind, size = off_loop(resized_example, width, height, channels, mode, encoding)
    src = f"data:{kind};base64,{base64.b64encode(data).decode()}"
    accept = request.accept_mimetypes
    if accept.quality("application/json") > accept.quality("text/html"):
        return jsonify({"image": src, "width": width, "height": height, "channels": channels, "size": size})
    return render_template(
        "datasets/resize_example.html", src=src, width=width, height=height, mode=mode, size=size_text(size)
    )
