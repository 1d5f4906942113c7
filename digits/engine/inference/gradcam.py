"""Grad-CAM (Selvaraju et al., 2017): where a convolution layer saw evidence for a class (worker side).

The map of layer L for class c: the ReLU of sum_k alpha_k A_k, where A_k is L's channel k and alpha_k the mean over
positions of d score_c / d A_k; upsampled to the network's input size and min-max normalised to 0..1.

Upsampling puts each cell of L where it looks. A network with unpadded convolutions (LeNet) has a grid that does
not reach the input's edges: LeNet's 8x8 conv2 cells look at input pixels 6.5 .. 20.5 of 28, two pixels apart.
Stretching the 8x8 map over the whole 28x28 image, as a plain resize does, moves a hot edge cell into an empty
corner. So the grid's spacing (the layer's stride in input pixels) is measured by running the network up to L on
a larger input, and the grid is centred on the input (convolutions pad symmetrically); a padded network's grid
covers the input and the sampling is then exactly a bilinear resize (half-pixel centres).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

PROBE_GROWTH = 64  # input pixels added per side to measure a layer's stride


class _Reached(Exception):
    """Raised by the probe's hook: the layer ran, the rest of the network need not."""

    def __init__(self, shape: torch.Size):
        super().__init__()
        self.shape = shape


def first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, tuple | list):
        out = out[0] if out else None
    return out if isinstance(out, torch.Tensor) else None


def layer_map(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, layer: nn.Module
) -> torch.Tensor | None:
    """ReLU(sum_k alpha_k A_k) of `layer` for class `target` and the single input x (1 x C x H x W): h x w at
    the layer's resolution, or None when the layer does not run or gives no 4-D output."""
    saved: dict[str, torch.Tensor] = {}

    def hook(_m, _inputs, out):
        tensor = first_tensor(out)
        if tensor is None or "act" in saved:
            return None
        saved["act"] = tensor
        copy = tensor.clone()  # later in-place layers change the copy, not the tensor the gradient is taken of
        return (copy, *out[1:]) if isinstance(out, tuple | list) else copy

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = forward(x.detach().clone().requires_grad_(True))
            if "act" not in saved or saved["act"].dim() != 4:
                return None
            (grad,) = torch.autograd.grad(logits[0, target].float(), saved["act"])
    finally:
        handle.remove()
    act = saved["act"].detach().float()
    alpha = grad.float().mean(dim=(2, 3), keepdim=True)
    return torch.relu((alpha * act).sum(dim=1))[0]


def layer_stride(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, layer: nn.Module, size: tuple[int, int]
) -> tuple[float, float]:
    """The spacing of `layer`'s grid in input pixels (rows, columns): how much its output grows when the input
    does. A network that cannot take the larger input gets input size / output size (a plain resize)."""
    plain = (x.shape[2] / size[0], x.shape[3] / size[1])

    def hook(_m, _inputs, out):
        tensor = first_tensor(out)
        if tensor is not None:
            raise _Reached(tensor.shape)

    bigger = torch.nn.functional.pad(x, (PROBE_GROWTH,) * 4)
    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            forward(bigger)
    except _Reached as reached:
        grown = reached.shape
        if len(grown) != 4 or grown[2] <= size[0] or grown[3] <= size[1]:
            return plain
        return (_whole(2 * PROBE_GROWTH / (grown[2] - size[0])), _whole(2 * PROBE_GROWTH / (grown[3] - size[1])))
    except Exception:  # noqa: BLE001 - a network that only takes its own input size: fall back to a resize
        return plain
    finally:
        handle.remove()
    return plain


def _whole(stride: float) -> float:
    # Pooling that rounds up can add a cell to the larger output: a stride within 5% of a whole number is one.
    near = round(stride)
    return float(near) if near >= 1 and abs(stride - near) < 0.05 * near else stride


def upsample(cam: torch.Tensor, size: tuple[int, int], stride: tuple[float, float]) -> torch.Tensor:
    """A h x w map at the input's size H x W: cell i's centre at input pixel c0 + i * stride, the grid centred
    (c0 = ((H - 1) - stride * (h - 1)) / 2); bilinear between centres, the edge value beyond them."""
    axes = []
    for n_in, n_out, step in ((size[0], cam.shape[0], stride[0]), (size[1], cam.shape[1], stride[1])):
        first = ((n_in - 1) - step * (n_out - 1)) / 2
        u = ((torch.arange(n_in, dtype=torch.float64) - first) / step).clamp(0, n_out - 1)
        low = u.floor().long().clamp(max=n_out - 1)
        high = (low + 1).clamp(max=n_out - 1)
        axes.append((low, high, (u - low).float()))
    (r0, r1, fr), (c0, c1, fc) = axes
    cam = cam.float()
    top = cam[r0][:, c0] * (1 - fc) + cam[r0][:, c1] * fc
    bottom = cam[r1][:, c0] * (1 - fc) + cam[r1][:, c1] * fc
    return top * (1 - fr[:, None]) + bottom * fr[:, None]


def min_max(values: torch.Tensor) -> torch.Tensor:
    """Scaled to 0..1 over its own range; a constant map is all zeros (nothing stands out)."""
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return torch.zeros_like(values)
    return (values - low) / (high - low)


def grad_cam(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, layer: nn.Module
) -> np.ndarray | None:
    """The Grad-CAM map of `layer` for class `target`: H x W (the input's size) float32 in 0..1, or None."""
    cam = layer_map(forward, x, target, layer)
    if cam is None:
        return None
    size = (int(x.shape[2]), int(x.shape[3]))
    if tuple(cam.shape) != size:
        cam = upsample(cam, size, layer_stride(forward, x, layer, tuple(cam.shape)))
    return min_max(cam).cpu().numpy().astype(np.float32)
