"""Torch-free analysis of a DIGITS Caffe network: pick one stage's layers and infer every blob's shape.

DIGITS keeps train, val and deploy in one prototxt; `include`/`exclude` rules with stages "train", "val"
and "deploy" select a variant (train runs in Caffe's TRAIN phase, val and deploy in TEST).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from digits.model.caffe import shapes_layout, shapes_more  # noqa: F401 - register Crop, ..., SPP, LSTM
from digits.model.caffe.errors import NetworkError
from digits.model.caffe.inputs import (  # noqa: F401 - REFUSED, RefusedLayerError: re-exported
    REFUSED,
    RefusedLayerError,
    declared_shapes,
    extra_source_shapes,
    find_source,
    hdf5_notice,
    refuse_if_refused,
    undeclared_input_message,
)
from digits.model.caffe.inputs import layer_error as _error
from digits.model.caffe.schema import validate, value, values
from digits.model.caffe.shapes import RULES, SOURCE_TYPES, LayerShapes, Shape, ShapeError, fmt
from digits.model.caffe.shapes_loss import LOSS_TYPES
from digits.model.caffe.textformat import Message, parse
from digits.model.caffe.upgrade import upgrade_net

STAGES = {"train": "TRAIN", "val": "TEST", "deploy": "TEST"}
LABEL_CONSUMERS = (*LOSS_TYPES, "Accuracy")
CLASS_COUNT_NEEDED = (
    "num_output is left for DIGITS to fill with the number of classes, which is not known here: "
    "choose a dataset or give the number of classes"
)
_BATCH_PARAMS = (
    ("data_param", "DataParameter"),
    ("image_data_param", "ImageDataParameter"),
    ("memory_data_param", "MemoryDataParameter"),
    ("hdf5_data_param", "HDF5DataParameter"),
)


@dataclass
class LayerSpec:
    """One layer of the selected stage, with its inferred top shapes and parameter blobs."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, Message]  # the layer's *_param messages as parsed (num_output filled in)
    output_shapes: dict[str, Shape]
    param_count: int  # learnable values owned by this layer (a shared blob counts at its first owner)
    param_shapes: list[Shape]
    lr_mults: list[float]
    decay_mults: list[float]
    line: int
    column: int = 1
    config: dict = field(default_factory=dict)  # resolved settings (Caffe defaults applied) for the builder
    fillers: list[dict] = field(default_factory=list)
    buffer_shapes: list[Shape] = field(default_factory=list)  # non-learned blobs (BatchNorm statistics)
    param_names: list[str | None] = field(default_factory=list)  # ParamSpec names: equal names share a blob
    message: Message = field(default_factory=Message, repr=False)


@dataclass
class NetworkSpec:
    """The analyzed network of one stage: what the web shows and what the torch builder compiles."""

    name: str
    stage: str
    input_shape: Shape
    layers: list[LayerSpec]
    data_blob: str
    label_blob: str | None
    batch_size: int | None
    transform: dict
    loss_heads: list[tuple[str, float]]
    accuracy: list[tuple[str, int]]
    output_blob: str
    total_params: int
    blob_shapes: dict[str, Shape] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # what was upgraded or assumed, for the person

    def layer(self, name: str) -> LayerSpec:
        """The layer called `name` (KeyError when the stage has none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _meets(rule: Message, phase: str, stage: str) -> bool:
    """Caffe's StateMeetsRule for a net state with level 0 and the single stage `stage`."""
    if rule.get("phase") and rule["phase"][0] != phase:
        return False
    if value(rule, "NetStateRule", "min_level") is not None and value(rule, "NetStateRule", "min_level") > 0:
        return False
    if value(rule, "NetStateRule", "max_level") is not None and value(rule, "NetStateRule", "max_level") < 0:
        return False
    return all(s == stage for s in values(rule, "stage")) and stage not in values(rule, "not_stage")


def select_layers(net: Message, stage: str) -> list[Message]:
    """The layers Caffe would instantiate for `stage` (layers without rules belong to every stage)."""
    phase, chosen = STAGES[stage], []
    for layer in values(net, "layer"):
        name = layer.first("name", "")
        if not name:
            raise NetworkError("every layer needs a name", line=layer.line, column=layer.column)
        if not layer.first("type"):
            raise NetworkError("layer has no type", layer=name, line=layer.line, column=layer.column)
        if layer.get("include") and layer.get("exclude"):
            raise NetworkError("give include or exclude rules, not both", layer=name, line=layer.line)
        included = not layer.get("include")
        if any(_meets(rule, phase, stage) for rule in values(layer, "exclude")):
            included = False
        if any(_meets(rule, phase, stage) for rule in values(layer, "include")):
            included = True
        if included:
            chosen.append(layer)
    return chosen


def _too_many_guesses(layer: Message, num_classes: int) -> bool:
    if layer.first("type") != "Accuracy":
        return False
    return value(layer.first("accuracy_param"), "AccuracyParameter", "top_k") > num_classes


def _fill_num_outputs(layers: list[Message], stage: str, num_classes: int) -> set[int]:
    """Give the InnerProduct that produces the logits num_output = class count when the user left it unset.

    Targets are the logits of every SoftmaxWithLoss (train/val) or the deploy Softmax; walking back skips
    in-place layers (a Dropout on the logits) so the InnerProduct that really produced them is found. With no
    class count (0) nothing is filled; returns the ids of the layers left waiting for one.
    """
    waiting: set[int] = set()
    heads = ("SoftmaxWithLoss",) if stage != "deploy" else ("Softmax",)
    writers: dict[str, list[int]] = {}
    targets = []
    for i, layer in enumerate(layers):
        if layer.first("type") in heads and layer.get("bottom"):
            targets.append((i, layer["bottom"][0]))
        for top in values(layer, "top"):
            writers.setdefault(top, []).append(i)
    if not targets and layers and layers[-1].get("top") and stage == "deploy":
        targets.append((len(layers), layers[-1]["top"][0]))
    for index, blob in targets:
        for writer in reversed([w for w in writers.get(blob, []) if w < index]):
            layer = layers[writer]
            if layer.first("type") == "InnerProduct":
                if not layer.get("inner_product_param"):
                    layer.add("inner_product_param", Message(layer.line, layer.column))
                param = layer["inner_product_param"][0]
                if not param.get("num_output"):
                    if num_classes > 0:
                        param.add("num_output", num_classes)
                    else:
                        waiting.add(id(layer))
                break
            if blob not in values(layer, "bottom"):
                break
    return waiting


def _layer_spec(layer: Message, inferred: LayerShapes, bottoms: list[str], known: dict[str, Shape]) -> LayerSpec:
    """Combine a rule's result with the layer's ParamSpecs; `known` holds shapes of named (shared) blobs."""
    specs = values(layer, "param")
    blobs = len(inferred.params) + len(inferred.buffers)  # old BatchNorm nets freeze their 3 statistics
    if len(specs) > blobs:
        raise _error(layer, f"{len(specs)} param specs given but the layer has {blobs} blobs")
    lr, decay, names, count = [], [], [], 0
    for i, blob in enumerate(inferred.params):
        spec = specs[i] if i < len(specs) else None
        lr.append(value(spec, "ParamSpec", "lr_mult"))
        decay.append(value(spec, "ParamSpec", "decay_mult"))
        name = value(spec, "ParamSpec", "name") or None
        names.append(name)
        if name and name in known:
            if known[name] != blob.shape:
                raise _error(layer, f"shared param '{name}' is {fmt(blob.shape)} here but {fmt(known[name])} before")
            continue
        if name:
            known[name] = blob.shape
        count += math.prod(blob.shape)
    tops = values(layer, "top")
    return LayerSpec(
        name=layer.first("name"),
        type=layer.first("type"),
        bottoms=bottoms,
        tops=tops,
        params={k: v[0] for k, v in layer.items() if k.endswith("_param") and isinstance(v[0], Message)},
        output_shapes=dict(zip(tops, inferred.tops, strict=True)),
        param_count=count,
        param_shapes=[blob.shape for blob in inferred.params],
        lr_mults=lr,
        decay_mults=decay,
        line=layer.line,
        column=layer.column,
        config=inferred.config,
        fillers=[blob.filler for blob in inferred.params],
        buffer_shapes=inferred.buffers,
        param_names=names,
        message=layer,
    )


def _infer(layer: Message, shapes: dict[str, Shape], label: str | None, waiting: set[int]) -> LayerShapes:
    kind = layer.first("type")
    rule = RULES.get(kind)
    refuse_if_refused(layer)
    if rule is None:
        supported = ", ".join(sorted([*RULES, *SOURCE_TYPES]))
        raise _error(layer, f"unknown layer type '{kind}' (supported: {supported})", "type")
    bottoms, tops = values(layer, "bottom"), values(layer, "top")
    for what, count, (low, high) in (("bottom", len(bottoms), rule.bottoms), ("top", len(tops), rule.tops)):
        if not low <= count <= high:
            wanted = str(low) if low == high else f"{low} to {high}" if high < 1 << 20 else f"at least {low}"
            raise _error(layer, f"takes {wanted} {what} blob(s), got {count}")
    for blob in bottoms:
        if blob not in shapes:
            raise _error(layer, f"bottom blob '{blob}' does not exist (no earlier layer of this stage produces it)")
    if kind not in LABEL_CONSUMERS and label in bottoms and kind not in ("Silence", "Split"):
        raise _error(layer, f"uses the label blob '{label}'; only loss and accuracy layers may")
    try:
        return rule.infer(layer, [shapes[b] for b in bottoms])
    except ShapeError as err:
        if err.field == "num_output" and id(layer) in waiting:
            raise _error(layer, CLASS_COUNT_NEEDED, "num_output") from None
        raise _error(layer, str(err), err.field) from None


def analyze_message(
    net: Message,
    *,
    stage: str,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int = 0,
    progress: list[LayerSpec] | None = None,
    default_input: tuple[int, ...] | None = None,
    trainable: bool = True,
) -> NetworkSpec:
    """Analyze a parsed NetParameter; layers are appended to `progress` as they succeed (for partial display).

    The data blob's shape is `input_shape` when given (the dataset's images), else what the network declares
    (an Input layer, net-level input_shape/input_dim, MemoryData), else `default_input`. `num_classes` 0 means
    unknown: nothing is filled in or checked against it. `trainable` adds the checks training needs (a
    SoftmaxWithLoss on one label per image, one data layer); Visualize leaves them out.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    notices = upgrade_net(net)
    validate(net)
    layers = select_layers(net, stage)
    if num_classes > 0:
        # As DIGITS does: a top-5 accuracy on a 3-class dataset is dropped, not an error.
        layers = [layer for layer in layers if not _too_many_guesses(layer, num_classes)]
    if stage == "deploy" and num_classes > 0:
        # DIGITS fills the loss's logits layer in the whole file, so deploy has it even without the loss.
        _fill_num_outputs(values(net, "layer"), "train", num_classes)
    waiting = _fill_num_outputs(layers, stage, num_classes)
    source, data_blob, label_blob = find_source(layers, net)
    declared = declared_shapes(source) if source is not None else []
    shape = input_shape if input_shape is not None else declared[0] if declared else default_input
    if shape is None and (source is not None or any(data_blob in values(layer, "bottom") for layer in layers)):
        for layer in layers:  # a layer DIGITS refuses says more than a request for a shape
            refuse_if_refused(layer)
        raise NetworkError(undeclared_input_message(source))
    if notice := hdf5_notice(source, declared, input_shape, shape):
        notices.append(notice)
    # A network fed by DummyData alone reads no outside input: its data blob stays unset.
    shape = tuple(int(d) for d in shape) if shape is not None else ()
    shapes: dict[str, Shape] = {data_blob: shape} if source is not None or shape else {}
    if source is None and label_blob:
        shapes[label_blob] = ()
    specs = progress if progress is not None else []
    shared: dict[str, Shape] = {}
    for layer in layers:
        if layer is source:
            tops = values(layer, "top")
            rest = declared[1:] if declared else [()] * (len(tops) - 1)
            inferred = LayerShapes([shape, *rest])
        elif layer.first("type") in SOURCE_TYPES:
            inferred = LayerShapes(extra_source_shapes(layer, shape, notices, trainable))
        else:
            inferred = _infer(layer, shapes, label_blob, waiting)
        spec = _layer_spec(layer, inferred, values(layer, "bottom"), shared)
        shapes.update(spec.output_shapes)
        specs.append(spec)
    result = _finish(net, stage, shape, specs, source, data_blob, label_blob, shapes, num_classes, trainable)
    result.notices = notices
    return result


def _finish(
    net: Message,
    stage: str,
    input_shape: Shape,
    specs: list[LayerSpec],
    source: Message | None,
    data_blob: str,
    label_blob: str | None,
    shapes: dict[str, Shape],
    num_classes: int,
    trainable: bool,
) -> NetworkSpec:
    """Loss heads, metrics, the logits blob and the data layer's settings, once every layer has a shape."""
    heads = [(s.bottoms[0], s.config["loss_weight"], s) for s in specs if s.type == "SoftmaxWithLoss"]
    for blob, _, layer in heads:
        classes = layer.config["classes"]
        if trainable and layer.config["spatial"]:
            raise NetworkError(
                "predicts one class per pixel; training here learns one label per image (Visualize draws it)",
                layer=layer.name,
                layer_type=layer.type,
                line=layer.line,
            )
        if num_classes and classes < num_classes:
            raise NetworkError(
                f"its input '{blob}' has {classes} outputs but the dataset has {num_classes} classes",
                layer=layer.name,
                layer_type=layer.type,
                line=layer.line,
            )
    if trainable and stage == "train" and not heads:
        raise NetworkError("the train stage has no SoftmaxWithLoss layer, so there is nothing to train")
    softmaxes = [s.bottoms[0] for s in specs if s.type == "Softmax"]
    output = None
    if stage == "deploy" and softmaxes:
        output = softmaxes[-1]
    elif heads:
        best = max(w for _, w, _ in heads)
        output = [b for b, w, _ in heads if w == best][-1]
    elif softmaxes:
        output = softmaxes[-1]
    else:
        output = next((s.tops[0] for s in reversed(specs) if s.tops and s.type not in SOURCE_TYPES), data_blob)
    transform_msg = source.first("transform_param") if source is not None else None
    transform = {
        name: value(transform_msg, "TransformationParameter", name) for name in ("scale", "mirror", "crop_size")
    }
    transform["mean_file"] = value(transform_msg, "TransformationParameter", "mean_file")
    transform["mean_value"] = values(transform_msg, "mean_value")
    batch_size = None
    for param, type_name in _BATCH_PARAMS:
        if source is not None and source.get(param):
            batch_size = value(source.first(param), type_name, "batch_size")
    return NetworkSpec(
        name=str(value(net, "NetParameter", "name")),
        stage=stage,
        input_shape=input_shape,
        layers=specs,
        data_blob=data_blob,
        label_blob=label_blob,
        batch_size=batch_size,
        transform=transform,
        loss_heads=[(b, w) for b, w, _ in heads],
        accuracy=[(s.bottoms[0], s.config["top_k"]) for s in specs if s.type == "Accuracy"],
        output_blob=output,
        total_params=sum(s.param_count for s in specs),
        blob_shapes=shapes,
    )


def analyze(
    text: str,
    *,
    stage: str,
    input_shape: tuple[int, ...] | None,
    num_classes: int,
    default_input: tuple[int, ...] | None = None,
    trainable: bool = True,
) -> NetworkSpec:
    """Parse a DIGITS prototxt and analyze its `stage` ("train", "val" or "deploy") for (C, H, W) inputs
    (None: the input the network declares, else `default_input`).

    Raises TextFormatError for syntax errors and NetworkError (SchemaError for unknown fields) otherwise.
    """
    return analyze_message(
        parse(text),
        stage=stage,
        input_shape=input_shape,
        num_classes=num_classes,
        default_input=default_input,
        trainable=trainable,
    )
