"""The subset of caffe.proto that DIGITS networks use, as plain Python data, and a validator for parsed text.

Field defaults are Caffe's own (from caffe.proto), so code reading a layer gets the value Caffe would use
when the user leaves a field out. Enum values are listed in their proto number order, which lets a
numeric enum value in the text (legal protobuf) map to its name.
"""

from __future__ import annotations

from digits.model.caffe.errors import SchemaError
from digits.model.caffe.schema_fields import _ENGINE, _FILLERS, Field, _bool, _enum, _float, _int, _many, _msg, _str
from digits.model.caffe.schema_more import MORE_LAYER_PARAMS, MORE_MESSAGES
from digits.model.caffe.textformat import Identifier, Message

__all__ = ["MESSAGES", "Field", "SchemaError", "default", "validate", "value", "values"]


MESSAGES: dict[str, dict[str, Field]] = {
    "NetParameter": {
        "name": _str(""),
        "input": _many(_str()),
        "input_shape": _many(_msg("BlobShape")),
        "input_dim": _many(_int()),
        "force_backward": _bool(),
        "state": _msg("NetState"),
        "debug_info": _bool(),
        "layer": _many(_msg("LayerParameter")),
    },
    "NetState": {"phase": _enum("TRAIN TEST", "TEST"), "level": _int(0), "stage": _many(_str())},
    "NetStateRule": {
        "phase": _enum("TRAIN TEST"),
        "min_level": _int(),
        "max_level": _int(),
        "stage": _many(_str()),
        "not_stage": _many(_str()),
    },
    "BlobShape": {"dim": _many(_int())},
    "ParamSpec": {
        "name": _str(),
        "share_mode": _enum("STRICT PERMISSIVE"),
        "lr_mult": _float(1.0),
        "decay_mult": _float(1.0),
    },
    "FillerParameter": {
        "type": _str("constant"),
        "value": _float(0.0),
        "min": _float(0.0),
        "max": _float(1.0),
        "mean": _float(0.0),
        "std": _float(1.0),
        "sparse": _int(-1),
        "variance_norm": _enum("FAN_IN FAN_OUT AVERAGE"),
    },
    "LayerParameter": {
        "name": _str(""),
        "type": _str(""),
        "bottom": _many(_str()),
        "top": _many(_str()),
        "phase": _enum("TRAIN TEST"),
        "loss_weight": _many(_float()),
        "param": _many(_msg("ParamSpec")),
        "propagate_down": _many(_bool()),
        "include": _many(_msg("NetStateRule")),
        "exclude": _many(_msg("NetStateRule")),
        "transform_param": _msg("TransformationParameter"),
        "loss_param": _msg("LossParameter"),
        "accuracy_param": _msg("AccuracyParameter"),
        "batch_norm_param": _msg("BatchNormParameter"),
        "concat_param": _msg("ConcatParameter"),
        "convolution_param": _msg("ConvolutionParameter"),
        "data_param": _msg("DataParameter"),
        "dropout_param": _msg("DropoutParameter"),
        "eltwise_param": _msg("EltwiseParameter"),
        "flatten_param": _msg("FlattenParameter"),
        "hdf5_data_param": _msg("HDF5DataParameter"),
        "image_data_param": _msg("ImageDataParameter"),
        "inner_product_param": _msg("InnerProductParameter"),
        "input_param": _msg("InputParameter"),
        "lrn_param": _msg("LRNParameter"),
        "memory_data_param": _msg("MemoryDataParameter"),
        "pooling_param": _msg("PoolingParameter"),
        "power_param": _msg("PowerParameter"),
        "prelu_param": _msg("PReLUParameter"),
        "relu_param": _msg("ReLUParameter"),
        "scale_param": _msg("ScaleParameter"),
        "sigmoid_param": _msg("EngineParameter"),
        "softmax_param": _msg("SoftmaxParameter"),
        "tanh_param": _msg("EngineParameter"),
        "crop_param": _msg("CropParameter"),
        "slice_param": _msg("SliceParameter"),
        "reshape_param": _msg("ReshapeParameter"),
        "dummy_data_param": _msg("DummyDataParameter"),
        "embed_param": _msg("EmbedParameter"),
        "contrastive_loss_param": _msg("ContrastiveLossParameter"),
        **{name: _msg(message) for name, message in MORE_LAYER_PARAMS.items()},
    },
    "TransformationParameter": {
        "scale": _float(1.0),
        "mirror": _bool(),
        "crop_size": _int(0),
        "mean_file": _str(),
        "mean_value": _many(_float()),
        "force_color": _bool(),
        "force_gray": _bool(),
    },
    "LossParameter": {
        "ignore_label": _int(),
        "normalization": _enum("FULL VALID BATCH_SIZE NONE", "VALID"),
        "normalize": _bool(),
    },
    "AccuracyParameter": {"top_k": _int(1), "axis": _int(1), "ignore_label": _int()},
    "BatchNormParameter": {
        "use_global_stats": Field("bool"),  # unset: depends on the phase
        "moving_average_fraction": _float(0.999),
        "eps": _float(1e-5),
    },
    "ConcatParameter": {"axis": _int(1), "concat_dim": _int()},
    "ConvolutionParameter": {
        "num_output": _int(),
        "bias_term": _bool(True),
        "pad": _many(_int()),
        "kernel_size": _many(_int()),
        "stride": _many(_int()),
        "dilation": _many(_int()),
        "pad_h": _int(0),
        "pad_w": _int(0),
        "kernel_h": _int(),
        "kernel_w": _int(),
        "stride_h": _int(),
        "stride_w": _int(),
        "group": _int(1),
        **_FILLERS,
        "engine": _enum(_ENGINE),
        "axis": _int(1),
        "force_nd_im2col": _bool(),
    },
    "DataParameter": {
        "source": _str(),
        "batch_size": _int(),
        "rand_skip": _int(0),
        "backend": _enum("LEVELDB LMDB"),
        "scale": _float(1.0),
        "mean_file": _str(),
        "crop_size": _int(0),
        "mirror": _bool(),
        "force_encoded_color": _bool(),
        "prefetch": _int(4),
    },
    "DropoutParameter": {"dropout_ratio": _float(0.5)},
    "EltwiseParameter": {
        "operation": _enum("PROD SUM MAX", "SUM"),
        "coeff": _many(_float()),
        "stable_prod_grad": _bool(True),
    },
    "EngineParameter": {"engine": _enum(_ENGINE)},
    "FlattenParameter": {"axis": _int(1), "end_axis": _int(-1)},
    "HDF5DataParameter": {"source": _str(), "batch_size": _int(), "shuffle": _bool()},
    "ImageDataParameter": {
        "source": _str(),
        "batch_size": _int(1),
        "rand_skip": _int(0),
        "shuffle": _bool(),
        "new_height": _int(0),
        "new_width": _int(0),
        "is_color": _bool(True),
        "scale": _float(1.0),
        "mean_file": _str(),
        "crop_size": _int(0),
        "mirror": _bool(),
        "root_folder": _str(""),
    },
    "InnerProductParameter": {
        "num_output": _int(),
        "bias_term": _bool(True),
        **_FILLERS,
        "axis": _int(1),
        "transpose": _bool(),
    },
    "InputParameter": {"shape": _many(_msg("BlobShape"))},
    "LRNParameter": {
        "local_size": _int(5),
        "alpha": _float(1.0),
        "beta": _float(0.75),
        "norm_region": _enum("ACROSS_CHANNELS WITHIN_CHANNEL"),
        "k": _float(1.0),
        "engine": _enum(_ENGINE),
    },
    "MemoryDataParameter": {"batch_size": _int(), "channels": _int(), "height": _int(), "width": _int()},
    "PoolingParameter": {
        "pool": _enum("MAX AVE STOCHASTIC"),
        "pad": _int(0),
        "pad_h": _int(0),
        "pad_w": _int(0),
        "kernel_size": _int(),
        "kernel_h": _int(),
        "kernel_w": _int(),
        "stride": _int(1),
        "stride_h": _int(),
        "stride_w": _int(),
        "engine": _enum(_ENGINE),
        "global_pooling": _bool(),
        "round_mode": _enum("CEIL FLOOR"),
    },
    "PowerParameter": {"power": _float(1.0), "scale": _float(1.0), "shift": _float(0.0)},
    "PReLUParameter": {"filler": _msg("FillerParameter"), "channel_shared": _bool()},
    "ReLUParameter": {"negative_slope": _float(0.0), "engine": _enum(_ENGINE)},
    "ScaleParameter": {
        "axis": _int(1),
        "num_axes": _int(1),
        "filler": _msg("FillerParameter"),
        "bias_term": _bool(),
        "bias_filler": _msg("FillerParameter"),
    },
    "SoftmaxParameter": {"engine": _enum(_ENGINE), "axis": _int(1)},
    "CropParameter": {"axis": _int(2), "offset": _many(_int())},
    "SliceParameter": {"axis": _int(1), "slice_point": _many(_int()), "slice_dim": _int(1)},
    "ReshapeParameter": {"shape": _msg("BlobShape"), "axis": _int(0), "num_axes": _int(-1)},
    "DummyDataParameter": {
        "data_filler": _many(_msg("FillerParameter")),
        "shape": _many(_msg("BlobShape")),
        "num": _many(_int()),
        "channels": _many(_int()),
        "height": _many(_int()),
        "width": _many(_int()),
    },
    "EmbedParameter": {"num_output": _int(), "input_dim": _int(), "bias_term": _bool(True), **_FILLERS},
    "ContrastiveLossParameter": {"margin": _float(1.0), "legacy_version": _bool()},
    **MORE_MESSAGES,
}

# caffe.proto's other layer parameter messages: accepted unread, so a layer type DIGITS does not build is
# refused by its type (with the reason) rather than by an "unknown field" on its parameters.
UNREAD_PARAMS = frozenset("hdf5_output_param python_param window_data_param batch_reindex_param filter_param".split())

_KIND_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a quoted string"}


def default(type_name: str, field: str) -> object:
    """Caffe's default for a field (None where caffe.proto has none)."""
    return MESSAGES[type_name][field].default


def value(msg: Message | None, type_name: str, field: str) -> object:
    """The field's (first) value in `msg`, or Caffe's default when it is absent."""
    if msg is not None and msg.get(field):
        return msg[field][0]
    return default(type_name, field)


def values(msg: Message | None, field: str) -> list:
    """All values of a (repeated) field; empty when absent."""
    return list(msg.get(field, [])) if msg is not None else []


def _coerce(raw: object, spec: Field) -> object:
    """The value converted to the field's kind, or raise TypeError/ValueError with the reason."""
    if spec.kind == "message":
        if not isinstance(raw, Message):
            raise TypeError("expected a message { ... }")
        return raw
    if isinstance(raw, Message):
        raise TypeError(f"expected {_KIND_NAMES.get(spec.kind, 'a value')}, not a message")
    if spec.kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, Identifier) and raw in ("t", "f"):
            return raw == "t"
    elif spec.kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif spec.kind == "float":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
    elif spec.kind == "str":
        if isinstance(raw, str) and not isinstance(raw, Identifier):
            return raw
    elif spec.kind == "enum":
        if isinstance(raw, Identifier):
            if raw not in spec.enum:
                raise ValueError(f"invalid value {raw}, expected one of {', '.join(filter(None, spec.enum))}")
            return raw
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(spec.enum) and spec.enum[raw]:
            return Identifier(spec.enum[raw])
        raise TypeError(f"expected one of {', '.join(filter(None, spec.enum))}, got {_show(raw)}")
    raise TypeError(f"expected {_KIND_NAMES[spec.kind]}, got {_show(raw)}")


def _show(raw: object) -> str:
    if isinstance(raw, Identifier) or isinstance(raw, bool):
        return str(raw).lower() if isinstance(raw, bool) else str(raw)
    return repr(raw)


def validate(msg: Message, type_name: str = "NetParameter", path: str = "", layer: str | None = None) -> None:
    """Check a parsed message against the schema, converting values to their field's kind in place.

    Raises SchemaError naming the field, its message path (e.g. "layer[2].pooling_param") and its line.
    """
    fields = MESSAGES[type_name]
    if type_name == "LayerParameter" and msg.get("name"):
        layer = str(msg["name"][0])
    for name in list(msg):
        here = f"{path}.{name}" if path else name
        line, column = msg.where(name)
        spec = fields.get(name)
        if spec is None and type_name == "LayerParameter" and name in UNREAD_PARAMS:
            continue
        if spec is None:
            if type_name == "NetParameter" and name == "layers":
                hint = (
                    "the old V1 'layers' format is not supported; "
                    "upgrade the network to 'layer' (Caffe's upgrade_net_proto_text)"
                )
                raise SchemaError(hint, field=name, path=here, line=line, column=column)
            where = f" in {path}" if path else ""
            raise SchemaError(
                f"unknown field '{name}'{where} ({type_name})",
                field=name,
                path=here,
                layer=layer,
                line=line,
                column=column,
            )
        if not spec.repeated and len(msg[name]) > 1:
            line, column = msg.where(name, 1)
            raise SchemaError(
                f"field '{name}' is not repeated but is given {len(msg[name])} times",
                field=name,
                path=here,
                layer=layer,
                line=line,
                column=column,
            )
        for i, raw in enumerate(msg[name]):
            line, column = msg.where(name, i)
            try:
                msg[name][i] = _coerce(raw, spec)
            except (TypeError, ValueError) as err:
                raise SchemaError(
                    f"field '{name}': {err}", field=name, path=here, layer=layer, line=line, column=column
                ) from None
            if spec.kind == "message":
                sub = f"{here}[{i}]" if spec.repeated else here
                validate(msg[name][i], spec.message, sub, layer)
