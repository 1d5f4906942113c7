"""caffe.proto's parameter messages of the layers in shapes_more.py (ArgMax, Bias, ELU, ..., Tile) and of the
recurrent layers (RecurrentParameter), with caffe.proto's defaults; enums list their values in number order."""

from __future__ import annotations

from digits.model.caffe.schema_fields import (
    _ENGINE,
    _FILLERS,
    Field,
    _bool,
    _enum,
    _enum_from_1,
    _float,
    _int,
    _msg,
    _str,
)

MORE_LAYER_PARAMS = {
    "argmax_param": "ArgMaxParameter",
    "bias_param": "BiasParameter",
    "elu_param": "ELUParameter",
    "exp_param": "ExpParameter",
    "log_param": "LogParameter",
    "hinge_loss_param": "HingeLossParameter",
    "infogain_loss_param": "InfogainLossParameter",
    "mvn_param": "MVNParameter",
    "parameter_param": "ParameterParameter",
    "reduction_param": "ReductionParameter",
    "spp_param": "SPPParameter",
    "threshold_param": "ThresholdParameter",
    "tile_param": "TileParameter",
    "recurrent_param": "RecurrentParameter",
}

MORE_MESSAGES: dict[str, dict[str, Field]] = {
    "ArgMaxParameter": {"out_max_val": _bool(), "top_k": _int(1), "axis": _int()},
    "BiasParameter": {"axis": _int(1), "num_axes": _int(1), "filler": _msg("FillerParameter")},
    "ELUParameter": {"alpha": _float(1.0)},
    "ExpParameter": {"base": _float(-1.0), "scale": _float(1.0), "shift": _float(0.0)},
    "LogParameter": {"base": _float(-1.0), "scale": _float(1.0), "shift": _float(0.0)},
    "HingeLossParameter": {"norm": _enum_from_1("L1 L2")},
    "InfogainLossParameter": {"source": _str()},
    "MVNParameter": {"normalize_variance": _bool(True), "across_channels": _bool(), "eps": _float(1e-9)},
    "ParameterParameter": {"shape": _msg("BlobShape")},
    "ReductionParameter": {"operation": _enum_from_1("SUM ASUM SUMSQ MEAN"), "axis": _int(0), "coeff": _float(1.0)},
    "SPPParameter": {"pyramid_height": _int(), "pool": _enum("MAX AVE STOCHASTIC"), "engine": _enum(_ENGINE)},
    "ThresholdParameter": {"threshold": _float(0.0)},
    "TileParameter": {"axis": _int(1), "tiles": _int()},
    "RecurrentParameter": {
        "num_output": _int(0),
        **_FILLERS,
        "debug_info": _bool(),
        "expose_hidden": _bool(),
    },
}
