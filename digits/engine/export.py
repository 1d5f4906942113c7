"""Deployable models: each snapshot's network as TorchScript, for the download archive (worker side: imports torch).

Next to `snapshot_epoch_<N>.pt` the training worker writes

    deploy_epoch_<N>.ts    the network in eval mode, traced: N x C x H x W preprocessed floats -> N x K logits
    deploy_epoch_<N>.json  {"input_shape", "input_scale", "crop_size", "mean", "image_shape"}: what the web
                           process (which never imports torch) needs to describe the model's input
    deploy_epoch_<N>.caffemodel  a Caffe-framework network's weights for Caffe (the archive's snapshot.caffemodel)
    deploy_epoch_<N>.onnx  the same network as ONNX (digits/engine/onnx_export.py), described under "onnx" in the
                           .json; a network that cannot be exported has {"onnx": {"error": why}} there instead

ONNX is written at snapshot time, beside the TorchScript, so that a download only streams files: the web process
never imports torch, and an export on demand would wait for a worker. It costs about what the TorchScript export
costs (bench/onnx_export.py prints both, per standard network).

For jobs trained before this existed, export them afterwards:

    python -m digits.engine.export JOBS_DIR/<model id> [--force]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import warnings
from collections.abc import Callable

import torch

from digits.engine.caffe.caffemodel import save_caffemodel
from digits.engine.networks import BuiltNetwork, build_network
from digits.engine.onnx_export import Logits, OnnxExportError, write_onnx
from digits.folders.dataset import open_dataset
from digits.folders.model import deploy_names, label_of, model_dataset_dir, snapshots_on_disk
from digits.job import Job
from digits.model.settings import model_settings
from digits.store import JOB_FILE
from digits.worker_runtime import TaskFailed

DEPLOY_FORMAT = 1


class ExportError(RuntimeError):
    """The network could not be exported as TorchScript; the message says why."""


def deploy_path_for(snapshot_path: str) -> str:
    """`.../snapshot_epoch_3.pt` -> `.../deploy_epoch_3.ts`."""
    folder, name = os.path.split(snapshot_path)
    label = label_of(name)
    if label is None:
        raise ValueError(f"not a snapshot file name: {name!r}")
    return os.path.join(folder, deploy_names(label)[0])


def deploy_info_path_for(deploy_path: str) -> str:
    """`deploy_epoch_3.ts` -> `deploy_epoch_3.json`."""
    return os.path.splitext(deploy_path)[0] + ".json"


def caffemodel_path_for(deploy_path: str) -> str:
    """`deploy_epoch_3.ts` -> `deploy_epoch_3.caffemodel` (written for Caffe-framework networks only)."""
    return os.path.splitext(deploy_path)[0] + ".caffemodel"


def onnx_path_for(deploy_path: str) -> str:
    """`deploy_epoch_3.ts` -> `deploy_epoch_3.onnx`."""
    return os.path.splitext(deploy_path)[0] + ".onnx"


def _probe(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    # A private generator: the global one belongs to training (a resumed run must draw what this one would).
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _write_atomic(path: str, write: Callable[[str], None]) -> None:
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def export_deployable(
    built: BuiltNetwork,
    input_shape: tuple[int, int, int],
    path: str,
    *,
    image_shape: tuple[int, int, int] | None = None,
    use_mean: str | None = None,
    onnx: bool | str = True,
) -> dict:
    """Write `built`'s network in eval mode as TorchScript at `path` and as ONNX beside it, and its input
    description next to them (and a Caffe-framework network's weights as a .caffemodel); returns that description.

    Training is left as it was: the trace runs on a CPU copy, without gradients, and torch's random state
    is restored afterwards. `image_shape` (the dataset's C, H, W) tells whether the input is a center crop.
    A network ONNX cannot express is no failure: the description says why under "onnx" (`onnx` given as a
    string is such a reason found before: the export is not tried again).
    """
    shape = [int(d) for d in input_shape]
    crop = None
    if image_shape is not None and tuple(shape) != tuple(int(d) for d in image_shape):
        crop = shape[1]
    info = {
        "format": DEPLOY_FORMAT,
        "input_shape": shape,
        "input_scale": float(built.input_scale),
        "crop_size": crop,
        "mean": use_mean,
        "image_shape": [int(d) for d in image_shape] if image_shape is not None else None,
    }
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing warns about shape-dependent Python branches (checked below) and that TorchScript is
            # deprecated in favour of torch.export; TorchScript is still what loads anywhere with torch alone.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", r".*torch\.jit", DeprecationWarning)
            net = copy.deepcopy(built.module).to("cpu", memory_format=torch.contiguous_format).float().eval()
            wrapper = Logits(net).eval()
            example = _probe((2, *input_shape), 0)
            try:
                traced = torch.jit.trace(wrapper, example, check_trace=False)
            except Exception as e:  # noqa: BLE001 - tracing fails in many ways; all mean "not exportable"
                raise ExportError(f"the network cannot be traced to TorchScript: {type(e).__name__}: {e}") from e
            other = _probe((3, *input_shape), 1)  # another batch size: the trace must not have fixed it
            for x in (example, other):
                eager, scripted = wrapper(x), traced(x)
                if eager.shape != scripted.shape or not torch.allclose(eager, scripted, rtol=1e-5, atol=1e-6):
                    raise ExportError(
                        "the traced network computes something else than the network (does its forward branch "
                        "on the data or on the batch size?)"
                    )
            _write_atomic(path, lambda tmp: torch.jit.save(traced, tmp))
            if built.framework == "caffe":
                _write_atomic(caffemodel_path_for(path), lambda tmp: save_caffemodel(net, tmp, bgr=True))
            if isinstance(onnx, str):
                info["onnx"] = {"error": onnx}
            elif onnx:
                metadata = {k: info[k] for k in ("input_shape", "input_scale", "crop_size", "mean", "image_shape")}
                metadata["framework"] = built.framework
                try:
                    info["onnx"] = write_onnx(net, tuple(shape), onnx_path_for(path), metadata)
                except OnnxExportError as e:
                    info["onnx"] = {"error": str(e)}
    finally:
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    if "error" in info.get("onnx", {}) and os.path.exists(onnx_path_for(path)):
        os.remove(onnx_path_for(path))  # an older export's file would contradict the description

    def write_json(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(info, fh, indent=1)

    _write_atomic(deploy_info_path_for(path), write_json)
    return info


def snapshot_exporter(
    built: BuiltNetwork,
    input_shape: tuple[int, int, int],
    *,
    image_shape: tuple[int, int, int] | None = None,
    use_mean: str | None = None,
    log: Callable[..., None] | None = None,
) -> Callable[[float, str], None]:
    """A Trainer `on_snapshot` callback: export each snapshot; a network that cannot be exported is logged as a
    warning once and training goes on (the archive download then says the deployable model is missing). One that
    ONNX cannot express is logged once too, and its later snapshots keep the reason without trying again."""
    failed = []
    onnx_error: list[str] = []

    def warn(message: str) -> None:
        if log is not None:
            log(message, "warning")
        else:
            print(message, file=sys.stderr)

    def on_snapshot(epoch: float, snapshot_path: str) -> None:
        if failed:
            return
        try:
            info = export_deployable(
                built,
                input_shape,
                deploy_path_for(snapshot_path),
                image_shape=image_shape,
                use_mean=use_mean,
                onnx=onnx_error[0] if onnx_error else True,
            )
        except (ExportError, OSError) as e:
            failed.append(e)
            warn(f"no deployable model for download: {e}")
            return
        error = info.get("onnx", {}).get("error")
        if error and not onnx_error:
            onnx_error.append(error)
            warn(f"no ONNX model for download: {error}")

    return on_snapshot


# ---- exporting a finished job's snapshots ------------------------------------------------------------------


def _has_onnx_answer(info_path: str) -> bool:
    """Whether a deploy .json already says how the ONNX export went (its file, or why there is none)."""
    try:
        with open(info_path) as fh:
            onnx = json.load(fh).get("onnx") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return "error" in onnx or os.path.exists(onnx_path_for(os.path.splitext(info_path)[0] + ".ts"))


def export_job(job_dir: str, force: bool = False, log: Callable[[str], None] = print) -> list[str]:
    """Export every snapshot of a model job folder that has no deployable model yet; returns the files written."""
    with open(os.path.join(job_dir, JOB_FILE)) as fh:
        job = Job.from_dict(json.load(fh))
    settings = model_settings(job)
    framework = settings.framework
    with open(os.path.join(job_dir, settings.network_file), encoding="utf-8") as fh:
        text = fh.read()
    image = job.extra.get("image") or {}
    image_shape = None
    if image:
        image_shape = (int(image["channels"]), int(image["height"]), int(image["width"]))
    dataset_labels = None
    written = []
    for _, snapshot in snapshots_on_disk(job_dir):
        target = deploy_path_for(snapshot)
        done = [target, deploy_info_path_for(target)] + ([caffemodel_path_for(target)] if framework == "caffe" else [])
        if not force and all(os.path.exists(p) for p in done) and _has_onnx_answer(deploy_info_path_for(target)):
            continue
        state = torch.load(snapshot, map_location="cpu", weights_only=True)
        labels = state.get("labels")
        if labels is None:
            if dataset_labels is None:
                dataset_dir = model_dataset_dir(os.path.abspath(job_dir), job.extra.get("dataset_id", ""))
                dataset_labels = open_dataset(dataset_dir or job_dir).labels
            labels = dataset_labels
        shape = tuple(int(d) for d in state.get("input_shape") or image_shape)
        built = build_network(text, state.get("framework") or framework, input_shape=shape, num_classes=len(labels))
        built.module.load_state_dict(state["model"])
        info = export_deployable(built, shape, target, image_shape=image_shape, use_mean=settings.use_mean)
        onnx = (
            os.path.basename(onnx_path_for(target)) if "file" in info["onnx"] else f"no ONNX ({info['onnx']['error']})"
        )
        log(f"wrote {os.path.basename(target)}, {os.path.basename(deploy_info_path_for(target))} and {onnx}")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m digits.engine.export", description=__doc__.splitlines()[0])
    p.add_argument("job_dir", help="a model job folder (jobs/<id>)")
    p.add_argument("--force", action="store_true", help="export snapshots that already have a deployable model")
    args = p.parse_args(argv)
    try:
        written = export_job(os.path.abspath(args.job_dir), force=args.force)
    except (OSError, KeyError, ValueError, ExportError, TaskFailed) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if not written:
        print("nothing to export: every snapshot has its deployable model (--force exports them again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
