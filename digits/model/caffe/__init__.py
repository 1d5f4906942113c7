"""Caffe prototxt networks for DIGITS: a text-format parser, a caffe.proto schema, shape analysis (all
torch-free, for the web process) and, in `digits.model.caffe.torchnet`, the compiler to PyTorch.

`torchnet` is deliberately not imported here: importing this package must not import torch.
"""

from digits.model.caffe.network import (
    SUPPORTED_LAYER_TYPES,
    CaffeError,
    LayerSpec,
    NetworkError,
    NetworkSpec,
    SchemaError,
    TextFormatError,
    analyze,
    analyze_for_display,
    deploy_prototxt,
    network_graph,
)

__all__ = [
    "SUPPORTED_LAYER_TYPES",
    "CaffeError",
    "LayerSpec",
    "NetworkError",
    "NetworkSpec",
    "SchemaError",
    "TextFormatError",
    "analyze",
    "analyze_for_display",
    "deploy_prototxt",
    "network_graph",
]
