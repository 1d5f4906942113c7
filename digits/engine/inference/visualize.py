"""What every layer of a network does to one image, and where it looked (Grad-CAM); worker side.

Both frameworks are read through forward hooks: a Caffe network's layers are the modules of `net.layers`
(named and typed as in the prototxt), a PyTorch network's are its leaf modules, in the order they run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from digits.engine.inference.gradcam import first_tensor, grad_cam
from digits.engine.inference.model import LoadedModel
from digits.inference import render

CONV_TYPES = ("Convolution", "Conv2d", "Conv1d", "Conv3d")


def _layers(model: LoadedModel) -> list[tuple[str, str, nn.Module]]:
    """(name, type, module) of every layer that computes something."""
    module = model.module
    if model.framework == "caffe":
        keys = getattr(module, "keys", {})
        return [(spec.name, spec.type, module.layer(spec.name)) for spec in module.spec.layers if spec.name in keys]
    return [(name, type(m).__name__, m) for name, m in module.named_modules() if name and not any(m.children())]


def _weights(module: nn.Module) -> np.ndarray | None:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return None
    return weight.detach().float().cpu().numpy()


def _layer_record(name: str, kind: str, output: torch.Tensor, weights: np.ndarray | None) -> dict[str, Any]:
    act = output[0].numpy()
    return {
        "name": name,
        "type": kind,
        "shape": list(act.shape),
        "activations": render.data_url(render.activations_picture(act)),
        "weights": None if weights is None else _maybe_picture(weights),
        "stats": render.statistics(act),
        "weight_stats": None if weights is None else render.statistics(weights),
        "parameters": None if weights is None else int(weights.size),
    }


def _maybe_picture(weights: np.ndarray) -> str | None:
    picture = render.weights_picture(weights)
    return None if picture is None else render.data_url(picture)


def layer_outputs(model: LoadedModel, x: torch.Tensor) -> list[tuple[str, str, nn.Module, torch.Tensor]]:
    """Every layer's first output for the input batch x, in the order the layers ran (copied: in-place
    layers such as ReLU(inplace=True) change their input after the hook has seen it)."""
    seen: dict[str, tuple[str, str, nn.Module, torch.Tensor]] = {}
    hooks = []
    for name, kind, module in _layers(model):

        def hook(_m, _inputs, out, name=name, kind=kind, module=module):
            tensor = first_tensor(out)
            if tensor is not None and name not in seen:
                seen[name] = (name, kind, module, tensor.detach().float().cpu().clone())

        try:
            hooks.append(module.register_forward_hook(hook))
        except (NotImplementedError, RuntimeError):  # a loaded TorchScript module takes no hooks: unseen
            continue
    try:
        model.logits(x)
    finally:
        for handle in hooks:
            handle.remove()
    return list(seen.values())


def conv_layers(outputs: list[tuple[str, str, nn.Module, torch.Tensor]]) -> list[tuple[str, nn.Module]]:
    """(name, module) of the convolution layers that gave a 4-D output, in the order they ran."""
    return [(name, module) for name, kind, module, output in outputs if kind in CONV_TYPES and output.dim() == 4]


def gradcam_picture(
    model: LoadedModel, array: np.ndarray, x: torch.Tensor, target: int, layer: nn.Module
) -> str | None:
    """The Grad-CAM map of `layer` for class `target` over the image as the network saw it, as a PNG data URL."""
    heat = grad_cam(model.built.logits, x, target, layer)
    if heat is None:
        return None
    return render.data_url(render.heat_overlay(model.seen(array), heat))


def gradcam_for(model: LoadedModel, array: np.ndarray, target: int, layer_name: str | None) -> dict[str, Any]:
    """{"gradcam": picture, "gradcam_layer": name, "gradcam_layers": [conv layer names]} for one layer (its
    name; None: the last convolution layer)."""
    x = model.inputs([array])
    convs = conv_layers(layer_outputs(model, x))
    names = [name for name, _ in convs]
    if layer_name is None:
        chosen = convs[-1] if convs else None
    else:
        chosen = next((c for c in convs if c[0] == layer_name), None)
        if chosen is None:
            raise KeyError(layer_name)
    picture = None if chosen is None else gradcam_picture(model, array, x, target, chosen[1])
    return {"gradcam": picture, "gradcam_layer": None if chosen is None else chosen[0], "gradcam_layers": names}


def visualize(model: LoadedModel, array: np.ndarray, target: int) -> dict[str, Any]:
    """{"visualizations": [per layer: name, type, shape, activations, weights, stats, weight_stats], "gradcam"
    (of the last convolution layer), "gradcam_layer" (its name), "gradcam_layers" (every convolution layer)}."""
    x = model.inputs([array])
    records = [_layer_record("data", "Input", x.detach().float().cpu(), None)]
    outputs = layer_outputs(model, x)
    for name, kind, module, output in outputs:
        records.append(_layer_record(name, kind, output, _weights(module)))
    convs = conv_layers(outputs)
    last = convs[-1] if convs else None
    unseen = len(_layers(model)) - len(outputs)
    return {
        "visualizations": records,
        "visualizations_note": (
            f"{unseen} of the network's layers could not be watched as it ran (a TorchScript archive runs its "
            "layers inside compiled code): their outputs are not shown."
            if unseen and model.framework == "torch" and isinstance(model.module, torch.jit.ScriptModule)
            else None
        ),
        "gradcam": None if last is None else gradcam_picture(model, array, x, target, last[1]),
        "gradcam_layer": None if last is None else last[0],
        "gradcam_layers": [name for name, _ in convs],
    }
