"""Shape rules of the layers that move values around without learning (Crop, Slice, Reshape, Silence),
DummyData, and Embed, with Caffe's arithmetic (crop_layer.cpp, slice_layer.cpp, reshape_layer.cpp,
dummy_data_layer.cpp, embed_layer.cpp).

Shapes here exclude the batch axis, as everywhere in the analysis; Caffe's axis numbers count it. A rule
that would cut or reshape the batch axis says so, since a batch-free shape cannot express it.
"""

from __future__ import annotations

import math

from digits.model.caffe.schema import value, values
from digits.model.caffe.shapes import _MANY, LayerShapes, ParamBlob, Shape, ShapeError, _rule, filler, fmt
from digits.model.caffe.textformat import Message


def _caffe_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Caffe's CanonicalAxisIndex over the full shape (batch axis 0) of an input with `ndim` batch-free axes."""
    full = ndim + 1
    index = axis + full if axis < 0 else axis
    if not 0 <= index < full:
        raise ShapeError(f"{name} {axis} is out of range for an input with {full} axes", name)
    return index


@_rule("Crop", bottoms=(2, 2))
def _crop(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    """Axes from `axis` on take the second bottom's size, starting at one shared offset or one per axis."""
    p = layer.first("crop_param")
    data, like = bottoms
    if len(data) != len(like):
        raise ShapeError(f"inputs must have the same number of axes, got N x {fmt(data)} and N x {fmt(like)}")
    axis = _caffe_axis(value(p, "CropParameter", "axis"), len(data))
    if axis == 0:
        raise ShapeError("axis 0 would crop the batch; crop from axis 1 on", "axis")
    offsets = values(p, "offset")
    full = len(data) + 1
    if len(offsets) > 1 and axis + len(offsets) != full:
        raise ShapeError(
            f"give one offset, or one per axis from axis {axis} on ({full - axis}), got {len(offsets)}", "offset"
        )
    top, starts = list(data), [0] * len(data)
    for i in range(axis, full):
        start = offsets[0] if len(offsets) == 1 else offsets[i - axis] if offsets else 0
        if data[i - 1] - start < like[i - 1]:
            raise ShapeError(
                f"the crop of axis {i} is out of bounds: size {like[i - 1]} at offset {start} from N x {fmt(data)}",
                "offset" if offsets else "axis",
            )
        top[i - 1], starts[i - 1] = like[i - 1], start
    return LayerShapes([tuple(top)], {"offsets": starts, "axis": axis - 1})


@_rule("Slice", tops=(1, _MANY))
def _slice(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("slice_param")
    bottom = bottoms[0]
    if p is not None and p.get("axis") and p.get("slice_dim"):
        raise ShapeError("give either axis or slice_dim, not both", "slice_dim")
    if p is not None and p.get("slice_dim"):
        axis = value(p, "SliceParameter", "slice_dim")
        if not 0 <= axis <= len(bottom):
            raise ShapeError(f"slice_dim {axis} is out of range for an input with {len(bottom) + 1} axes", "slice_dim")
    else:
        axis = _caffe_axis(value(p, "SliceParameter", "axis"), len(bottom))
    if axis == 0:
        raise ShapeError("slicing axis 0 would split the batch; slice from axis 1 on", "axis")
    length = bottom[axis - 1]
    points = values(p, "slice_point")
    count = len(layer.get("top", []))
    if points:
        if len(points) != count - 1:
            raise ShapeError(f"{count} tops need {count - 1} slice points, got {len(points)}", "slice_point")
        if count > length:
            raise ShapeError(f"{count} tops cannot slice an axis of {length}", "slice_point")
        sizes, prev = [], 0
        for point in points:
            if point <= prev:
                raise ShapeError(f"slice points must increase from above 0, got {', '.join(map(str, points))}")
            sizes.append(point - prev)
            prev = point
        sizes.append(length - prev)
        if sizes[-1] <= 0:
            raise ShapeError(f"slice point {points[-1]} is not inside the axis of {length}", "slice_point")
    else:
        if length % count:
            raise ShapeError(f"{count} tops must evenly divide the sliced axis ({length})", "slice_point")
        sizes = [length // count] * count
    tops = [(*bottom[: axis - 1], size, *bottom[axis:]) for size in sizes]
    return LayerShapes(tops, {"axis": axis - 1, "sizes": sizes})


def _reshaped(bottom: Shape, dims: list[int], start: int, end: int, copy: list[int], inferred: int | None) -> Shape:
    """ReshapeLayer::Reshape on a full shape (batch included)."""
    top = [*bottom[:start], *dims, *bottom[end:]]
    for i in copy:
        if start + i >= len(bottom):
            raise ShapeError("the new shape has a 0 with no input axis to copy", "shape")
        top[start + i] = bottom[start + i]
    if inferred is not None:
        explicit = math.prod(d for d in dims if d > 0) * math.prod(bottom[:start]) * math.prod(bottom[end:])
        explicit *= math.prod(top[start + i] for i in copy)
        if explicit == 0 or math.prod(bottom) % explicit:
            raise ShapeError(
                f"input count {math.prod(bottom[1:])} per image is not divisible by the given dimensions", "shape"
            )
        top[start + inferred] = math.prod(bottom) // explicit
    if math.prod(top) != math.prod(bottom):
        raise ShapeError(f"output count {math.prod(top)} must match the input count {math.prod(bottom)}", "shape")
    return tuple(top)


@_rule("Reshape")
def _reshape(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("reshape_param") or Message()
    dims = values(p.first("shape"), "dim")
    copy = [i for i, d in enumerate(dims) if d == 0]
    wild = [i for i, d in enumerate(dims) if d == -1]
    if len(wild) > 1:
        raise ShapeError("the new shape may hold at most one -1", "shape")
    if any(d < -1 for d in dims):
        raise ShapeError(f"dimensions must be positive, 0 (copy) or -1 (infer), got {dims}", "shape")
    full = len(bottoms[0]) + 1
    axis = value(p, "ReshapeParameter", "axis")
    start = axis if axis >= 0 else full + axis + 1
    if not 0 <= start <= full:
        raise ShapeError(f"axis {axis} is out of range for an input with {full} axes", "axis")
    num_axes = value(p, "ReshapeParameter", "num_axes")
    if num_axes < -1:
        raise ShapeError("num_axes must be at least 0, or -1 for all", "num_axes")
    end = full if num_axes == -1 else start + num_axes
    if end > full:
        raise ShapeError(f"axis + num_axes = {end} is out of range for an input with {full} axes", "num_axes")
    # The batch is not part of our shapes: reshape for two batch sizes and keep the result only if the batch
    # stays the first axis and nothing else depends on it (as for `dim: 0 dim: -1`).
    one = _reshaped((1, *bottoms[0]), dims, start, end, copy, wild[0] if wild else None)
    two = _reshaped((2, *bottoms[0]), dims, start, end, copy, wild[0] if wild else None)
    if two[0] != 2 * one[0] or two[1:] != one[1:] or one[0] != 1:
        raise ShapeError(f"this reshape changes the batch axis (N x {fmt(bottoms[0])} to {list(one)} for N = 1)")
    return LayerShapes([one[1:]], {"shape": one[1:]})


@_rule("Silence", bottoms=(1, _MANY), tops=(0, 0))
def _silence(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    return LayerShapes([])


def _blob_shape(msg: Message) -> tuple[int, ...]:
    dims = tuple(values(msg, "dim"))
    if not dims or any(d < 0 for d in dims):
        raise ShapeError(f"a shape needs dimensions of at least 0, got {list(dims)}", "shape")
    return dims


def dummy_shapes(layer: Message) -> list[tuple[int, ...]]:
    """The full shapes (batch first) of a DummyData layer's tops, from `shape` or the legacy num/channels/..."""
    p = layer.first("dummy_data_param") or Message()
    count = len(layer.get("top", []))
    shapes = [_blob_shape(s) for s in values(p, "shape")]
    legacy = [values(p, name) for name in ("num", "channels", "height", "width")]
    if shapes and any(legacy):
        raise ShapeError("give shape or num/channels/height/width, not both", "shape")
    if any(legacy):
        if any(len(x) not in (1, count) for x in legacy):
            raise ShapeError(f"num, channels, height and width each take 1 or {count} values", "num")
        shapes = [tuple(x[0 if len(x) == 1 else i] for x in legacy) for i in range(count)]
    elif len(shapes) not in (1, count):
        raise ShapeError(f"give 1 shape or one per top ({count}), got {len(shapes)}", "shape")
    elif len(shapes) == 1:
        shapes = shapes * count
    return shapes


@_rule("DummyData", bottoms=(0, 0), tops=(1, _MANY))
def _dummy_data(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("dummy_data_param") or Message()
    full = dummy_shapes(layer)
    count = len(full)
    fillers = values(p, "data_filler")
    if len(fillers) not in (0, 1, count):
        raise ShapeError(f"give 0, 1 or {count} data_filler, got {len(fillers)}", "data_filler")
    resolved = [filler(None, {"type": "constant", "value": 0.0})] * count if not fillers else []
    for i in range(count if fillers else 0):
        resolved.append(filler(fillers[0 if len(fillers) == 1 else i]))
    if any(not s for s in full):
        raise ShapeError("each shape needs a batch dimension first", "shape")
    return LayerShapes([s[1:] for s in full], {"shapes": full, "fillers": resolved})


@_rule("Embed")
def _embed(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    p = layer.first("embed_param") or Message()
    num_output = value(p, "EmbedParameter", "num_output")
    input_dim = value(p, "EmbedParameter", "input_dim")
    if not num_output or num_output < 1:
        raise ShapeError("num_output must be set and positive", "num_output")
    if not input_dim or input_dim < 1:
        raise ShapeError("input_dim (the vocabulary size) must be set and positive", "input_dim")
    params = [ParamBlob((input_dim, num_output), filler(p.first("weight_filler")))]
    bias = value(p, "EmbedParameter", "bias_term")
    if bias:
        params.append(ParamBlob((num_output,), filler(p.first("bias_filler"))))
    return LayerShapes([(*bottoms[0], num_output)], {"input_dim": input_dim, "bias": bias}, params)
