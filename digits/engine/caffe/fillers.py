"""Caffe's weight fillers for torch tensors, with Caffe's definitions of fan-in and fan-out.

Caffe computes fans from the blob shape alone: fan_in = count / shape[0] and fan_out = count / shape[1]
(count for 1-D blobs). For a convolution weight (O, I/group, kh, kw) that is fan_in = I/group*kh*kw.
"""

from __future__ import annotations

import math

import torch

FILLERS = ("constant", "gaussian", "uniform", "xavier", "msra", "positive_unitball", "bilinear")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) as Caffe's fillers compute them (integer division, like Caffe's int arithmetic)."""
    count = math.prod(shape)
    fan_in = count // shape[0]
    fan_out = count // shape[1] if len(shape) > 1 else count
    return fan_in, fan_out


def _n(shape: tuple[int, ...], variance_norm: str) -> float:
    fan_in, fan_out = fans(shape)
    if variance_norm == "FAN_OUT":
        return fan_out
    if variance_norm == "AVERAGE":
        return (fan_in + fan_out) / 2.0
    return fan_in


@torch.no_grad()
def fill_(tensor: torch.Tensor, filler: dict) -> torch.Tensor:
    """Fill `tensor` in place as Caffe's filler `filler` (a FillerParameter dict with defaults) would."""
    kind, shape = filler["type"], tuple(tensor.shape)
    if kind == "constant":
        tensor.fill_(filler["value"])
    elif kind == "uniform":
        tensor.uniform_(filler["min"], filler["max"])
    elif kind == "gaussian":
        tensor.normal_(filler["mean"], filler["std"])
        if filler["sparse"] >= 0:
            # Caffe keeps each weight with probability sparse / num_outputs (num_outputs = shape[0]).
            keep = torch.full_like(tensor, min(1.0, filler["sparse"] / shape[0]))
            tensor.mul_(torch.bernoulli(keep))
    elif kind == "xavier":
        bound = math.sqrt(3.0 / _n(shape, str(filler["variance_norm"])))
        tensor.uniform_(-bound, bound)
    elif kind == "msra":
        tensor.normal_(0.0, math.sqrt(2.0 / _n(shape, str(filler["variance_norm"]))))
    elif kind == "positive_unitball":
        tensor.uniform_(0.0, 1.0)
        rows = tensor.view(shape[0], -1)
        rows.div_(rows.sum(dim=1, keepdim=True))
    elif kind == "bilinear":
        tensor.copy_(_bilinear(shape))
    else:
        raise ValueError(f"unknown filler type '{kind}' (known: {', '.join(FILLERS)})")
    return tensor


def _bilinear(shape: tuple[int, ...]) -> torch.Tensor:
    """Caffe's bilinear upsampling kernel, repeated over the first two axes (for Deconvolution)."""
    if len(shape) != 4 or shape[2] != shape[3]:
        raise ValueError(f"the bilinear filler needs a square 4-D blob, got {shape}")
    size = shape[3]
    f = math.ceil(size / 2.0)
    c = (size - 1) / (2.0 * f)
    ramp = 1 - (torch.arange(size, dtype=torch.float64) / f - c).abs()
    return (ramp[:, None] * ramp[None, :]).expand(shape).to(torch.float32)
