"""The inputs of one stage of a Caffe network: its data layers, the shapes they declare, and errors that
point at a layer's line."""

from __future__ import annotations

from digits.model.caffe.errors import NetworkError
from digits.model.caffe.schema import value, values
from digits.model.caffe.shapes import SOURCE_TYPES, Shape, fmt
from digits.model.caffe.textformat import Message

DIGITS_LABEL_BLOB = "label"  # the label top of the data layer DIGITS adds to a network that has none
# Layer types Caffe has that DIGITS refuses, and why (the web answers these with a 400).
REFUSED = {
    "Python": "Python layers run code from a module named in the network, which DIGITS does not import: "
    "a prototxt is data here, never code",
    "WindowData": "WindowData reads image windows listed in a detection window file (R-CNN), which DIGITS "
    "datasets do not have; use a Data or Input layer",
    "HDF5Output": "HDF5Output writes blobs to an HDF5 file named in the network, and a network here does not "
    "write files; a trained model's outputs come from Classify or the model's downloads",
}


class RefusedLayerError(NetworkError):
    """A layer type DIGITS will not build (Python, WindowData): the request is refused, not drawn."""


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


def _image_data_shape(layer: Message) -> Shape | None:
    """What Caffe's ImageData layer makes of its images: 3 channels (1 with is_color false), crop_size square
    when the transform crops, else new_height x new_width when both are set; None when the images decide."""
    p, t = layer.first("image_data_param"), layer.first("transform_param")
    channels = 3 if value(p, "ImageDataParameter", "is_color") else 1
    crop = value(t, "TransformationParameter", "crop_size") or 0
    height, width = (value(p, "ImageDataParameter", name) or 0 for name in ("new_height", "new_width"))
    if crop:
        return (channels, crop, crop)
    return (channels, height, width) if height and width else None


def refuse_if_refused(layer: Message) -> None:
    """Raise RefusedLayerError, with the reason, for a layer type DIGITS will not build."""
    if (kind := layer.first("type")) in REFUSED:
        err = layer_error(layer, REFUSED[kind], "type")
        raise RefusedLayerError(err.message, layer=err.layer, layer_type=kind, line=err.line, column=err.column)


def declared_shapes(layer: Message) -> list[Shape]:
    """The batch-free shapes an Input, MemoryData or ImageData layer declares for its tops ([] when it declares
    none)."""
    tops = values(layer, "top")
    if layer.first("type") == "ImageData":
        image = _image_data_shape(layer)
        return [image, *([()] * (len(tops) - 1))] if image else []
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


def undeclared_input_message(source: Message | None) -> str:
    """Why a stage has no input shape: an HDF5Data source's shapes live in its HDF5 files; else the general
    request."""
    if source is not None and source.first("type") == "HDF5Data":
        return (
            f"HDF5Data layer '{source.first('name')}' takes its blobs' shapes from the HDF5 files its source "
            "lists, which the network does not carry: give the input shape (channels, height, width)"
        )
    return "the network declares no input shape; give one (channels, height, width)"


def hdf5_notice(source: Message | None, declared: list[Shape], given: Shape | None, used: Shape | None) -> str:
    """The notice for an HDF5Data source drawn with a default input ('' when it does not apply)."""
    if source is None or source.first("type") != "HDF5Data" or declared or given is not None or used is None:
        return ""
    return (
        f"HDF5Data layer '{source.first('name')}' takes its shapes from the HDF5 files its source lists; it is "
        f"drawn with the input {fmt(used)}: give the input's shape to draw the network as it will run"
    )
