"""The import worker: `python -m digits.engine.import_worker JOB_DIR --task train` for a model made from uploaded
weights (digits/model/pretrained.py). It reads the uploads in the job's upload/ folder, checks them against each
other, and writes what a trained model's folder holds (digits/folders/model.py):

    network.prototxt | network.py   the network (a Caffe deploy file as a DIGITS network; a TorchScript archive as a
                                    network.py that rebuilds it, weights zeroed)
    snapshot_epoch_0.pt             the weights as the inference code loads them (epoch 0: nothing was trained here)
    deploy_epoch_0.ts / .json       the deployable export a trained model gets (and .caffemodel for Caffe networks)
    dataset/                        labels.txt, image.json and, when given, mean.binaryproto and mean.png

Every problem fails the task with a message that starts with the form field it is about.
"""

from __future__ import annotations

import base64
import io
import lzma
import os
import pickle
import shutil
import textwrap
import warnings
import zipfile

import numpy as np
import torch
from PIL import Image

from digits.engine.caffe.caffemodel import CaffemodelMismatch, load_caffemodel, reverse_image_channels
from digits.engine.export import ExportError, deploy_path_for, export_deployable
from digits.engine.networks import BuiltNetwork, build_network
from digits.folders.dataset import MEAN, MEAN_PNG, DatasetFolder
from digits.folders.model import copy_dataset_essentials, snapshot_name
from digits.formats.caffe_pb import read_mean, write_mean
from digits.formats.caffemodel import CaffemodelError
from digits.formats.images import convert_image, open_image
from digits.model.caffe import CaffeError
from digits.model.pretrained import FIELD_LABELS
from digits.model.pretrained_caffe import digits_network, output_count
from digits.model.torch_networks import NetworkSourceError
from digits.worker_runtime import TaskFailed, WorkerContext, run_worker

EPOCH = 0
# Layers that treat every channel alike: the image's channel order reaches the first learned layer through them.
MAX_NAMED = 10


def fail(field: str, message: str) -> TaskFailed:
    return TaskFailed(f"{FIELD_LABELS[field]}: {message}")


def _names(keys) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - MAX_NAMED} more" if len(keys) > MAX_NAMED else ""
    return ", ".join(keys[:MAX_NAMED]) + more


# ---- labels and mean ------------------------------------------------------------------------------------------
def read_upload_labels(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            labels = [line.strip() for line in fh if line.strip()]
    except UnicodeDecodeError:
        raise fail("labels_file", "not UTF-8 text (one label per line)") from None
    if not labels:
        raise fail("labels_file", "holds no labels (one label per line)")
    return labels


def read_upload_mean(path: str, image: dict, log) -> np.ndarray:
    """The mean as H x W x C float RGB at the model's image size: a .binaryproto of another size becomes its
    per-channel mean over that size; an image is converted and resized."""
    channels, height, width = int(image["channels"]), int(image["height"]), int(image["width"])
    if path.endswith(".binaryproto"):
        try:
            mean = read_mean(path)
        except Exception as e:  # noqa: BLE001 - a damaged protobuf raises many kinds
            raise fail("mean_file", f"not a Caffe mean.binaryproto ({type(e).__name__}: {e})") from None
        if mean.shape[2] != channels:
            raise fail("mean_file", f"has {mean.shape[2]} channel(s); the images have {channels}")
        if mean.shape[:2] != (height, width):
            log(f"the mean is {mean.shape[1]}x{mean.shape[0]}, the images {width}x{height}: its pixel mean is used")
            mean = np.broadcast_to(mean.mean(axis=(0, 1)), (height, width, channels)).copy()
        return mean.astype(np.float32)
    try:
        img = convert_image(open_image(path), channels).resize((width, height), Image.BILINEAR)
    except Exception as e:  # noqa: BLE001 - Pillow's errors for a bad image vary
        raise fail("mean_file", f"not a readable image ({e})") from None
    arr = np.asarray(img, dtype=np.float32)
    return arr[:, :, None] if arr.ndim == 2 else arr


def write_dataset_copy(ctx: WorkerContext, labels: list[str], image: dict, mean: np.ndarray | None) -> None:
    staging = ctx.path(".import-dataset")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    if mean is not None:
        write_mean(os.path.join(staging, MEAN), mean)
        pixels = np.clip(np.round(mean), 0, 255).astype(np.uint8)
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(os.path.join(staging, MEAN_PNG))
    copy_dataset_essentials(DatasetFolder(staging, labels, dict(image)), ctx.job_dir)
    shutil.rmtree(staging, ignore_errors=True)


# ---- the three formats ----------------------------------------------------------------------------------------
def check_outputs(count: int, labels: list[str], log) -> None:
    if count < len(labels):
        raise fail("labels_file", f"{len(labels)} labels, but the network has only {count} outputs")
    if count > len(labels):
        log(f"the network has {count} outputs and {len(labels)} labels: outputs without a label are not shown")


def import_caffe(ctx: WorkerContext, files: dict, shape: tuple[int, int, int], labels: list[str]) -> BuiltNetwork:
    with open(ctx.path(files["network"]), encoding="utf-8", errors="replace") as fh:
        deploy = fh.read()
    try:
        text = digits_network(deploy, os.path.basename(files["network"]))
        _, count = output_count(text, shape)
    except CaffeError as e:
        raise fail("model_def_file", str(e)) from None
    check_outputs(count, labels, ctx.reporter.log)
    try:
        built = build_network(text, "caffe", input_shape=shape, num_classes=len(labels))
    except CaffeError as e:
        raise fail("model_def_file", str(e)) from None
    try:
        report = load_caffemodel(built.module, ctx.path(files["weights"]))
    except CaffemodelMismatch as e:
        raise fail("weights_file", f"does not fit the network: {e}") from None
    except CaffemodelError as e:
        raise fail("weights_file", f"not a .caffemodel this server can read: {e}") from None
    if not report.loaded:
        names = _names(report.unmatched)
        raise fail("weights_file", f"none of its layers is named as a layer of the network ({names})")
    if report.no_weights:
        ctx.reporter.log(f"no weights in the file for layer(s) {_names(report.no_weights)}: left as filled", "warning")
    if shape[0] == 3:
        swap_first_layer_channels(built, ctx.reporter.log)
    with open(ctx.path("network.prototxt"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return built


def swap_first_layer_channels(built: BuiltNetwork, log) -> None:
    """Caffe feeds color images as BGR, this server as RGB: reverse the input channels of the learned layers that
    read the image (through channel-blind layers only), so the network computes what it computed in Caffe."""
    swapped = reverse_image_channels(built.module)
    if swapped:
        log(f"BGR (Caffe) to RGB: input channels of {', '.join(swapped)} reversed")
    else:
        log("no convolution reads the image directly: its channels are given as RGB", "warning")


def load_state_file(path: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise fail(
            "weights_file",
            "holds more than plain tensors; only a state dict of tensors is accepted (saved with "
            f"torch.save(model.state_dict(), path)). torch.load(weights_only=True) refused it: {first}",
        ) from None
    except Exception as e:  # noqa: BLE001 - torch reports a damaged file in many ways
        raise fail("weights_file", f"not a file saved with torch.save ({type(e).__name__}: {e})") from None
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise fail("weights_file", "not a state dict (a dict of parameter names to tensors)")
    return state


def load_state_into(module: torch.nn.Module, state: dict) -> None:
    own = module.state_dict()
    missing, unexpected = set(own) - set(state), set(state) - set(own)
    wrong = [
        f"{k} ({_shape(state[k])} in the file, {_shape(own[k])} in the network)"
        for k in own
        if k in state and own[k].shape != state[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"the network's {_names(missing)} are not in the file")
    if unexpected:
        problems.append(f"the file's {_names(unexpected)} are not in the network")
    if wrong:
        problems.append(f"shapes differ for {'; '.join(wrong[:MAX_NAMED])}")
    if problems:
        raise fail("weights_file", "does not fit the network: " + "; ".join(problems))
    module.load_state_dict(state)


def _shape(t: torch.Tensor) -> str:
    return " x ".join(str(d) for d in t.shape) or "scalar"


def import_state_dict(ctx: WorkerContext, files: dict, shape: tuple[int, int, int], labels: list[str]) -> BuiltNetwork:
    with open(ctx.path(files["network"]), encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    try:
        built = build_network(text, "torch", input_shape=shape, num_classes=len(labels))
    except NetworkSourceError as e:
        where = f" (line {e.line})" if e.line else ""
        raise fail("model_def_file", f"{e.message}{where}") from None
    load_state_into(built.module, load_state_file(ctx.path(files["weights"])))
    check_outputs(logit_count(built, shape), labels, ctx.reporter.log)
    with open(ctx.path("network.py"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return built


TORCHSCRIPT_NETWORK = r'''"""{name}: a TorchScript archive imported by DIGITS.

This is its code with every weight set to zero (xz, base64); the weights are the model's snapshot."""

import base64
import io
import lzma
import warnings

import torch

ARCHIVE = (
{archive}
)


def build_model(*, num_classes, channels, height, width):
    archive = io.BytesIO(lzma.decompress(base64.b64decode("".join(ARCHIVE))))
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export; it still loads
        warnings.filterwarnings("ignore", r".*torch\.jit", DeprecationWarning)
        return torch.jit.load(archive, map_location="cpu")
'''


def torchscript_network(scripted: torch.jit.ScriptModule, name: str) -> str:
    """A network.py that rebuilds `scripted` (its weights zeroed: the snapshot holds them)."""
    with torch.no_grad():
        for tensor in scripted.state_dict().values():
            tensor.zero_()
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    packed = base64.b64encode(lzma.compress(buf.getvalue())).decode("ascii")
    lines = "\n".join(f'    "{chunk}",' for chunk in textwrap.wrap(packed, 100))
    safe = name.replace('"', "'").replace("\\", "/").replace("\n", " ")
    return TORCHSCRIPT_NETWORK.format(name=safe, archive=lines)


def import_torchscript(ctx: WorkerContext, files: dict, shape: tuple[int, int, int], labels: list[str]) -> BuiltNetwork:
    path = ctx.path(files["weights"])
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r".*torch\.jit", DeprecationWarning)
            scripted = torch.jit.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - torch.jit.load reports a wrong file in many ways
        hint = ""
        if zipfile.is_zipfile(path):
            hint = " (a file saved with torch.save needs its network definition, a network.py, beside it)"
        raise fail("weights_file", f"not a TorchScript archive{hint}: {str(e).strip().splitlines()[0]}") from None
    state = {k: v.clone() for k, v in scripted.state_dict().items()}
    text = torchscript_network(scripted, os.path.basename(files["weights"]))
    built = build_network(text, "torch", input_shape=shape, num_classes=len(labels))
    built.module.load_state_dict(state)
    check_outputs(logit_count(built, shape), labels, ctx.reporter.log)
    with open(ctx.path("network.py"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return built


def logit_count(built: BuiltNetwork, shape: tuple[int, int, int]) -> int:
    """The outputs a network gives one image of `shape` (in eval mode, as it classifies)."""
    built.module.eval()
    try:
        with torch.no_grad():
            out = built.logits(torch.zeros((1, *shape)))
    except Exception as e:  # noqa: BLE001 - the network's own code fails in its own ways
        c, h, w = shape
        raise fail("model_def_file", f"fails on a {c}x{h}x{w} image ({type(e).__name__}: {e})") from None
    return int(out[0].numel())


IMPORTERS = {"caffemodel": import_caffe, "state_dict": import_state_dict, "torchscript": import_torchscript}


def run_import(ctx: WorkerContext) -> None:
    args = ctx.args["import"]
    image = args["image"]
    shape = (int(image["channels"]), int(image["height"]), int(image["width"]))
    framework = ctx.args["framework"]
    labels = read_upload_labels(ctx.path(args["labels"]))
    mean = read_upload_mean(ctx.path(args["mean"]), image, ctx.reporter.log) if args.get("mean") else None
    ctx.reporter.progress(0.1, EPOCH)
    built = IMPORTERS[args["format"]](ctx, args, shape, labels)
    ctx.reporter.progress(0.6, EPOCH)
    write_dataset_copy(ctx, labels, image, mean)
    name = snapshot_name(EPOCH)
    state = {
        "format": 1,
        "iteration": 0,
        "epoch": EPOCH,
        "model": built.module.state_dict(),
        "framework": framework,
        "input_shape": list(shape),
        "labels": labels,
        "imported": args["format"],
    }
    torch.save(state, ctx.path(name + ".tmp"))
    os.replace(ctx.path(name + ".tmp"), ctx.path(name))
    use_mean = ctx.args.get("use_mean") or "none"
    try:
        export_deployable(built, shape, deploy_path_for(ctx.path(name)), image_shape=shape, use_mean=use_mean)
    except ExportError as e:
        ctx.reporter.log(f"no deployable model for download: {e}", "warning")
    ctx.reporter.log(
        f"imported {len(labels)} labels, input {shape[0]}x{shape[1]}x{shape[2]}, "
        f"{sum(p.numel() for p in built.module.parameters()):,} parameters"
    )
    ctx.reporter.snapshot(EPOCH, name)
    ctx.reporter.progress(1.0, EPOCH)


if __name__ == "__main__":
    run_worker(run_import)
