"""What one model may cost: parameters, snapshot bytes, snapshot interval and epochs (torch-free).

The web process checks a Caffe network at submit (its size follows from the prototxt); the training worker
checks every network again once it is built (a PyTorch network's size is only known then) and guards each
snapshot it writes. Workers do not read the server's settings: the limits travel in the task's args.

A snapshot is `snapshot_epoch_<N>.pt`: weights and buffers, the solver's state, the RNG. The deployable copy
exported next to it (`deploy_epoch_<N>.ts`, the weights alone) is not counted: the quota bounds what training
keeps to resume from, and a PyTorch network that cannot be traced has none.
"""

from __future__ import annotations

import math
import os
from typing import Any

from digits.folders.model import snapshots_on_disk

BYTES_PER_VALUE = 4  # float32: parameters, buffers and solver state stay float32 under autocast
# What torch.save writes besides tensor data: the pickled structure and RNG state (per snapshot), a zip entry
# with its alignment (per tensor); measured on LeNet and ResNet-18 snapshots, rounded up.
SNAPSHOT_OVERHEAD = 16 * 1024
TENSOR_OVERHEAD = 512


def optimizer_slots(framework: str, solver_type: str, momentum: float | None) -> int:
    """Tensors the solver keeps per trainable parameter (what digits.engine.solvers' optimizers store)."""
    kind = solver_type.upper()
    if kind in ("ADADELTA", "ADAM"):
        return 2
    if kind in ("SGD", "NESTEROV") and framework == "torch":
        return 1 if momentum else 0  # torch.optim.SGD keeps no buffer without momentum
    return 1  # Caffe's SGD/Nesterov history, AdaGrad's sum, RMSProp's average (RMSProp runs without momentum)


def snapshot_bytes(params: int, buffers: int, trainable: int, slots: int, *, tensors: int = 0) -> int:
    """Bytes one snapshot takes on disk: weights and buffers, and the solver's state (`slots` per trainable
    value); `tensors` counts the weight, bias and buffer tensors, each of which the solver state repeats."""
    data = (params + buffers + slots * trainable) * BYTES_PER_VALUE
    return data + SNAPSHOT_OVERHEAD + (1 + slots) * tensors * TENSOR_OVERHEAD


def snapshot_every(interval: float, iters_per_epoch: int) -> int:
    """Iterations between snapshots (the training loop's rule: at least one)."""
    return max(1, round(interval * iters_per_epoch))


def snapshot_iterations(max_iter: int, every: int, start: int = 0) -> int:
    """Snapshots a run of `max_iter` iterations writes after iteration `start`: each `every`, and at the end."""
    if start >= max_iter:
        return 0
    return max_iter // every - start // every + (1 if max_iter % every else 0)


def snapshot_count(epochs: int, interval: float, iters_per_epoch: int | None = None) -> int:
    """Snapshots a run writes; without the iterations per epoch (no built dataset yet): ceil(epochs / interval)."""
    if iters_per_epoch is None:
        return max(1, math.ceil(epochs / interval - 1e-9))
    return snapshot_iterations(epochs * iters_per_epoch, snapshot_every(interval, iters_per_epoch))


def snapshot_files_bytes(job_dir: str, *, skip: tuple[str, ...] = ()) -> int:
    """Bytes the model's snapshots take in `job_dir` now (files named in `skip` left out)."""
    total = 0
    for _, path in snapshots_on_disk(job_dir):
        if os.path.basename(path) not in skip:
            try:
                total += os.path.getsize(path)
            except OSError:
                pass  # removed meanwhile
    return total


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}".replace(".0 ", " ")
        n /= 1024
    raise AssertionError("unreachable")


def params_problem(total: int, layer: str, layer_params: int, detail: str, limit: int | None) -> str | None:
    """Why a network of `total` parameters (the most in `layer`) is too large, or None when it fits."""
    if limit is None or total <= limit:
        return None
    allows = f"this server allows {limit:,} per model (setting max_model_params)"
    what = f"layer {layer} has {layer_params:,} parameters" + (f" ({detail})" if detail else "")
    if layer_params > limit:
        return f"{what}; {allows}"
    return f"the network has {total:,} parameters and {what}; {allows}"


def caffe_params_problem(spec: Any, limit: int | None) -> str | None:
    """Why an analyzed Caffe network has too many parameters (naming its largest layer), or None."""
    biggest = max(spec.layers, key=lambda layer: layer.param_count, default=None)
    if biggest is None:
        return None
    param = biggest.params.get("inner_product_param") or biggest.params.get("convolution_param")
    if param is not None and "num_output" in param:
        # DIGITS fills in the last layer's num_output (the class count): that one has no line of its own.
        detail = f"num_output {param.first('num_output')}, line {param.where('num_output')[0] or biggest.line}"
    else:
        detail = f"line {biggest.line}"
    return params_problem(spec.total_params, biggest.name, biggest.param_count, detail, limit)


def fitting_interval(epochs: int, per_snapshot: int, limit: int, iters_per_epoch: int | None) -> float | None:
    """The smallest snapshot interval (epochs) whose snapshots fit in `limit`; None when not even one fits."""
    fits = limit // per_snapshot
    if fits < 1:
        return None
    if iters_per_epoch is None:
        interval = epochs / fits
    else:
        interval = math.ceil(epochs * iters_per_epoch / fits) / iters_per_epoch
    # Round up to two significant digits: a value a person can type that still fits.
    scale = 10 ** (math.floor(math.log10(interval)) - 1)
    return math.ceil(interval / scale - 1e-9) * scale


def snapshots_problem(
    *,
    epochs: int,
    interval: float,
    per_snapshot: int,
    count: int,
    limit: int | None,
    already: int = 0,
    iters_per_epoch: int | None = None,
) -> str | None:
    """Why `count` snapshots of `per_snapshot` bytes (after `already` on disk) do not fit, or None when they do."""
    if limit is None or already + count * per_snapshot <= limit:
        return None
    allows = f"this server allows {human_bytes(limit)} of snapshots per model (setting max_snapshot_bytes)"
    each = f"one snapshot of this network takes about {human_bytes(per_snapshot)} (weights and solver state)"
    if already + per_snapshot > limit:
        return f"{each}; {allows}: use a smaller network"
    plan = (
        f"training would write {count:,} snapshots of about {human_bytes(per_snapshot)} each "
        f"({human_bytes(count * per_snapshot)}"
        + (f", after {human_bytes(already)} already written" if already else "")
        + f"); {allows}"
    )
    room = fitting_interval(epochs, per_snapshot, limit - already, iters_per_epoch)
    if room is None or room > epochs:
        return f"{plan}: take fewer snapshots (an interval of {epochs:g} epochs writes just one) or train fewer epochs"
    return f"{plan}: take fewer snapshots with a snapshot interval of at least {room:g} epochs, or train fewer epochs"


def snapshot_refusal(epoch: str, after: int, limit: int) -> str | None:
    """Why the snapshot at `epoch` (its label) is not written when the model's snapshots would then take `after`
    bytes, past `limit`; None when it fits. Both training engines refuse with this message before writing."""
    if after <= limit:
        return None
    return (
        f"the snapshot at epoch {epoch} was not written: this model's snapshots would take "
        f"{human_bytes(after)}, past the {human_bytes(limit)} this server allows per model "
        "(setting max_snapshot_bytes); train it again with a larger snapshot interval or fewer epochs"
    )
