"""What every layer of a network does to one image, and where it looked (Grad-CAM); worker side.

Both frameworks are read through forward hooks: a Caffe network's layers are the modules of `net.layers`
(named and typed as in the prototxt), a PyTorch network's are its leaf modules, in the order they run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

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


def _first_output(out: Any) -> torch.Tensor | None:
    if isinstance(out, tuple | list):
        out = out[0] if out else None
    return out if isinstance(out, torch.Tensor) else None


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
            tensor = _first_output(out)
            if tensor is not None and name not in seen:
                seen[name] = (name, kind, module, tensor.detach().float().cpu().clone())

        hooks.append(module.register_forward_hook(hook))
    try:
        model.logits(x)
    finally:
        for handle in hooks:
            handle.remove()
    return list(seen.values())


def grad_cam(model: LoadedModel, x: torch.Tensor, target: int, conv: nn.Module) -> np.ndarray | None:
    """Grad-CAM (Selvaraju et al.): the conv layer's channels weighted by the mean gradient of the target
    class score, rectified and scaled to 0..1; h x w at the layer's resolution."""
    saved: dict[str, torch.Tensor] = {}

    def hook(_m, _inputs, out):
        tensor = _first_output(out)
        if tensor is None or "act" in saved:
            return None
        saved["act"] = tensor
        copy = tensor.clone()  # later in-place layers change the copy, not the tensor the gradient is taken of
        return (copy, *out[1:]) if isinstance(out, tuple | list) else copy

    handle = conv.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model.built.logits(x.detach().clone().requires_grad_(True))
            if "act" not in saved or saved["act"].dim() != 4:
                return None
            (grad,) = torch.autograd.grad(logits[0, target].float(), saved["act"])
    finally:
        handle.remove()
    act = saved["act"].detach().float()
    weights = grad.float().mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * act).sum(dim=1))[0]
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam).cpu().numpy()


def visualize(model: LoadedModel, array: np.ndarray, target: int) -> dict[str, Any]:
    """{"visualizations": [per layer: name, type, shape, activations, weights, stats, weight_stats], "gradcam"}."""
    x = model.inputs([array])
    records = [_layer_record("data", "Input", x.detach().float().cpu(), None)]
    outputs = layer_outputs(model, x)
    for name, kind, module, output in outputs:
        records.append(_layer_record(name, kind, output, _weights(module)))
    convs = [module for _, kind, module, output in outputs if kind in CONV_TYPES and output.dim() == 4]
    gradcam = None
    if convs:
        heat = grad_cam(model, x, target, convs[-1])
        if heat is not None:
            gradcam = render.data_url(render.heat_overlay(model.seen(array), heat))
    return {"visualizations": records, "gradcam": gradcam}
