"""Torch-free public API for DIGITS Caffe networks: analysis, deploy export and graphs.

The web process imports this module (never torch) to validate and draw networks; `digits.engine.caffe`
compiles a NetworkSpec into a PyTorch module for the training worker.
"""

from __future__ import annotations

from digits.model.caffe.analysis import LayerSpec, NetworkSpec, analyze, analyze_message, select_layers
from digits.model.caffe.deploy import deploy_prototxt
from digits.model.caffe.errors import CaffeError, NetworkError, SchemaError, TextFormatError
from digits.model.caffe.graph import analyze_for_display, network_graph
from digits.model.caffe.shapes import RULES, SOURCE_TYPES

SUPPORTED_LAYER_TYPES = tuple(sorted([*RULES, *SOURCE_TYPES]))


def transform_crop(text: str) -> int | None:
    """The crop size a network's training data layer asks for (transform_param), if any; None also when the
    text cannot be analyzed (the real analysis reports that)."""
    try:
        spec = analyze(text, stage="train", input_shape=(3, 4096, 4096), num_classes=2)
    except Exception:  # noqa: BLE001 - any problem is reported by the analysis the caller runs next
        return None
    crop = (spec.transform or {}).get("crop_size")
    return int(crop) if crop else None


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
    "analyze_message",
    "deploy_prototxt",
    "network_graph",
    "select_layers",
    "transform_crop",
]
