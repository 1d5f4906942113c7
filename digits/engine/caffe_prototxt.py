"""The plain prototxt files a real-Caffe run of a model job gives Caffe (digits.engine.caffe_solver): one stage of
the DIGITS network with its data layer turned into an Input fed from Python, and the solver.prototxt of the form's
settings."""

from __future__ import annotations

import os
from typing import Any

from digits.engine.solvers import DEFAULT_DELTA
from digits.model.caffe import analyze
from digits.model.caffe.shapes import SOURCE_TYPES
from digits.model.caffe.textformat import Identifier, Message, format_message
from digits.model.lr_policy import LRPolicy
from digits.model.settings import TrainSettings
from digits.worker_runtime import TaskFailed

# DIGITS' solver types as Caffe's SolverParameter.type names them.
CAFFE_TYPES = {
    "SGD": "SGD",
    "NESTEROV": "Nesterov",
    "ADAGRAD": "AdaGrad",
    "RMSPROP": "RMSProp",
    "ADADELTA": "AdaDelta",
    "ADAM": "Adam",
}


def _input_layer(name: str, tops: list[str], shapes: list[tuple[int, ...]]) -> Message:
    layer = Message()
    layer.add("name", name)
    layer.add("type", "Input")
    for top in tops:
        layer.add("top", top)
    param = Message()
    for dims in shapes:
        shape = Message()
        for dim in dims:
            shape.add("dim", int(dim))
        param.add("shape", shape)
    layer.add("input_param", param)
    return layer


def stage_prototxt(
    text: str, stage: str, *, shape: tuple[int, int, int], num_classes: int, batch: int
) -> tuple[str, str, str]:
    """One stage of a DIGITS network as Caffe reads it: stage rules applied, num_output filled in, and the data
    layer replaced by an Input layer of `batch` images and labels. Returns (prototxt, data blob, label blob)."""
    spec = analyze(text, stage=stage, input_shape=shape, num_classes=num_classes)
    if not spec.label_blob:
        raise TaskFailed(f"the network's {stage} stage has no label blob: real Caffe trains it from labelled data")
    net = Message()
    net.add("name", spec.name)
    fed = False
    for layer in spec.layers:
        if layer.type in SOURCE_TYPES and spec.data_blob in layer.tops:
            if fed:
                raise TaskFailed(f"layer {layer.name}: the pycaffe engine feeds one data layer per stage")
            fed = True
            net.add("layer", _input_layer(layer.name, [spec.data_blob, spec.label_blob], [(batch, *shape), (batch,)]))
            continue
        message = layer.message.copy_message()
        for rule in ("include", "exclude"):
            message.pop(rule, None)
            message.positions.pop(rule, None)
        net.add("layer", message)
    if not fed:
        raise TaskFailed(f"the network's {stage} stage has no data layer for the dataset's images")
    return "# Written by DIGITS for real Caffe.\n" + format_message(net), spec.data_blob, spec.label_blob


def solver_prototxt(s: TrainSettings, policy: LRPolicy, train_net: str, prefix: str) -> str:
    """solver.prototxt for the form's settings; DIGITS decides when to test and snapshot (none here)."""
    kind = s.solver_type.upper()
    fields: dict[str, Any] = {
        "train_net": train_net,
        "type": CAFFE_TYPES[kind],
        **policy.caffe_solver_fields(),
        "weight_decay": s.weight_decay,
        "regularization_type": "L2",
        "display": 0,
        "snapshot": 0,
        "snapshot_prefix": prefix,
        "random_seed": s.seed,
        "solver_mode": Identifier("CPU"),
    }
    if kind in ("SGD", "NESTEROV", "ADADELTA", "ADAM"):
        fields["momentum"] = s.momentum
    if kind == "RMSPROP":
        fields["rms_decay"] = s.rms_decay
    if kind in DEFAULT_DELTA:
        fields["delta"] = DEFAULT_DELTA[kind]
    msg = Message()
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            msg.add(name, item)
    return "# Written by DIGITS for real Caffe.\n" + format_message(msg)


def write_text(path: str, text: str) -> str:
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)
    return path
