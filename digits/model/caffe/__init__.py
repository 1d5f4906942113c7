"""Caffe prototxt networks for DIGITS: a text-format parser, a caffe.proto schema, shape analysis (all
torch-free, for the web process) and, in `digits.engine.caffe.net`, the compiler to PyTorch.

Importing this package never imports torch.
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
    transform_crop,
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
    "transform_crop",
]
