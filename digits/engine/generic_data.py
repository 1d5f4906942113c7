"""Generic (tabular) data for the training and inference workers: a generic dataset folder's splits as
normalized float tensors, and networks built over its features (worker side: imports torch).

A PyTorch network's build_model(num_features=..., num_outputs=...) takes rows of features; a Caffe network takes
them as an Input of shape 1 x 1 x F (its InnerProduct layers flatten them), with num_outputs filling the last
InnerProduct's num_output as for images.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from digits.engine.caffe.net import build_net
from digits.engine.networks import BuiltNetwork, _runtime_error, load_network_source, network_settings
from digits.engine.trainer import Split
from digits.folders.generic import GenericDataset, GenericFolderError
from digits.model.caffe import analyze
from digits.model.torch_networks import NetworkSourceError
from digits.worker_runtime import TaskFailed


def caffe_shape(num_features: int) -> tuple[int, int, int]:
    return (1, 1, num_features)


def as_input(features: torch.Tensor, framework: str) -> torch.Tensor:
    """Rows of normalized features as the network takes them (N x F, or N x 1 x 1 x F for Caffe)."""
    return features.reshape(len(features), 1, 1, -1) if framework == "caffe" else features


def load_generic_split(dataset: GenericDataset, split: str, framework: str, device: torch.device) -> Split:
    """A split in memory on the device, normalized once (nothing random happens to tabular rows)."""
    try:
        x, y = dataset.load(split)
    except GenericFolderError as e:
        raise TaskFailed(str(e)) from None
    if not len(x):
        raise TaskFailed(f"the {split} split of the dataset holds no rows")
    features = as_input(torch.from_numpy(dataset.normalize(x)), framework).to(device)
    return Split(features, torch.from_numpy(y).to(device), transformed=True)


def build_generic_network(
    text: str, framework: str, *, num_features: int, num_outputs: int, options: dict[str, Any] | None = None
) -> BuiltNetwork:
    """Build a network over `num_features` features with `num_outputs` outputs; `options` (the MLP's hidden sizes
    and dropout) are passed to build_model when it takes them."""
    if framework == "caffe":
        shape = caffe_shape(num_features)
        net = build_net(text, input_shape=shape, num_classes=num_outputs, stage="train")
        spec = analyze(text, stage="train", input_shape=shape, num_classes=num_outputs)
        val = analyze(text, stage="val", input_shape=shape, num_classes=num_outputs)
        return BuiltNetwork(net, "caffe", spec.batch_size, val.batch_size, 1.0, None, False, net.param_groups)
    module_ns = load_network_source(text)
    wanted = {"num_features": num_features, "num_outputs": num_outputs}
    accepted = inspect.signature(module_ns.build_model).parameters
    for name, value in (options or {}).items():
        if name in accepted:
            wanted[name] = value
    try:
        module = module_ns.build_model(**wanted)
    except Exception as e:
        raise _runtime_error(e, "network.py") from e
    if not isinstance(module, torch.nn.Module):
        raise NetworkSourceError(f"build_model() must return a torch.nn.Module (it returned {type(module).__name__})")
    own = network_settings(module_ns)

    def groups(lr: float, weight_decay: float) -> list[dict]:
        return [{"params": list(module.parameters())}]

    return BuiltNetwork(module, "torch", own["batch_size"], own["batch_size"], 1.0, None, False, groups)
