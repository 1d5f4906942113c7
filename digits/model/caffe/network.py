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
]
