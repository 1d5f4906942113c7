"""Download a trained model as an archive that runs without DIGITS, and its metrics as CSV (torch-free).

    GET /models/<id>/download[.tar.gz|.zip][?epoch=N]   network, weights, TorchScript, ONNX, labels, mean,
                          predict.py (a Caffe-framework model also deploy.prototxt and snapshot.caffemodel)
                          (also .tgz, .tar.bz2, .tar)
    GET /models/<id>/download.onnx[?epoch=N]            the snapshot's network as ONNX, alone
    GET /models/<id>/metrics.csv                        every metric point reported during training
    GET /models/<id>/tensorboard[.tar.gz|.zip]          the metrics as TensorBoard event files (model/tensorboard.py)

Anyone who can see a model may download it, as in DIGITS. Only files of the model's folder and of its
dataset's folder go into an archive, by their fixed names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re

from flask import Blueprint, Response, request

from digits import __version__
from digits.errors import ApiError, Conflict, NotFound
from digits.folders import file_in
from digits.folders.dataset import LABELS, MEAN, MEAN_PNG, read_image_settings, read_labels
from digits.folders.generic import GENERIC_MODEL_TYPE
from digits.folders.model import (
    NETWORK_FILES,
    deploy_names,
    epochs_text,
    metric_lines,
    model_dataset_dir,
    pick_snapshot,
    read_metrics,
    snapshot_name,
    snapshots,
)
from digits.job import Job
from digits.model.caffe import CaffeError, deploy_prototxt
from digits.model.download_archive import (
    Member,
    close_members,
    stream_tar,
    stream_tar_bz2,
    stream_tar_gz,
    stream_zip,
)
from digits.model.predict_template import build_predict_script
from digits.model.settings import model_settings
from digits.model.tensorboard import tensorboard_members
from digits.offload import off_loop
from digits.views.common import job_or_404, workspace

bp = Blueprint("model_download", __name__)

FORMATS = {
    "tar.gz": ("application/gzip", stream_tar_gz),
    "tgz": ("application/gzip", stream_tar_gz),  # DIGITS' other name for it
    "tar.bz2": ("application/x-bzip2", stream_tar_bz2),
    "tar": ("application/x-tar", stream_tar),
    "zip": ("application/zip", stream_zip),
}
METRICS_COLUMNS = ("phase", "name", "epoch", "iteration", "value", "time")


def safe_name(name: str, fallback: str = "model") -> str:
    """A name fit for a file: letters, digits, '.', '_' and '-' only, no leading dot, at most 80 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:80].rstrip("._-")
    return cleaned or fallback


def _pick_snapshot(job: Job, job_dir: str, wanted: str | None) -> tuple[str, str, float]:
    """(path, epoch label, epoch) of the asked-for snapshot, the latest by default."""
    snaps = snapshots(job, job_dir)
    if not snaps:
        raise Conflict(f"model {job.id} has no snapshot yet; one is written at the end of each epoch")
    if wanted is not None:
        try:
            float(wanted)
        except ValueError:
            raise ApiError(f"epoch must be a number, not {wanted!r}") from None
    snap = pick_snapshot(snaps, wanted)
    if snap is None:
        raise NotFound(f"model {job.id} has no snapshot at epoch {wanted} (its snapshots: epochs {epochs_text(snaps)})")
    return os.path.join(job_dir, snap.name), snap.label, snap.epoch


def _deploy_info(job: Job, job_dir: str, label: str) -> tuple[str, dict]:
    if job.type == GENERIC_MODEL_TYPE:
        raise Conflict(
            f"model {job.id} is a generic model: its snapshots are not exported for download (no archive, no "
            "ONNX); its metrics are (metrics.csv, TensorBoard)"
        )
    ts_name, meta_name = deploy_names(label)
    ts, meta = file_in(job_dir, ts_name), file_in(job_dir, meta_name)
    if not ts or not meta:
        raise Conflict(
            f"model {job.id} has no deployable model for epoch {label} ({ts_name}), which the "
            "archive needs. Models trained from now on write one with each snapshot; resuming or retraining this "
            f"model creates it, and so does `python -m digits.engine.export <jobs dir>/{job.id}` on the server."
        )
    with open(meta) as fh:
        return ts, json.load(fh)


def _deploy_onnx(job: Job, job_dir: str, ts: str, deploy: dict, label: str) -> str:
    """The snapshot's ONNX export beside its deploy_epoch_<E>.ts; Conflict saying why when there is none."""
    name = os.path.splitext(os.path.basename(ts))[0] + ".onnx"
    described = deploy.get("onnx") if isinstance(deploy.get("onnx"), dict) else {}
    if described.get("error"):
        raise Conflict(f"model {job.id} has no ONNX export for epoch {label}: {described['error']}")
    path = file_in(job_dir, name)
    if not path or "file" not in described:
        raise Conflict(
            f"model {job.id} has no ONNX export for epoch {label} ({name}). Models trained from now on write one "
            f"with each snapshot, and `python -m digits.engine.export <jobs dir>/{job.id}` on the server writes it "
            "for this one."
        )
    return path


def _deploy_caffemodel(job: Job, job_dir: str, ts: str) -> str:
    """A Caffe-framework model's weights for Caffe, exported beside its deploy_epoch_<E>.ts."""
    name = os.path.splitext(os.path.basename(ts))[0] + ".caffemodel"
    path = file_in(job_dir, name)
    if not path:
        raise Conflict(
            f"model {job.id} has no Caffe weights ({name}), which the archive needs. Models trained from now on "
            f"write them with each snapshot, and `python -m digits.engine.export <jobs dir>/{job.id}` on the "
            "server writes them for this one."
        )
    return path


def _dataset_folder(job: Job, job_dir: str) -> tuple[Job | None, str]:
    """The model's dataset job (None once deleted) and where its labels and mean are read: the model's own copy,
    else the dataset's folder (models trained before the copy existed)."""
    dataset_id = job.extra.get("dataset_id", "")
    dataset = workspace().store.get(dataset_id)
    folder = model_dataset_dir(job_dir, dataset_id)
    if folder is None or not os.path.isdir(folder):
        raise Conflict(
            f"the dataset of model {job.id} ({dataset_id}) was deleted; the archive needs its {LABELS} and "
            "mean image, so this model can no longer be downloaded"
        )
    return dataset, folder


def _metrics_until(job_dir: str, epoch: float) -> dict[str, dict[str, float]]:
    """The last value of each metric series reported up to `epoch`."""
    out: dict[str, dict[str, float]] = {}
    for phase, names in read_metrics(job_dir).items():
        for name, series in names.items():
            upto = [value for e, value in series if e is None or e <= epoch + 1e-6]
            if upto:
                out.setdefault(phase, {})[name] = upto[-1]
    return out


def model_info(
    job: Job,
    job_dir: str,
    dataset: Job | None,
    labels: list[str],
    deploy: dict,
    label: str,
    epoch: float,
    dataset_dir: str | None = None,
):
    """info.json: what predict.py (or a person) needs to feed the network, and what it was trained on. The image
    settings come from the model, its own copy of the dataset's, or the dataset job."""
    image = job.extra.get("image") or (read_image_settings(dataset_dir) if dataset_dir else None)
    image = image or (dataset.extra.get("image") if dataset else None) or {}
    settings = model_settings(job)
    shape = [int(d) for d in deploy["input_shape"]]
    image_shape = [int(image["channels"]), int(image["height"]), int(image["width"])]
    return {
        "format": 1,
        "digits_version": __version__,
        "job_id": job.id,
        "name": job.name,
        "framework": settings.framework,
        "network": job.extra.get("network_name"),
        "network_file": settings.network_file,
        "epoch": int(epoch) if float(epoch).is_integer() else epoch,
        "snapshot": snapshot_name(float(label)),
        "image": {
            "width": image_shape[2],
            "height": image_shape[1],
            "channels": image_shape[0],
            "resize_mode": image.get("resize_mode", "squash"),
        },
        "use_mean": settings.use_mean,
        "input_scale": float(deploy.get("input_scale", 1.0)),
        "whitening": bool(settings.augmentation.get("whitening")),
        # The worker crops (at the center, outside training) exactly when the network's input is smaller.
        "crop_size": shape[1] if shape != image_shape else None,
        "input_shape": shape,
        "labels": labels,
        "metrics": _metrics_until(job_dir, epoch),
        "dataset": {"id": job.extra.get("dataset_id", ""), "name": dataset.name if dataset else None},
    }


README = """\
{name}: epoch {epoch}, trained with DIGITS {version} ({framework}, {network})

Classify images (needs Python 3.10+, torch, numpy and Pillow; not DIGITS):

    python predict.py IMAGE [IMAGE ...]          top 5 labels of each image, with their probability
    python predict.py --json IMAGE [IMAGE ...]   the same as JSON; --help for more

or from Python, in this folder: `import predict; predict.predict(["a.jpg"])` gives, for each image,
[(label, probability), ...] with the most probable first.

predict.py reads each image exactly as DIGITS did (orientation, {channels} channel(s), {width}x{height} by resize
mode "{resize_mode}", mean "{use_mean}", crop {crop}, input scale {input_scale}); it carries DIGITS' own code
for it.

Files
  predict.py            the classifier above
  model.ts              the network as TorchScript: torch.jit.load("model.ts") maps a preprocessed
                        N x {shape} float batch to N x {classes} logits{onnx}
  info.json             image size, resize mode, mean, crop, input scale, labels, final metrics
  {network_file:<21} the network as it was written{deploy}
  {snapshot:<21} the training snapshot: torch.load(path, weights_only=True)["model"] is the
                        state_dict of the network (it also holds the optimizer state)
  labels.txt            the labels, in the order of the network's outputs
  mean.binaryproto      the dataset's mean image (Caffe BlobProto); mean.png shows it
"""


ONNX_README = """
  model.onnx            the same network as ONNX (opset {opset}): input "data" takes that preprocessed batch,
                        output "logits" gives the logits and "prob" their softmax; for onnxruntime and others"""


def _readme(info: dict, caffe: bool) -> str:
    onnx = info.get("onnx") or {}
    onnx_text = ONNX_README.format(opset=onnx["opset"]) if "file" in onnx else ""
    if onnx.get("error"):
        onnx_text = f"\n  (no model.onnx: {onnx['error']})"
    deploy = (
        "\n  deploy.prototxt       the deploy network, for Caffe"
        "\n  snapshot.caffemodel   its weights: caffe.Net('deploy.prototxt', 'snapshot.caffemodel', caffe.TEST)"
        if caffe
        else ""
    )
    return README.format(
        name=info["name"],
        epoch=info["epoch"],
        version=__version__,
        framework=info["framework"],
        network=info["network"] or "custom network",
        channels=info["image"]["channels"],
        width=info["image"]["width"],
        height=info["image"]["height"],
        resize_mode=info["image"]["resize_mode"],
        use_mean=info["use_mean"],
        crop=info["crop_size"] or "none",
        input_scale=info["input_scale"],
        shape=" x ".join(map(str, info["input_shape"])),
        classes=len(info["labels"]),
        network_file=info["network_file"],
        deploy=deploy,
        snapshot=info["snapshot"],
        onnx=onnx_text,
    )


def archive_members(job: Job, epoch_arg: str | None) -> tuple[str, list[Member]]:
    """The archive's folder name and files; raises NotFound/Conflict before anything is sent."""
    job_dir = workspace().store.job_dir(job.id)
    snapshot, label, epoch = _pick_snapshot(job, job_dir, epoch_arg)
    ts, deploy = _deploy_info(job, job_dir, label)
    dataset, dataset_dir = _dataset_folder(job, job_dir)
    labels_path = file_in(dataset_dir, LABELS)
    settings = model_settings(job)
    network_name = settings.network_file
    network = file_in(job_dir, network_name) if network_name in NETWORK_FILES.values() else None
    if not labels_path or not network:
        missing = f"{LABELS} of its dataset" if not labels_path else "network file"
        raise Conflict(f"model {job.id} cannot be downloaded: its {missing} is missing")
    labels = read_labels(dataset_dir)
    info = model_info(job, job_dir, dataset, labels, deploy, label, epoch, dataset_dir)
    try:
        onnx_path = _deploy_onnx(job, job_dir, ts, deploy, label)
        info["onnx"] = {**{k: deploy["onnx"].get(k) for k in ("opset", "input", "outputs")}, "file": "model.onnx"}
    except Conflict as e:  # the rest of the archive is worth having without it: info.json and README say why
        onnx_path = None
        info["onnx"] = {"error": e.message}
    mean, mean_png = file_in(dataset_dir, MEAN), file_in(dataset_dir, MEAN_PNG)
    if info["use_mean"] != "none" and not mean:
        raise Conflict(f"model {job.id} subtracts the {info['use_mean']} mean, but its dataset has no mean file")
    with open(network, encoding="utf-8") as fh:
        network_text = fh.read()
    generated = []
    caffemodel = None
    if settings.framework == "caffe":
        caffemodel = _deploy_caffemodel(job, job_dir, ts)
        try:
            text = deploy_prototxt(network_text, input_shape=tuple(info["input_shape"]), num_classes=len(labels))
        except CaffeError as e:
            raise Conflict(f"the deploy network of model {job.id} cannot be made: {e}") from None
        generated.append(Member.from_bytes("deploy.prototxt", text.encode()))
    generated += [
        Member.from_bytes("info.json", (json.dumps(info, indent=1) + "\n").encode()),
        Member.from_bytes("predict.py", build_predict_script().encode(), mode=0o755),
        Member.from_bytes("README.txt", _readme(info, bool(generated)).encode()),
    ]
    files = [(network_name, network), (os.path.basename(snapshot), snapshot), ("model.ts", ts)]
    files += [("model.onnx", onnx_path)]
    files += [("snapshot.caffemodel", caffemodel)]
    files += [(LABELS, labels_path), (MEAN, mean), (MEAN_PNG, mean_png)]
    members: list[Member] = []
    try:
        members += [Member.from_path(name, path) for name, path in files if path]
    except OSError as e:
        close_members(members)
        raise Conflict(f"model {job.id} cannot be downloaded: {e.strerror}: {os.path.basename(e.filename)}") from None
    return f"{safe_name(job.name)}-epoch{label}", generated + members


@bp.route("/models/<job_id>/download")
def download(job_id: str):
    """The archive as tar.gz (an endpoint of its own: with `defaults`, Werkzeug would redirect one URL)."""
    return download_as(job_id, "tar.gz")


@bp.route("/models/<job_id>/download.<any('tar.gz', 'tgz', 'tar.bz2', 'tar', 'zip'):fmt>")
def download_as(job_id: str, fmt: str):
    job = job_or_404(job_id, "model")
    folder, members = archive_members(job, request.args.get("epoch"))
    mimetype, stream = FORMATS[fmt]
    response = Response(stream(folder, members), mimetype=mimetype, direct_passthrough=True)
    response.headers["Content-Disposition"] = f'attachment; filename="{folder}.{fmt}"'
    response.call_on_close(lambda: close_members(members))  # when the client leaves before the first chunk
    return response


@bp.route("/models/<job_id>/metrics.csv")
def metrics_csv(job_id: str):
    job = job_or_404(job_id, "model")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for point in metric_lines(workspace().store.job_dir(job.id)):
        writer.writerow([point.get(column) for column in METRICS_COLUMNS])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_name(job.name)}-metrics.csv"'
    return response


@bp.route("/models/<job_id>/download.onnx")
def download_onnx(job_id: str):
    """The snapshot's network as ONNX alone (the same preprocessing contract as model.ts, kept in its metadata)."""
    job = job_or_404(job_id, "model")
    job_dir = workspace().store.job_dir(job.id)
    _, label, _ = _pick_snapshot(job, job_dir, request.args.get("epoch"))
    ts, deploy = _deploy_info(job, job_dir, label)
    member = Member.from_path("model.onnx", _deploy_onnx(job, job_dir, ts, deploy, label))

    def chunks():
        try:
            yield from member.chunks()
        finally:
            close_members([member])

    response = Response(chunks(), mimetype="application/octet-stream", direct_passthrough=True)
    response.content_length = member.size
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_name(job.name)}-epoch{label}.onnx"'
    response.call_on_close(lambda: close_members([member]))
    return response


@bp.route("/models/<job_id>/tensorboard")
def tensorboard(job_id: str):
    """The metrics as TensorBoard event files, as tar.gz (an endpoint of its own, as for download)."""
    return tensorboard_as(job_id, "tar.gz")


@bp.route("/models/<job_id>/tensorboard.<any('tar.gz', 'zip'):fmt>")
def tensorboard_as(job_id: str, fmt: str):
    job = job_or_404(job_id, "model")
    members = off_loop(tensorboard_members, workspace().store.job_dir(job.id))
    if not members:
        raise Conflict(f"model {job.id} has reported no metric yet; its TensorBoard files would be empty")
    folder = f"{safe_name(job.name)}-tensorboard"
    mimetype, stream = FORMATS[fmt]
    response = Response(stream(folder, members), mimetype=mimetype, direct_passthrough=True)
    response.headers["Content-Disposition"] = f'attachment; filename="{folder}.{fmt}"'
    return response
