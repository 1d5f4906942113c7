"""Old prototxt formats upgraded on load, as Caffe's upgrade_proto.cpp does, with a notice for the person.

- V1 (`layers { type: CONVOLUTION ... }`, 2014-2015): enum types become type strings, `blobs_lr` and
  `weight_decay` become `param { lr_mult decay_mult }`, `param: "name"` and `blob_share_mode` become
  `param { name share_mode }`; data layers' scale/mean_file/crop_size/mirror move to `transform_param`
  (UpgradeNetDataTransformation); include/exclude rules carry over unchanged.
- V0 (`layers { layer { type: "conv" num_output: ... } bottom: ... }`, 2013): each V0 layer's flat fields go
  to its type's parameter message, and "padding" layers fold into the conv or pool layer they feed
  (UpgradeV0PaddingLayers), then the V1 upgrade runs.
- Net-level `input` with `input_shape` or `input_dim` becomes an `Input` layer named "input" placed first
  (UpgradeNetInput); an `input` without shapes is dropped, as Caffe drops it.
"""

from __future__ import annotations

from digits.model.caffe.errors import NetworkError
from digits.model.caffe.textformat import Identifier, Message

V1_NOTICE = "upgraded from V1 layer format (layers { type: ENUM }) to the current one, as Caffe does on load"
V0_NOTICE = "upgraded from V0 layer format (layers { layer { ... } }) to the current one, as Caffe does on load"

# UpgradeV1LayerType, in caffe.proto's V1LayerParameter.LayerType number order (a number is legal text format).
V1_TYPES = {
    "NONE": ("", 0),
    "ABSVAL": ("AbsVal", 35),
    "ACCURACY": ("Accuracy", 1),
    "ARGMAX": ("ArgMax", 30),
    "BNLL": ("BNLL", 2),
    "CONCAT": ("Concat", 3),
    "CONTRASTIVE_LOSS": ("ContrastiveLoss", 37),
    "CONVOLUTION": ("Convolution", 4),
    "DATA": ("Data", 5),
    "DECONVOLUTION": ("Deconvolution", 39),
    "DROPOUT": ("Dropout", 6),
    "DUMMY_DATA": ("DummyData", 32),
    "EUCLIDEAN_LOSS": ("EuclideanLoss", 7),
    "ELTWISE": ("Eltwise", 25),
    "EXP": ("Exp", 38),
    "FLATTEN": ("Flatten", 8),
    "HDF5_DATA": ("HDF5Data", 9),
    "HDF5_OUTPUT": ("HDF5Output", 10),
    "HINGE_LOSS": ("HingeLoss", 28),
    "IM2COL": ("Im2col", 11),
    "IMAGE_DATA": ("ImageData", 12),
    "INFOGAIN_LOSS": ("InfogainLoss", 13),
    "INNER_PRODUCT": ("InnerProduct", 14),
    "LRN": ("LRN", 15),
    "MEMORY_DATA": ("MemoryData", 29),
    "MULTINOMIAL_LOGISTIC_LOSS": ("MultinomialLogisticLoss", 16),
    "MVN": ("MVN", 34),
    "POOLING": ("Pooling", 17),
    "POWER": ("Power", 26),
    "RELU": ("ReLU", 18),
    "SIGMOID": ("Sigmoid", 19),
    "SIGMOID_CROSS_ENTROPY_LOSS": ("SigmoidCrossEntropyLoss", 27),
    "SILENCE": ("Silence", 36),
    "SOFTMAX": ("Softmax", 20),
    "SOFTMAX_LOSS": ("SoftmaxWithLoss", 21),
    "SPLIT": ("Split", 22),
    "SLICE": ("Slice", 33),
    "TANH": ("TanH", 23),
    "WINDOW_DATA": ("WindowData", 24),
    "THRESHOLD": ("Threshold", 31),
}
_V1_BY_NUMBER = {number: name for name, number in V1_TYPES.values()}
_V1_BY_ENUM = {enum: name for enum, (name, _) in V1_TYPES.items()}
_V1_DROPPED = ("blobs",)  # weights inside a prototxt: Caffe copies them, shapes need none of them
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")
_TRANSFORMED = {"Data": "data_param", "ImageData": "image_data_param", "WindowData": "window_data_param"}

# UpgradeV0LayerType: V0 type string -> V1 type name.
V0_TYPES = {
    "accuracy": "Accuracy",
    "bnll": "BNLL",
    "concat": "Concat",
    "conv": "Convolution",
    "data": "Data",
    "dropout": "Dropout",
    "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten",
    "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output",
    "im2col": "Im2col",
    "images": "ImageData",
    "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss",
    "split": "Split",
    "tanh": "TanH",
    "window_data": "WindowData",
}
# UpgradeV0LayerParameter: V0 field -> {V0 type: (parameter message, field)}; "*" is any type.
_V0_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "num_output": {"conv": ("convolution_param", "num_output"), "innerproduct": ("inner_product_param", "num_output")},
    "biasterm": {"conv": ("convolution_param", "bias_term"), "innerproduct": ("inner_product_param", "bias_term")},
    "weight_filler": {
        "conv": ("convolution_param", "weight_filler"),
        "innerproduct": ("inner_product_param", "weight_filler"),
    },
    "bias_filler": {
        "conv": ("convolution_param", "bias_filler"),
        "innerproduct": ("inner_product_param", "bias_filler"),
    },
    "pad": {"conv": ("convolution_param", "pad"), "pool": ("pooling_param", "pad")},
    "kernelsize": {"conv": ("convolution_param", "kernel_size"), "pool": ("pooling_param", "kernel_size")},
    "group": {"conv": ("convolution_param", "group")},
    "stride": {"conv": ("convolution_param", "stride"), "pool": ("pooling_param", "stride")},
    "pool": {"pool": ("pooling_param", "pool")},
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio")},
    "local_size": {"lrn": ("lrn_param", "local_size")},
    "alpha": {"lrn": ("lrn_param", "alpha")},
    "beta": {"lrn": ("lrn_param", "beta")},
    "k": {"lrn": ("lrn_param", "k")},
    "source": {
        "data": ("data_param", "source"),
        "hdf5_data": ("hdf5_data_param", "source"),
        "images": ("image_data_param", "source"),
        "window_data": ("window_data_param", "source"),
        "infogain_loss": ("infogain_loss_param", "source"),
    },
    "scale": {"*": ("transform_param", "scale")},
    "meanfile": {"*": ("transform_param", "mean_file")},
    "cropsize": {"*": ("transform_param", "crop_size")},
    "mirror": {"*": ("transform_param", "mirror")},
    "batchsize": {
        "data": ("data_param", "batch_size"),
        "hdf5_data": ("hdf5_data_param", "batch_size"),
        "images": ("image_data_param", "batch_size"),
        "window_data": ("window_data_param", "batch_size"),
    },
    "rand_skip": {"data": ("data_param", "rand_skip"), "images": ("image_data_param", "rand_skip")},
    "shuffle_images": {"images": ("image_data_param", "shuffle")},
    "new_height": {"images": ("image_data_param", "new_height")},
    "new_width": {"images": ("image_data_param", "new_width")},
    "concat_dim": {"concat": ("concat_param", "concat_dim")},
    "hdf5_output_param": {"hdf5_output": ("hdf5_output_param", "*")},
}
_V0_LR = {"blobs_lr": "blobs_lr", "weight_decay": "weight_decay"}


def _error(layer: Message, message: str, field: str | None = None) -> NetworkError:
    line, column = layer.where(field) if field and field in layer else (layer.line, layer.column)
    name = layer.first("name")
    return NetworkError(message, layer=str(name) if isinstance(name, str) else None, line=line, column=column)


def _child(msg: Message, name: str) -> Message:
    if not msg.get(name):
        msg.add(name, Message(msg.line, msg.column))
    return msg[name][0]


def _put(msg: Message, name: str, value: object, spot: tuple[int, int]) -> None:
    """Add `value` to field `name`, keeping where it was written so later errors point at the old line."""
    msg.add(name, value, *spot)


def _v1_type(layer: Message) -> str:
    raw = layer.first("type")
    if isinstance(raw, Identifier) and raw in _V1_BY_ENUM:
        return _V1_BY_ENUM[raw]
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in _V1_BY_NUMBER:
        return _V1_BY_NUMBER[raw]
    if isinstance(raw, str) and not isinstance(raw, Identifier):
        raise _error(layer, f"a V1 'layers' entry takes an enum type such as CONVOLUTION, not the string {raw!r}")
    raise _error(layer, f"unknown V1 layer type {raw!r} (known: {', '.join(sorted(V1_TYPES))})", "type")


def upgrade_v1_layer(old: Message) -> Message:
    """One V1LayerParameter as a LayerParameter (UpgradeV1LayerParameter + UpgradeNetDataTransformation)."""
    new = Message(old.line, old.column)
    kind = _v1_type(old) if old.get("type") else ""
    params: list[Message] = []

    def param(i: int) -> Message:
        while len(params) <= i:
            params.append(Message(old.line, old.column))
        return params[i]

    for name in old:
        spots = [old.where(name, i) for i in range(len(old[name]))]
        for i, (raw, spot) in enumerate(zip(old[name], spots, strict=True)):
            if name == "type":
                _put(new, "type", kind, spot)
            elif name == "param":  # V1: repeated string, the shared blob names
                _put(param(i), "name", raw, spot)
            elif name == "blob_share_mode":
                _put(param(i), "share_mode", raw, spot)
            elif name == "blobs_lr":
                _put(param(i), "lr_mult", raw, spot)
            elif name == "weight_decay":
                _put(param(i), "decay_mult", raw, spot)
            elif name == "layer":
                raise _error(old, "a V1 layer may not also hold a V0 'layer' message", "layer")
            elif name in _V1_DROPPED:
                continue
            else:
                _put(new, name, raw, spot)
    for spec in params:
        new.add("param", spec, spec.line, spec.column)
    if kind in _TRANSFORMED and new.get(_TRANSFORMED[kind]):
        source = new[_TRANSFORMED[kind]][0]
        for field in _TRANSFORM_FIELDS:
            if source.get(field):
                spot = source.where(field)
                _put(_child(new, "transform_param"), field, source[field][0], spot)
                del source[field]
                source.positions.pop(field, None)
    return new


def _v0_fold_padding(net: Message) -> list[Message]:
    """UpgradeV0PaddingLayers: a "padding" layer's pad moves into the conv/pool layer it feeds."""
    writer: dict[str, Message | None] = {str(name): None for name in net.get("input", [])}
    kept: list[Message] = []
    for conn in net.get("layers", []):
        inner = conn.first("layer")
        if not isinstance(inner, Message):
            raise _error(conn, "a V0 'layers' entry needs its 'layer { ... }'")
        kind = inner.first("type", "")
        if kind != "padding":
            kept.append(conn)
        for j, blob in enumerate(conn.get("bottom", [])):
            if blob not in writer:
                raise _error(conn, f"bottom blob '{blob}' does not exist (no earlier layer produces it)", "bottom")
            source = writer[blob]
            if source is None or source.first("layer").first("type") != "padding":
                continue
            if kind not in ("conv", "pool") or len(conn.get("bottom", [])) != 1:
                raise _error(conn, "a V0 padding layer may only feed one conv or pool layer")
            conn["layer"][0].add("pad", source.first("layer").first("pad", 0))
            conn["bottom"][j] = source.first("bottom")
        for blob in conn.get("top", []):
            writer[blob] = conn
    return kept


def upgrade_v0_layer(conn: Message) -> Message:
    """One V0 connection (`layers { layer { ... } bottom top }`) as a V1 layer (UpgradeV0LayerParameter)."""
    inner = conn.first("layer")
    v1 = Message(conn.line, conn.column)
    for name in ("bottom", "top"):
        for i, blob in enumerate(conn.get(name, [])):
            v1.add(name, blob, *conn.where(name, i))
    kind = str(inner.first("type", ""))
    if inner.get("type") and kind not in V0_TYPES:
        raise _error(conn, f"unknown V0 layer type {kind!r} (known: {', '.join(sorted(V0_TYPES))})")
    for name in inner:
        for i, raw in enumerate(inner[name]):
            spot = inner.where(name, i)
            if name == "name":
                v1.add("name", raw, *spot)
            elif name == "type":
                v1.add("type", Identifier(_enum_of(V0_TYPES[kind])), *spot)
            elif name in _V0_LR:
                v1.add(_V0_LR[name], raw, *spot)
            elif name == "blobs":
                continue
            elif name in _V0_FIELDS:
                targets = _V0_FIELDS[name]
                target = targets.get(kind) or targets.get("*")
                if target is None:
                    raise NetworkError(
                        f"V0 parameter '{name}' does not apply to layer type '{kind}'",
                        layer=str(inner.first("name", "")) or None,
                        line=spot[0],
                        column=spot[1],
                    )
                message, field = target
                if field == "*":
                    v1.add(message, raw, *spot)
                else:
                    _child(v1, message).add(field, raw, *spot)
            else:
                raise NetworkError(
                    f"unknown V0 layer parameter '{name}'",
                    layer=str(inner.first("name", "")) or None,
                    line=spot[0],
                    column=spot[1],
                )
    return v1


def _enum_of(type_name: str) -> str:
    return next(enum for enum, (name, _) in V1_TYPES.items() if name == type_name)


def _upgrade_input(net: Message) -> None:
    """UpgradeNetInput: net-level inputs with shapes become an Input layer "input" placed first (an input
    without a shape stays: it names the blob DIGITS' own data layer fills)."""
    inputs, shapes, dims = net.get("input", []), net.get("input_shape", []), net.get("input_dim", [])
    if (shapes or dims) and inputs:
        if shapes and len(shapes) != len(inputs):
            raise NetworkError(
                f"{len(inputs)} inputs but {len(shapes)} input_shape entries", line=net.where("input_shape")[0]
            )
        if not shapes and len(dims) != 4 * len(inputs):
            raise NetworkError(
                f"input_dim needs 4 values per input ({4 * len(inputs)}), got {len(dims)}",
                line=net.where("input_dim")[0],
            )
        line, column = net.where("input")
        layer = Message(line, column)
        layer.add("name", "input", line, column)
        layer.add("type", "Input", line, column)
        param = Message(line, column)
        for i, blob in enumerate(inputs):
            layer.add("top", blob, *net.where("input", i))
            if shapes:
                param.add("shape", shapes[i], *net.where("input_shape", i))
            else:
                shape = Message(*net.where("input_dim", 4 * i))
                for j in range(4 * i, 4 * i + 4):
                    shape.add("dim", dims[j], *net.where("input_dim", j))
                param.add("shape", shape, shape.line, shape.column)
        layer.add("input_param", param, line, column)
        layers = net.get("layer", [])
        positions = net.positions.get("layer", [])
        net["layer"] = [layer, *layers]
        net.positions["layer"] = [(line, column), *positions]
        for name in ("input", "input_shape", "input_dim"):
            net.pop(name, None)
            net.positions.pop(name, None)


def upgrade_net(net: Message) -> list[str]:
    """Upgrade a parsed NetParameter in place to the current format; returns notices for the person."""
    notices: list[str] = []
    old = net.get("layers", [])
    if old:
        if net.get("layer"):
            line, column = net.where("layer")
            raise NetworkError(
                "the network mixes 'layers' (old V1 format) and 'layer' entries; use one format", line=line
            )
        v0 = any(conn.get("layer") for conn in old)
        if v0:
            old = [upgrade_v0_layer(conn) for conn in _v0_fold_padding(net)]
            notices.append(V0_NOTICE)
        else:
            notices.append(V1_NOTICE)
        spots = net.positions.get("layers", [])
        upgraded = [upgrade_v1_layer(layer) for layer in old]
        del net["layers"]
        net.positions.pop("layers", None)
        for i, layer in enumerate(upgraded):
            spot = spots[i] if i < len(spots) and not v0 else (layer.line, layer.column)
            net.add("layer", layer, *spot)
    if net.get("input"):
        _upgrade_input(net)
    return notices
