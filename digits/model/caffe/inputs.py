"""The inputs of one stage of a Caffe network: its data layers, the shapes they declare, and errors that
point at a layer's line."""

from __future__ import annotations

from digits.model.caffe.errors import NetworkError
from digits.model.caffe.schema import value, values
from digits.model.caffe.shapes import SOURCE_TYPES, Shape, fmt
from digits.model.caffe.textformat import Message

DIGITS_LABEL_BLOB = "label"  # the label top of the data layer DIGITS adds to a network that has none


def layer_error(layer: Message, message: str, field_name: str | None = None) -> NetworkError:
    """A NetworkError for `layer`, pointing at `field_name` (in the layer or its *_param) when it is written."""
    line, column = layer.line, layer.column
    if field_name and field_name in layer:
        line, column = layer.where(field_name)
    elif field_name:
        for sub in layer.values():
            for item in sub:
                if isinstance(item, Message) and field_name in item:
                    line, column = item.where(field_name)
    return NetworkError(message, layer=layer.first("name"), layer_type=layer.first("type"), line=line, column=column)


def declared_shapes(layer: Message) -> list[Shape]:
    """The batch-free shapes an Input or MemoryData layer declares for its tops ([] when it declares none)."""
    tops = values(layer, "top")
    if layer.first("type") == "MemoryData":
        p = layer.first("memory_data_param")
        dims = [value(p, "MemoryDataParameter", name) for name in ("channels", "height", "width")]
        return [tuple(dims), *([()] * (len(tops) - 1))] if None not in dims else []
    if layer.first("type") != "Input":
        return []
    shapes = values(layer.first("input_param"), "shape")
    if not shapes:
        return []
    if len(shapes) not in (1, len(tops)):
        raise layer_error(layer, f"give 1 shape or one per top ({len(tops)}), got {len(shapes)}", "shape")
    out = []
    for i in range(len(tops)):
        dims = values(shapes[0 if len(shapes) == 1 else i], "dim")
        if not dims or any(d < 0 for d in dims):
            raise layer_error(
                layer, f"an input shape needs a batch dimension and sizes of at least 0, got {dims}", "shape"
            )
        out.append(tuple(dims[1:]))
    return out


def find_source(layers: list[Message], net: Message) -> tuple[Message | None, str, str | None]:
    sources = [layer for layer in layers if layer.first("type") in SOURCE_TYPES]
    if sources:
        tops = values(sources[0], "top")
        if not tops:
            raise layer_error(sources[0], "data layer has no top")
        # A data layer's second top is the label; an Input layer's other tops are inputs like the first.
        label = tops[1] if len(tops) > 1 and sources[0].first("type") != "Input" else None
        return sources[0], tops[0], label
    # No data layer: DIGITS adds one whose tops are "data" and "label", so a loss on "label" is the label.
    return None, (values(net, "input") or ["data"])[0], DIGITS_LABEL_BLOB


def extra_source_shapes(layer: Message, input_shape: Shape, notices: list[str], trainable: bool) -> list[Shape]:
    """Top shapes of a data layer after the first in one stage (Caffe allows several)."""
    tops = values(layer, "top")
    declared = declared_shapes(layer)
    if declared:
        return declared
    if trainable:
        raise layer_error(
            layer,
            "is a second data layer in this stage: it reads a database of its own, which training on a "
            "DIGITS dataset does not feed (Visualize draws it)",
        )
    # DIGITS' segmentation networks read labels from a second database of one-channel images the size of
    # the input: draw it so, and say so.
    label = (1, *input_shape[1:]) if len(input_shape) == 3 else input_shape
    notices.append(
        f"data layer '{layer.first('name')}' reads a second database; its top '{tops[0]}' is drawn as "
        f"{fmt(label)} (one label per pixel, as DIGITS' segmentation datasets store them)"
    )
    return [label, *([()] * (len(tops) - 1))]
