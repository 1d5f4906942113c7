"""Fine-tuning: start weights loaded into a built network by layer name, and frozen layers (worker side).

Start weights are a .pt (a DIGITS snapshot, or a plain state dict: torch.load with weights_only) or, for a Caffe
network, a .caffemodel (real Caffe's or ours). Each layer of the network takes the file's tensors of the same
layer name when they are all there with the same shapes; a layer the file does not have, or has with other
shapes, keeps what its fillers gave it (initialized fresh), as when a renamed last layer meets new classes. A
file layer that no layer of the network is named after is reported as unused. Nothing here is an error except a
file that cannot be read at all.

A layer is frozen by Caffe's `lr_mult: 0` on its params (the compiler builds those blobs without gradients) or by
the form's "Frozen layers" (names or name prefixes): its parameters get no gradient, so the solver leaves them
out (no update, no weight decay), and a frozen layer that keeps statistics (BatchNorm) runs on its stored ones,
as Caffe's `use_global_stats: true`. Caffe's BatchNorm with `lr_mult: 0` alone still updates its statistics
while training, as in Caffe, where those blobs are never the solver's.

What happened is kept in the model folder (folders.model.START_RECORD) for the model's page.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from digits.engine.caffe.caffemodel import blob_fits, image_layers, reverse_image_channels
from digits.engine.caffe.net import NOT_COMPUTED, CaffeNet
from digits.engine.networks import BuiltNetwork
from digits.folders.model import START_RECORD
from digits.formats.caffemodel import CaffemodelError, FileLayer, read_caffemodel
from digits.job import is_job_id
from digits.store import write_json_atomic
from digits.worker_runtime import TaskFailed

FROZEN_LABEL = "Frozen layers"  # the form's label of frozen_layers, which messages name the field by


class StartWeightsError(ValueError):
    """Start weights that cannot be used at all (unreadable, or a .caffemodel for a PyTorch network)."""


@dataclass
class Layer:
    """One layer of a built network that holds tensors: its name (the prototxt's, or the module's path), its
    module, its state_dict keys and tensors (Caffe's blob order for a Caffe layer) and which are parameters."""

    name: str
    module: nn.Module
    tensors: dict[str, torch.Tensor]  # state_dict key -> tensor
    params: list[nn.Parameter]
    prefix: str  # the state_dict prefix of its tensors, without the trailing dot


@dataclass
class StartRecord:
    """What a run started from, as written to the model folder."""

    source: dict | None = None
    loaded: list[dict] = field(default_factory=list)
    new: list[dict] = field(default_factory=list)
    frozen: list[dict] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    reversed: list[str] = field(default_factory=list)  # color layers turned from Caffe's BGR to RGB (the log says)

    def to_dict(self) -> dict:
        return {
            "schema_version": 1,
            "source": self.source,
            "loaded": self.loaded,
            "new": self.new,
            "frozen": self.frozen,
            "unused": self.unused,
        }


def network_layers(net: BuiltNetwork) -> list[Layer]:
    """The layers of `net` that hold tensors, in order."""
    module = net.module
    out = []
    if isinstance(module, CaffeNet):
        modules = iter(module.layers.items())  # one per computed layer, in prototxt order
        for spec in module.spec.layers:
            if spec.type in NOT_COMPUTED:
                continue
            key, sub = next(modules)
            names = (*sub.blob_names, *sub.buffer_names)
            if names:
                tensors = {f"layers.{key}.{n}": getattr(sub, n) for n in names}
                params = [getattr(sub, n) for n in sub.blob_names]
                out.append(Layer(spec.name, sub, tensors, params, f"layers.{key}"))
        return out
    for name, sub in module.named_modules():
        own = [*sub.named_parameters(recurse=False), *sub.named_buffers(recurse=False)]
        if own:
            prefix = f"{name}." if name else ""
            tensors = {prefix + n: t for n, t in own}
            params = [p for _, p in sub.named_parameters(recurse=False)]
            out.append(Layer(name or "(top level)", sub, tensors, params, name))
    return out


def layer_names(net: BuiltNetwork) -> list[str]:
    """Every layer name a frozen-layer pattern may name: a Caffe stage's layers, a module's submodules."""
    if isinstance(net.module, CaffeNet):
        return [layer.name for layer in net.module.spec.layers]
    return [name for name, _ in net.module.named_modules() if name]


def _shape(t) -> list[int]:
    return [int(d) for d in t.shape]


def source_of(path: str, given: str, job_dir: str) -> dict:
    """The record's description of the start weights: the path as given, the file, its format and, when it is
    another model's file in the same jobs folder, that model's id."""
    kind = "caffemodel" if path.lower().endswith(".caffemodel") else "pt"
    source = {"path": given, "file": os.path.basename(path), "format": kind}
    folder = os.path.dirname(os.path.realpath(path))
    jobs = os.path.dirname(os.path.realpath(job_dir))
    if os.path.dirname(folder) == jobs and is_job_id(os.path.basename(folder)):
        source["model_id"] = os.path.basename(folder)
    return source


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A .pt's tensors: a DIGITS snapshot's model, or a plain state dict (weights_only: no code runs)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors of every kind: the file is not usable weights
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StartWeightsError(f"{os.path.basename(path)} cannot be read as weights: {first[:300]}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state:
        raise StartWeightsError(f"{os.path.basename(path)} holds no state dict (tensors by name)")
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise StartWeightsError(f"{os.path.basename(path)} holds no tensors by name")
    return tensors


def _file_layer_of(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


def load_state_dict_by_layer(layers: list[Layer], state: dict[str, torch.Tensor], caffe: bool, record: StartRecord):
    """Copy a state dict's tensors into the layers whose tensors it has, all of them, with the same shapes."""
    if caffe and not any(k.startswith("layers.") for k in state):
        state = {f"layers.{k}": v for k, v in state.items()}  # a plain state dict of a Caffe net: conv1.weight
    copies: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in layers:
        have = [k for k in layer.tensors if k in state]
        if not have:
            record.new.append({"layer": layer.name, "reason": "absent", "shapes": []})
            continue
        differ = [
            {
                "blob": k.removeprefix(layer.prefix + "."),
                "file": _shape(state[k]) if k in state else None,
                "network": _shape(t),
            }
            for k, t in layer.tensors.items()
            if k not in state or tuple(state[k].shape) != tuple(t.shape)
        ]
        if differ:
            reason = "shape differs" if len(have) == len(layer.tensors) else "blobs differ"
            record.new.append({"layer": layer.name, "reason": reason, "shapes": differ})
            continue
        copies += [(t, state[k]) for k, t in layer.tensors.items()]
        record.loaded.append({"layer": layer.name, "tensors": len(layer.tensors)})
    _copy(copies)
    known = {layer.prefix for layer in layers}
    unused = dict.fromkeys(_file_layer_of(k) for k in state if _file_layer_of(k) not in known)
    record.unused = [name.removeprefix("layers.") if caffe else name for name in unused]


def load_caffemodel_by_layer(layers: list[Layer], path: str, record: StartRecord) -> None:
    """Copy a .caffemodel's blobs into the layers of the same name whose blobs are as many, with Caffe's shapes."""
    try:
        model = read_caffemodel(path)
    except (OSError, CaffemodelError) as e:
        raise StartWeightsError(f"{os.path.basename(path)} cannot be read as a .caffemodel: {e}") from None
    by_name: dict[str, FileLayer] = {}
    for file_layer in model.layers:
        if file_layer.blobs:
            by_name[file_layer.name] = file_layer  # the last of a name wins, as Caffe copies them in turn
    copies: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in layers:
        source = by_name.get(layer.name)
        if source is None:
            record.new.append({"layer": layer.name, "reason": "absent", "shapes": []})
            continue
        targets = list(layer.tensors.items())
        pairs = list(zip(targets, source.blobs, strict=False))
        differ = [
            {"blob": k.removeprefix(layer.prefix + "."), "file": list(b.shape), "network": _shape(t)}
            for (k, t), b in pairs
            if not blob_fits(tuple(t.shape), b.shape, b.legacy)
        ]
        if len(targets) != len(source.blobs):
            differ += [
                {"blob": k.removeprefix(layer.prefix + "."), "file": None, "network": _shape(t)}
                for k, t in targets[len(source.blobs) :]
            ]
            differ += [
                {"blob": f"blob {i}", "file": list(b.shape), "network": None}
                for i, b in enumerate(source.blobs[len(targets) :], start=len(targets))
            ]
            record.new.append({"layer": layer.name, "reason": "blobs differ", "shapes": differ})
            continue
        if differ:
            record.new.append({"layer": layer.name, "reason": "shape differs", "shapes": differ})
            continue
        copies += [(t, torch.from_numpy(np.array(b.data).reshape(t.shape))) for (_, t), b in pairs]
        record.loaded.append({"layer": layer.name, "tensors": len(targets)})
    _copy(copies)
    names = {layer.name for layer in layers}
    record.unused = [name for name in by_name if name not in names]


def _copy(copies: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for target, values in copies:
            target.copy_(values.to(device=target.device, dtype=target.dtype))


def load_start_weights(net: BuiltNetwork, path: str, record: StartRecord) -> None:
    """Load `path` into `net` by layer name, noting in `record` each layer loaded or new and the file's unused ones.
    Raises StartWeightsError for a file that cannot be used at all."""
    layers = network_layers(net)
    caffe = isinstance(net.module, CaffeNet)
    if path.lower().endswith(".caffemodel"):
        if not caffe:
            raise StartWeightsError(
                f"{os.path.basename(path)} is a .caffemodel: it can start a Caffe network only (this network is "
                "PyTorch code); give a .pt"
            )
        load_caffemodel_by_layer(layers, path, record)
        # A .caffemodel holds color weights in Caffe's BGR order (this server's downloads write them so too); the
        # images here are fed RGB.
        loaded = {e["layer"] for e in record.loaded}
        record.reversed = reverse_image_channels(net.module, [n for n in image_layers(net.module) if n in loaded])
    else:
        load_state_dict_by_layer(layers, read_state_dict(path), caffe, record)


def _use_stored_statistics(module: nn.Module, _inputs) -> None:
    module.training = False  # a frozen layer's statistics stay as loaded (Caffe's use_global_stats: true)


def freeze_layers(net: BuiltNetwork, patterns: list[str], record: StartRecord) -> None:
    """Freeze the layers named by `patterns` (a name, or the start of names), and note in `record` every frozen
    layer: by the form, or by Caffe's lr_mult 0 on all its params. Raises StartWeightsError naming a pattern that
    matches no layer."""
    names = layer_names(net)
    unknown = [p for p in patterns if not any(name.startswith(p) for name in names)]
    if unknown:
        shown = ", ".join(names[:30]) + (f", … ({len(names)} in all)" if len(names) > 30 else "")
        raise StartWeightsError(
            f"{FROZEN_LABEL}: the network has no layer named or starting with {', '.join(map(repr, unknown))} "
            f"(its layers: {shown})"
        )
    for layer in network_layers(net):
        if layer.params and not any(p.requires_grad for p in layer.params):
            record.frozen.append({"layer": layer.name, "by": "lr_mult 0"})
        elif any(layer.name.startswith(p) for p in patterns):
            for p in layer.params:
                p.requires_grad_(False)
            if any(True for _ in layer.module.buffers(recurse=False)):
                layer.module.register_forward_pre_hook(_use_stored_statistics)
            record.frozen.append({"layer": layer.name, "by": FROZEN_LABEL})
    if not any(p.requires_grad for p in net.module.parameters()):
        raise StartWeightsError(f"{FROZEN_LABEL}: every layer with weights is frozen, so nothing would train")


def write_start_record(job_dir: str, record: StartRecord) -> None:
    write_json_atomic(os.path.join(job_dir, START_RECORD), record.to_dict())


def summary(record: StartRecord) -> str:
    """One log line: what was loaded, what is new, what is frozen."""
    parts = []
    if record.source is not None:
        tensors = sum(e["tensors"] for e in record.loaded)
        parts.append(
            f"pretrained weights: {tensors} tensors loaded from {record.source['file']} ({len(record.loaded)} layers)"
        )
        if record.new:
            parts.append("new layers: " + ", ".join(f"{e['layer']} ({e['reason']})" for e in record.new))
        if record.unused:
            parts.append("not used from the file: " + ", ".join(record.unused[:20]))
        if record.reversed:
            parts.append("BGR (Caffe) to RGB: input channels of " + ", ".join(record.reversed) + " reversed")
    if record.frozen:
        parts.append("frozen: " + ", ".join(e["layer"] for e in record.frozen))
    return "; ".join(parts)


def start_from(net: BuiltNetwork, s, job_dir: str, log) -> None:
    """Load the training settings' start weights (`s.pretrained`) by layer name and freeze `s.frozen_layers`; what
    was loaded, new and frozen is logged and, when there is any of it, kept in the model folder for its page."""
    record = StartRecord()
    try:
        if s.pretrained:
            path = os.path.normpath(os.path.join(job_dir, s.pretrained))
            record.source = source_of(path, s.pretrained, job_dir)
            load_start_weights(net, path, record)
        freeze_layers(net, list(s.frozen_layers), record)
    except StartWeightsError as e:
        raise TaskFailed(str(e)) from None
    if record.source is not None or record.frozen:
        write_start_record(job_dir, record)
        log(summary(record))
