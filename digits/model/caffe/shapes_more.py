"""Shape rules of the rest of BVLC Caffe 1.0's layers, with the checks and arithmetic of their Reshape and
LayerSetUp: the neurons AbsVal, BNLL, ELU, Exp, Log and Threshold; ArgMax, BatchReindex, Bias, Filter,
Im2col, MVN, Parameter, Reduction, SPP and Tile; and the losses HingeLoss, InfogainLoss and
MultinomialLogisticLoss (argmax_layer.cpp, bias_layer.cpp, ..., tile_layer.cpp).

Shapes exclude the batch axis, as everywhere in the analysis; Caffe's axis numbers count it. A layer whose
top's batch is not its bottom's (BatchReindex, Filter, Parameter) keeps the other axes, which is what a
batch-free shape can say; settings that would work on the batch axis itself are refused with the reason.
"""

from __future__ import annotations

import math

from digits.model.caffe.schema import value, values
from digits.model.caffe.shapes import (
    _MANY,
    RULES,
    LayerShapes,
    ParamBlob,
    Shape,
    ShapeError,
    _rule,
    filler,
    fmt,
    pooled_size,
)
from digits.model.caffe.shapes_layout import _caffe_axis
from digits.model.caffe.textformat import Message

# Neurons: one bottom, a top of its shape, settings from their *_param.
_NEURON_PARAMS = {
    "AbsVal": (None, ()),
    "BNLL": (None, ()),
    "ELU": (("elu_param", "ELUParameter"), ("alpha",)),
    "Exp": (("exp_param", "ExpParameter"), ("base", "scale", "shift")),
    "Log": (("log_param", "LogParameter"), ("base", "scale", "shift")),
    "Threshold": (("threshold_param", "ThresholdParameter"), ("threshold",)),
}


@_rule(*_NEURON_PARAMS)
def _neuron(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    kind = layer.first("type")
    param, names = _NEURON_PARAMS[kind]
    config = {name: value(layer.first(param[0]), param[1], name) for name in names} if param else {}
    if kind in ("Exp", "Log") and not (config["base"] == -1 or config["base"] > 0):
        raise ShapeError(f"base must be positive, or -1 for e; got {config['base']}", "base")
    return LayerShapes([bottoms[0]], config)


@_rule("ArgMax")
def _argmax(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("argmax_param")
    bottom = bottoms[0]
    top_k = value(p, "ArgMaxParameter", "top_k")
    out_max_val = value(p, "ArgMaxParameter", "out_max_val")
    if top_k < 1:
        raise ShapeError(f"top_k must be at least 1, got {top_k}", "top_k")
    raw_axis = value(p, "ArgMaxParameter", "axis")
    if raw_axis is None:
        per_image = math.prod(bottom)
        if top_k > per_image:
            raise ShapeError(f"top_k {top_k} is more than the {per_image} values per image", "top_k")
        # Caffe: N x (2 with out_max_val, else 1) x top_k, padded with 1s to the bottom's number of axes.
        top = (2 if out_max_val else 1, top_k, *([1] * (len(bottom) + 1 - 3)))
        return LayerShapes([top], {"axis": None, "top_k": top_k, "out_max_val": out_max_val})
    axis = _caffe_axis(raw_axis, len(bottom))
    if axis == 0:
        raise ShapeError("axis 0 would rank the batch; give an axis from 1 on", "axis")
    if top_k > bottom[axis - 1]:
        raise ShapeError(f"top_k {top_k} is more than the size of axis {axis} ({bottom[axis - 1]})", "top_k")
    top = (*bottom[: axis - 1], top_k, *bottom[axis:])
    return LayerShapes([top], {"axis": axis - 1, "top_k": top_k, "out_max_val": out_max_val})


@_rule("BatchReindex", bottoms=(2, 2))
def _batch_reindex(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    data, permutation = bottoms
    if permutation:
        raise ShapeError(f"the second input holds one index per output image (N), got N x {fmt(permutation)}")
    return LayerShapes([data])


def _span(bottom: Shape, axis: int, num_axes: int, what: str) -> Shape:
    """bottom's axes [axis, axis + num_axes) (-1: to the end), axis counting the batch (>= 1 here)."""
    if num_axes < -1:
        raise ShapeError("num_axes must be at least 0, or -1 for all", "num_axes")
    end = len(bottom) + 1 if num_axes == -1 else axis + num_axes
    if end > len(bottom) + 1:
        raise ShapeError(f"the {what} extends past the input N x {fmt(bottom)} from axis {axis}", "num_axes")
    return bottom[axis - 1 : end - 1]


@_rule("Bias", bottoms=(1, 2))
def _bias(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("bias_param") or Message()
    bottom = bottoms[0]
    if len(bottoms) == 2:
        bias = bottoms[1]
        axis = value(p, "BiasParameter", "axis")
        if _caffe_axis(axis, len(bottom)) != 0:
            raise ShapeError(
                "a bias given as a second input is applied here from axis 0 (one bias per image, "
                "the same batch); give axis: 0",
                "axis",
            )
        if bottom[: len(bias)] != bias:
            raise ShapeError(f"the bias N x {fmt(bias)} must match the input N x {fmt(bottom)} from axis 0")
        return LayerShapes([bottom], {"axis": -1, "shape": bias, "bottom": True})
    axis = _caffe_axis(value(p, "BiasParameter", "axis"), len(bottom))
    if axis == 0:
        raise ShapeError("a learned bias from axis 0 would depend on the batch size; give an axis from 1 on", "axis")
    shape = _span(bottom, axis, value(p, "BiasParameter", "num_axes"), "bias")
    params = [ParamBlob(shape, filler(p.first("filler")))]
    return LayerShapes([bottom], {"axis": axis - 1, "shape": shape, "bottom": False}, params)


@_rule("Filter", bottoms=(2, _MANY), tops=(1, _MANY))
def _filter(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    *data, selector = bottoms
    if len(values(layer, "top")) != len(data):
        raise ShapeError(f"needs one top per filtered input ({len(data)}), the last input being the selector")
    if any(d != 1 for d in selector):
        raise ShapeError(f"the selector (last input) must be N x 1 ..., got N x {fmt(selector)}")
    return LayerShapes(list(data))


def _labels(label: Shape, what: str = "label") -> None:
    """Caffe's CHECKs that a label blob is N x 1 x 1 x 1 (channels, height, width all 1)."""
    if any(d != 1 for d in label):
        raise ShapeError(f"expects one {what} per image (N x 1 x 1 x 1), got N x {fmt(label)}")


def _loss_config(layer: Message) -> dict:
    weights = values(layer, "loss_weight")
    return {"loss_weight": float(weights[0]) if weights else 1.0}


@_rule("HingeLoss", bottoms=(2, 2), tops=(0, 1))
def _hinge(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    scores, label = bottoms
    if math.prod(label) != 1:
        raise ShapeError(f"expects one label per image, got N x {fmt(label)}")
    norm = str(value(layer.first("hinge_loss_param"), "HingeLossParameter", "norm"))
    if norm not in ("L1", "L2"):
        raise ShapeError(f"norm must be L1 or L2, got {norm or 0}", "norm")
    return LayerShapes([()] * len(values(layer, "top")), {**_loss_config(layer), "norm": norm})


@_rule("MultinomialLogisticLoss", bottoms=(2, 2), tops=(0, 1))
def _multinomial(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    _labels(bottoms[1])
    return LayerShapes([()] * len(values(layer, "top")), _loss_config(layer))


@_rule("InfogainLoss", bottoms=(2, 3), tops=(0, 1))
def _infogain(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    _labels(bottoms[1])
    dim = math.prod(bottoms[0])
    source = value(layer.first("infogain_loss_param"), "InfogainLossParameter", "source")
    if len(bottoms) == 3:
        if bottoms[2] != (1, dim, dim):
            raise ShapeError(
                f"the infogain matrix (third input) must be 1 x 1 x {dim} x {dim} for {dim} values per image, "
                f"got N x {fmt(bottoms[2])}"
            )
    elif not source:
        raise ShapeError("the infogain matrix needs a source (a .binaryproto) or a third input", "source")
    config = {**_loss_config(layer), "source": source if len(bottoms) == 2 else None, "dim": dim}
    return LayerShapes([()] * len(values(layer, "top")), config)


@_rule("MVN")
def _mvn(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("mvn_param")
    names = ("normalize_variance", "across_channels", "eps")
    bottom = bottoms[0]
    if len(bottom) > 3:
        raise ShapeError(f"works on inputs of at most 4 axes (N x C x H x W), got N x {fmt(bottom)}")
    # Caffe reshapes the top by the legacy num/channels/height/width: a 2-D input gives N x C x 1 x 1.
    top = (*bottom, *[1] * (3 - len(bottom)))
    return LayerShapes([top], {name: value(p, "MVNParameter", name) for name in names} | {"shape": top})


@_rule("Parameter", bottoms=(0, 0))
def _parameter(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("parameter_param") or Message()
    shape = tuple(values(p.first("shape"), "dim"))
    if not shape or any(d < 1 for d in shape):
        raise ShapeError(f"shape needs at least one dimension, each positive; got {list(shape)}", "shape")
    # The blob is the top, whole: its first axis stands where a batch axis would.
    return LayerShapes([shape[1:]], {"shape": shape}, [ParamBlob(shape, filler(None))])


@_rule("Reduction")
def _reduction(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("reduction_param")
    operation = str(value(p, "ReductionParameter", "operation"))
    if operation not in ("SUM", "ASUM", "SUMSQ", "MEAN"):
        raise ShapeError(f"operation must be SUM, ASUM, SUMSQ or MEAN, got {operation or 0}", "operation")
    axis = _caffe_axis(value(p, "ReductionParameter", "axis"), len(bottoms[0]))
    # Everything from `axis` on is reduced: axis 0 leaves one number for the whole batch.
    top = bottoms[0][: max(axis - 1, 0)]
    config = {"operation": operation, "axis": axis, "coeff": value(p, "ReductionParameter", "coeff")}
    return LayerShapes([top], config)


def spp_levels(height: int, width: int, pyramid_height: int) -> list[dict]:
    """SPPLayer::GetPoolingParam for each level: kernel, stride (= kernel) and pad covering the whole image."""
    levels = []
    for level in range(pyramid_height):
        bins = 2**level
        kernel = (-(-height // bins), -(-width // bins))
        pad = ((kernel[0] * bins - height + 1) // 2, (kernel[1] * bins - width + 1) // 2)
        levels.append({"kernel": kernel, "stride": kernel, "pad": pad})
    return levels


@_rule("SPP")
def _spp(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("spp_param")
    if len(bottoms[0]) != 3:
        raise ShapeError(f"expects a 4-D input (N x C x H x W), got N x {fmt(bottoms[0])}")
    channels, height, width = bottoms[0]
    pyramid_height = value(p, "SPPParameter", "pyramid_height")
    if pyramid_height is None or pyramid_height < 1:
        raise ShapeError("pyramid_height must be set and at least 1", "pyramid_height")
    pool = str(value(p, "SPPParameter", "pool"))
    levels = spp_levels(height, width, pyramid_height)
    sizes = []
    for i, level in enumerate(levels):
        kernel, pad = level["kernel"], level["pad"]
        if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
            raise ShapeError(
                f"level {i} pools {2**i} bins over {height}x{width}: padding {pad} would reach the kernel {kernel} "
                "(Caffe refuses it); use a larger input or a lower pyramid_height",
                "pyramid_height",
            )
        out = tuple(
            pooled_size(n, k, k, pd, True, any(pad)) for n, k, pd in zip((height, width), kernel, pad, strict=True)
        )
        sizes.append(out)
    top = (channels, *sizes[0]) if pyramid_height == 1 else (sum(channels * h * w for h, w in sizes),)
    return LayerShapes([top], {"pool": pool, "levels": levels})


@_rule("Tile")
def _tile(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("tile_param")
    axis = _caffe_axis(value(p, "TileParameter", "axis"), len(bottoms[0]))
    tiles = value(p, "TileParameter", "tiles")
    if tiles is None or tiles < 1:
        raise ShapeError("tiles must be set and positive", "tiles")
    if axis == 0:
        raise ShapeError("axis 0 would tile the batch; tile from axis 1 on", "axis")
    bottom = bottoms[0]
    top = (*bottom[: axis - 1], bottom[axis - 1] * tiles, *bottom[axis:])
    return LayerShapes([top], {"axis": axis - 1, "tiles": tiles})


@_rule("Im2col")
def _im2col(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    """Im2colLayer reads convolution_param (num_output unused): C*kh*kw columns per output position."""
    p = layer.first("convolution_param") or Message()
    channels = bottoms[0][0] if len(bottoms[0]) == 3 else None
    probe = Message()
    for name, items in p.items():
        if name not in ("num_output", "group", "bias_term"):
            for item in items:
                probe.add(name, item)
    probe.add("num_output", channels or 1)
    shadow = Message(layer.line, layer.column)
    shadow.add("type", "Convolution")
    shadow.add("convolution_param", probe)
    conv = RULES["Convolution"].infer(shadow, bottoms)
    _, height, width = conv.tops[0]
    config = {key: conv.config[key] for key in ("kernel", "stride", "pad", "dilation")}
    return LayerShapes([(channels * conv.config["kernel"][0] * conv.config["kernel"][1], height, width)], config)


@_rule("LSTM", "RNN", bottoms=(2, 3))
def _recurrent(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    """recurrent_layer.cpp: x is T x N x ... (time steps first, where other layers have the batch), cont is
    T x N (0 where a sequence starts), an optional static input N x ...; the top is T x N x num_output.
    Blobs in Caffe's order: LSTM W_xc, b_c, [W_xc_static], W_hc; RNN W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o."""
    p = layer.first("recurrent_param") or Message()
    num_output = value(p, "RecurrentParameter", "num_output")
    if num_output < 1:
        raise ShapeError("num_output must be positive", "num_output")
    if value(p, "RecurrentParameter", "expose_hidden"):
        raise ShapeError(
            "expose_hidden (the hidden state as extra inputs and outputs) is not supported", "expose_hidden"
        )
    x, cont = bottoms[:2]
    if not x:
        raise ShapeError(f"expects an input of T x N x ... (time steps first), got T x {fmt(x)}")
    if cont != x[:1]:
        raise ShapeError(f"the sequence-continuation input must be T x {x[0]} (T x N), got T x {fmt(cont)}")
    lstm = layer.first("type") == "LSTM"
    gates = 4 * num_output if lstm else num_output
    weights, bias = filler(p.first("weight_filler")), filler(p.first("bias_filler"))
    params = [ParamBlob((gates, math.prod(x[1:])), weights), ParamBlob((gates,), bias)]
    if len(bottoms) == 3:
        params.append(ParamBlob((gates, math.prod(bottoms[2])), weights))
    params.append(ParamBlob((gates, num_output), weights))
    if not lstm:
        params += [ParamBlob((num_output, num_output), weights), ParamBlob((num_output,), bias)]
    config = {"num_output": num_output, "lstm": lstm, "static": len(bottoms) == 3}
    return LayerShapes([(x[0], num_output)], config, params)


@_rule("LSTMUnit", bottoms=(3, 3), tops=(2, 2))
def _lstm_unit(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    """lstm_unit_layer.cpp, one time step: c_prev 1 x N x H, gate inputs 1 x N x 4H, cont 1 x N; tops c and h."""
    c_prev, gates, cont = bottoms
    if len(c_prev) != 2:
        raise ShapeError(f"expects the previous cell state as 1 x N x H, got 1 x {fmt(c_prev)}")
    batch, hidden = c_prev
    if gates != (batch, 4 * hidden):
        raise ShapeError(f"expects gate inputs 1 x {batch} x {4 * hidden} (4 x H), got 1 x {fmt(gates)}")
    if cont != (batch,):
        raise ShapeError(f"expects the sequence-continuation input as 1 x {batch}, got 1 x {fmt(cont)}")
    return LayerShapes([c_prev, c_prev], {"hidden": hidden})
