"""Per-layer-type shape rules with Caffe's exact arithmetic (torch-free).

Shapes exclude the batch axis: (C, H, W) for images, (D,) after an InnerProduct, () for a label or a loss.
Each rule reads a layer's parameters (Caffe defaults applied) and its bottom shapes, and returns its top
shapes, the resolved configuration the torch builder needs, and its parameter blobs with their fillers.
Caffe's axis numbers count the batch axis; rules convert them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from digits.model.caffe.schema import MESSAGES, value, values
from digits.model.caffe.textformat import Message

Shape = tuple[int, ...]

SOURCE_TYPES = ("Data", "Input", "ImageData", "MemoryData", "HDF5Data")
FILLER_TYPES = ("constant", "gaussian", "uniform", "xavier", "msra", "positive_unitball", "bilinear")


class ShapeError(Exception):
    """A layer's parameters or bottoms cannot work; `field` names the parameter to point the user at."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ParamBlob:
    """A learnable blob in Caffe's order for the layer (weights first, then bias) and how to fill it."""

    shape: Shape
    filler: dict


@dataclass
class LayerShapes:
    """What a rule infers for one layer."""

    tops: list[Shape]
    config: dict = field(default_factory=dict)
    params: list[ParamBlob] = field(default_factory=list)
    buffers: list[Shape] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    infer: Callable[[Message, list[Shape]], LayerShapes]
    bottoms: tuple[int, int]
    tops: tuple[int, int]


RULES: dict[str, Rule] = {}
_MANY = 1 << 30


def _rule(*types: str, bottoms: tuple[int, int] = (1, 1), tops: tuple[int, int] = (1, 1)):
    def register(fn: Callable[[Message, list[Shape]], LayerShapes]):
        for name in types:
            RULES[name] = Rule(fn, bottoms, tops)
        return fn

    return register


def fmt(shape: Shape) -> str:
    """A shape as Caffe users read it: 20x24x24 (a scalar is 'scalar')."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _param(layer: Message, name: str) -> Message | None:
    return layer.first(name)


def filler(msg: Message | None, fallback: dict | None = None) -> dict:
    """A FillerParameter with Caffe's defaults applied; `fallback` replaces a missing filler."""
    if msg is None and fallback is not None:
        return {**filler(None), **fallback}
    out = {name: value(msg, "FillerParameter", name) for name in MESSAGES["FillerParameter"]}
    if out["type"] not in FILLER_TYPES:
        raise ShapeError(f"unknown filler type '{out['type']}' (known: {', '.join(FILLER_TYPES)})", "type")
    return out


def _image(bottom: Shape, what: str = "input") -> Shape:
    if len(bottom) != 3:
        raise ShapeError(f"expects a 4-D {what} (N x C x H x W), got N x {fmt(bottom)}")
    return bottom


def _axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Caffe axis (batch axis = 0, negative from the end) to an index into our batch-less shape."""
    full = axis + ndim + 1 if axis < 0 else axis
    if not 1 <= full <= ndim:
        raise ShapeError(f"{name} {axis} is out of range for an input with {ndim + 1} axes", name)
    return full - 1


def _pair(p: Message, name: str, h: str, w: str, fallback: int | None, type_name: str) -> tuple[int, int]:
    """A 2-D setting given as `name` (one or two values) or as `name_h` + `name_w`."""
    if p.get(h) or p.get(w):
        if p.get(name):
            raise ShapeError(f"give either {name} or {h}/{w}, not both", name)
        got = (value(p, type_name, h), value(p, type_name, w))
        if None in got:
            raise ShapeError(f"{h} and {w} must both be given", h)
        return got
    given = values(p, name)
    if not given:
        if fallback is None:
            raise ShapeError(f"{name} is not set", name)
        return fallback, fallback
    if len(given) > 2:
        raise ShapeError(f"{name} takes one or two values for a 2-D layer, got {len(given)}", name)
    return (given[0], given[-1])


def _positive(name: str, *numbers: int) -> None:
    if any(n <= 0 for n in numbers):
        raise ShapeError(f"{name} must be positive, got {', '.join(map(str, numbers))}", name)


@_rule("Convolution", "Deconvolution")
def _convolution(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = _param(layer, "convolution_param") or Message()
    channels, height, width = _image(bottoms[0])
    num_output = value(p, "ConvolutionParameter", "num_output")
    if num_output is None:
        raise ShapeError("num_output is not set", "num_output")
    if value(p, "ConvolutionParameter", "axis") != 1:
        raise ShapeError("only axis 1 (channels) is supported", "axis")
    kernel = _pair(p, "kernel_size", "kernel_h", "kernel_w", None, "ConvolutionParameter")
    stride = _pair(p, "stride", "stride_h", "stride_w", 1, "ConvolutionParameter")
    pad = _pair(p, "pad", "pad_h", "pad_w", 0, "ConvolutionParameter")
    dilation = _pair(p, "dilation", "", "", 1, "ConvolutionParameter")
    group = value(p, "ConvolutionParameter", "group")
    _positive("kernel_size", *kernel)
    _positive("stride", *stride)
    _positive("dilation", *dilation)
    _positive("num_output", num_output)
    if min(pad) < 0:
        raise ShapeError(f"pad must not be negative, got {pad}", "pad")
    if group < 1 or channels % group or num_output % group:
        raise ShapeError(
            f"group {group} must divide both the input channels ({channels}) and num_output ({num_output})", "group"
        )
    deconv = layer.first("type") == "Deconvolution"
    out = []
    for size, k, s, pd, d, axis in zip((height, width), kernel, stride, pad, dilation, "hw", strict=True):
        extent = d * (k - 1) + 1
        if deconv:
            out.append(s * (size - 1) + extent - 2 * pd)
        elif size + 2 * pd < extent:
            raise ShapeError(
                f"kernel {extent} ({axis}) is larger than the input {fmt(bottoms[0])} plus padding {pd}", "kernel_size"
            )
        else:
            out.append((size + 2 * pd - extent) // s + 1)
    if min(out) <= 0:
        raise ShapeError(f"output size {fmt((num_output, *out))} from input {fmt(bottoms[0])} is not positive")
    if deconv:
        weight = (channels, num_output // group, *kernel)
    else:
        weight = (num_output, channels // group, *kernel)
    bias = value(p, "ConvolutionParameter", "bias_term")
    params = [ParamBlob(weight, filler(p.first("weight_filler")))]
    if bias:
        params.append(ParamBlob((num_output,), filler(p.first("bias_filler"))))
    config = {"kernel": kernel, "stride": stride, "pad": pad, "dilation": dilation, "group": group, "bias": bias}
    return LayerShapes([(num_output, *out)], config, params)


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool, padded: bool) -> int:
    """Caffe's pooled output length; `padded` is whether the layer has any padding (h or w)."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    # Caffe: with padding, the last window must start inside the image, not in the padding.
    if padded and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@_rule("Pooling")
def _pooling(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = _param(layer, "pooling_param") or Message()
    channels, height, width = _image(bottoms[0])
    pool = value(p, "PoolingParameter", "pool")
    if value(p, "PoolingParameter", "global_pooling"):
        if p.get("kernel_size") or p.get("kernel_h") or p.get("kernel_w"):
            raise ShapeError("global_pooling takes the kernel from the input; do not set kernel_size", "kernel_size")
        kernel = (height, width)
    else:
        kernel = _pair(p, "kernel_size", "kernel_h", "kernel_w", None, "PoolingParameter")
    stride = _pair(p, "stride", "stride_h", "stride_w", 1, "PoolingParameter")
    pad = _pair(p, "pad", "pad_h", "pad_w", 0, "PoolingParameter")
    _positive("kernel_size", *kernel)
    _positive("stride", *stride)
    if pad[0] >= kernel[0] or pad[1] >= kernel[1] or min(pad) < 0:
        raise ShapeError(f"pad {pad} must be non-negative and smaller than the kernel {kernel}", "pad")
    ceil = value(p, "PoolingParameter", "round_mode") == "CEIL"
    out = []
    for size, k, s, pd in zip((height, width), kernel, stride, pad, strict=True):
        if size + 2 * pd < k:
            raise ShapeError(f"kernel {k} is larger than the input {fmt(bottoms[0])} plus padding {pd}", "kernel_size")
        out.append(pooled_size(size, k, s, pd, ceil, any(pad)))
    config = {"pool": str(pool), "kernel": kernel, "stride": stride, "pad": pad, "ceil": ceil}
    return LayerShapes([(channels, *out)], config)


@_rule("InnerProduct")
def _inner_product(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = _param(layer, "inner_product_param") or Message()
    num_output = value(p, "InnerProductParameter", "num_output")
    if num_output is None:
        hint = "DIGITS fills it in only for the InnerProduct that produces the loss's (or deploy Softmax's) input"
        raise ShapeError(f"num_output is not set ({hint})", "num_output")
    _positive("num_output", num_output)
    axis = _axis(value(p, "InnerProductParameter", "axis"), len(bottoms[0]))
    inputs = math.prod(bottoms[0][axis:])
    transpose = value(p, "InnerProductParameter", "transpose")
    bias = value(p, "InnerProductParameter", "bias_term")
    params = [ParamBlob((inputs, num_output) if transpose else (num_output, inputs), filler(p.first("weight_filler")))]
    if bias:
        params.append(ParamBlob((num_output,), filler(p.first("bias_filler"))))
    config = {"axis": axis, "transpose": transpose, "bias": bias}
    return LayerShapes([(*bottoms[0][:axis], num_output)], config, params)


@_rule("ReLU", "Sigmoid", "TanH", "Dropout", "Power", "Softmax")
def _elementwise(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    kind = layer.first("type")
    config: dict = {}
    if kind == "ReLU":
        config["negative_slope"] = value(layer.first("relu_param"), "ReLUParameter", "negative_slope")
    elif kind == "Dropout":
        ratio = value(layer.first("dropout_param"), "DropoutParameter", "dropout_ratio")
        if not 0.0 <= ratio < 1.0:
            raise ShapeError(f"dropout_ratio must be in [0, 1), got {ratio}", "dropout_ratio")
        config["ratio"] = ratio
    elif kind == "Power":
        p = layer.first("power_param")
        config = {name: value(p, "PowerParameter", name) for name in ("power", "scale", "shift")}
    elif kind == "Softmax":
        config["axis"] = _axis(value(layer.first("softmax_param"), "SoftmaxParameter", "axis"), len(bottoms[0]))
    return LayerShapes([bottoms[0]], config)


@_rule("Split", tops=(1, _MANY))
def _split(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    return LayerShapes([bottoms[0]] * len(layer.get("top", [])))


@_rule("LRN")
def _lrn(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("lrn_param")
    _image(bottoms[0])
    config = {name: value(p, "LRNParameter", name) for name in ("local_size", "alpha", "beta", "k")}
    config["region"] = str(value(p, "LRNParameter", "norm_region"))
    if config["local_size"] < 1 or config["local_size"] % 2 == 0:
        raise ShapeError(f"local_size must be a positive odd number, got {config['local_size']}", "local_size")
    return LayerShapes([bottoms[0]], config)


@_rule("BatchNorm")
def _batch_norm(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("batch_norm_param")
    if not bottoms[0]:
        raise ShapeError("expects an input with a channel axis")
    config = {name: value(p, "BatchNormParameter", name) for name in MESSAGES["BatchNormParameter"]}
    channels = bottoms[0][0]
    # Caffe's three blobs (mean, variance, moving-average factor) are statistics, not learned weights.
    return LayerShapes([bottoms[0]], config, buffers=[(channels,), (channels,), (1,)])


@_rule("Scale")
def _scale(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    # Only the learned form: Caffe's two-bottom Scale needs axis 0 (a per-image factor), which our
    # batch-free shapes cannot express.
    p = layer.first("scale_param") or Message()
    axis = _axis(value(p, "ScaleParameter", "axis"), len(bottoms[0]))
    num_axes = value(p, "ScaleParameter", "num_axes")
    end = len(bottoms[0]) if num_axes == -1 else axis + num_axes
    if num_axes < -1 or end > len(bottoms[0]):
        raise ShapeError(f"num_axes {num_axes} does not fit input {fmt(bottoms[0])}", "num_axes")
    shape = bottoms[0][axis:end]
    params = [ParamBlob(shape, filler(p.first("filler"), {"type": "constant", "value": 1.0}))]
    bias = value(p, "ScaleParameter", "bias_term")
    if bias:
        params.append(ParamBlob(shape, filler(p.first("bias_filler"))))
    return LayerShapes([bottoms[0]], {"axis": axis, "shape": shape, "bias": bias}, params)


@_rule("PReLU")
def _prelu(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("prelu_param")
    if not bottoms[0]:
        raise ShapeError("expects an input with a channel axis")
    shared = value(p, "PReLUParameter", "channel_shared")
    init = filler((p or Message()).first("filler"), {"type": "constant", "value": 0.25})
    return LayerShapes([bottoms[0]], {"shared": shared}, [ParamBlob((1,) if shared else (bottoms[0][0],), init)])


@_rule("Concat", bottoms=(1, _MANY))
def _concat(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("concat_param")
    legacy = value(p, "ConcatParameter", "concat_dim")
    axis = _axis(legacy if legacy is not None else value(p, "ConcatParameter", "axis"), len(bottoms[0]))
    first = bottoms[0]
    for other in bottoms[1:]:
        if len(other) != len(first) or other[:axis] + other[axis + 1 :] != first[:axis] + first[axis + 1 :]:
            listed = ", ".join(fmt(b) for b in bottoms)
            raise ShapeError(f"inputs must match in every axis but axis {axis + 1}, got {listed}")
    total = sum(b[axis] for b in bottoms)
    return LayerShapes([(*first[:axis], total, *first[axis + 1 :])], {"axis": axis})


@_rule("Eltwise", bottoms=(2, _MANY))
def _eltwise(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("eltwise_param")
    if any(b != bottoms[0] for b in bottoms):
        raise ShapeError(f"inputs must have equal shapes, got {', '.join(fmt(b) for b in bottoms)}")
    operation = str(value(p, "EltwiseParameter", "operation"))
    coeff = values(p, "coeff")
    if coeff and operation != "SUM":
        raise ShapeError("coeff is only used with operation SUM", "coeff")
    if coeff and len(coeff) != len(bottoms):
        raise ShapeError(f"coeff needs one value per input ({len(bottoms)}), got {len(coeff)}", "coeff")
    return LayerShapes([bottoms[0]], {"operation": operation, "coeff": coeff or [1.0] * len(bottoms)})


@_rule("Flatten")
def _flatten(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("flatten_param")
    start = _axis(value(p, "FlattenParameter", "axis"), len(bottoms[0]))
    end = _axis(value(p, "FlattenParameter", "end_axis"), len(bottoms[0]), "end_axis")
    if end < start:
        raise ShapeError("end_axis comes before axis", "end_axis")
    shape = bottoms[0]
    top = (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])
    return LayerShapes([top], {"axis": start, "end_axis": end})


def _classes(logits: Shape) -> int:
    """Class count of a classification logits blob: (K,) or (K, 1, 1), the one label per image DIGITS uses."""
    if not logits or math.prod(logits[1:]) != 1:
        raise ShapeError(f"expects one prediction per image (K or Kx1x1), got {fmt(logits)}")
    return logits[0]


@_rule("SoftmaxWithLoss", bottoms=(2, 2), tops=(0, 2))
def _softmax_loss(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    """Caffe's softmax over `axis` (1: the channels); every other position holds one label: one per image for
    K or Kx1x1 logits, one per pixel for KxHxW (a segmentation network)."""
    weights = values(layer, "loss_weight")
    p = layer.first("loss_param")
    logits, label = bottoms
    if not logits:
        raise ShapeError("expects predictions with a class axis, got a scalar")
    axis = _axis(value(layer.first("softmax_param"), "SoftmaxParameter", "axis"), len(logits))
    positions = math.prod(logits[:axis]) * math.prod(logits[axis + 1 :])
    if math.prod(label) != positions:
        raise ShapeError(
            f"the label N x {fmt(label)} must hold one value per prediction position ({positions} per image) "
            f"of the predictions N x {fmt(logits)}"
        )
    config = {
        "classes": logits[axis],
        "spatial": positions > 1,
        "loss_weight": float(weights[0]) if weights else 1.0,
        "ignore_label": value(p, "LossParameter", "ignore_label"),
        "normalization": str(value(p, "LossParameter", "normalization")),
    }
    return LayerShapes([()] * len(layer.get("top", [])), config)


@_rule("Accuracy", bottoms=(2, 2), tops=(1, 2))
def _accuracy(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("accuracy_param")
    top_k = value(p, "AccuracyParameter", "top_k")
    logits, label = bottoms
    if not logits:
        raise ShapeError("expects predictions with a class axis, got a scalar")
    # As accuracy_layer.cpp: classes along `axis`, one label per other position (per pixel for KxHxW).
    axis = _axis(value(p, "AccuracyParameter", "axis"), len(logits))
    classes = logits[axis]
    positions = math.prod(logits[:axis]) * math.prod(logits[axis + 1 :])
    if math.prod(label) != positions:
        raise ShapeError(f"expects one label per prediction position ({positions} per image), got N x {fmt(label)}")
    if not 1 <= top_k <= classes:
        raise ShapeError(f"top_k {top_k} must be between 1 and the number of classes ({classes})", "top_k")
    config = {"top_k": top_k, "classes": classes, "ignore_label": value(p, "AccuracyParameter", "ignore_label")}
    return LayerShapes([()] * len(layer.get("top", [])), config)
