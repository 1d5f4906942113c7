"""PyTorch modules for Caffe layer types, reproducing Caffe's arithmetic where PyTorch's differs.

Each module takes the layer's bottoms as positional tensors and returns a tuple of its tops. Learnable
blobs are named in Caffe's blob order (`blob_names`, e.g. weight then bias) so weights can be exchanged
with .caffemodel files; BatchNorm's statistics are buffers (`buffer_names`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from digits.engine.caffe.fillers import fill_
from digits.model.caffe.analysis import LayerSpec
from digits.model.caffe.shapes import pooled_size

BUILDERS: dict[str, Callable[[LayerSpec], nn.Module]] = {}


def _builds(*types: str):
    def register(cls):
        for name in types:
            BUILDERS[name] = cls
        return cls

    return register


class CaffeLayer(nn.Module):
    """Base: creates the layer's learnable blobs from the analyzed shapes and fills them like Caffe."""

    blob_names: tuple[str, ...] = ()
    buffer_names: tuple[str, ...] = ()

    def __init__(self, layer: LayerSpec) -> None:
        super().__init__()
        self.config = layer.config
        names = self.blob_names[: len(layer.param_shapes)]
        for name, shape, filler in zip(names, layer.param_shapes, layer.fillers, strict=True):
            self.register_parameter(name, nn.Parameter(fill_(torch.empty(shape), filler)))
        self.blob_names = names


@_builds("Convolution", "Deconvolution")
class Convolution(CaffeLayer):
    blob_names = ("weight", "bias")

    def __init__(self, layer: LayerSpec) -> None:
        super().__init__(layer)
        self.transposed = layer.type == "Deconvolution"

    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        bias = getattr(self, "bias", None)
        if self.transposed:
            out = F.conv_transpose2d(
                x, self.weight, bias, c["stride"], c["pad"], groups=c["group"], dilation=c["dilation"]
            )
        else:
            out = F.conv2d(x, self.weight, bias, c["stride"], c["pad"], c["dilation"], c["group"])
        return (out,)


def caffe_pool(x: Tensor, pool: str, kernel: tuple, stride: tuple, pad: tuple, ceil: bool) -> Tensor:
    """Caffe's MAX/AVE pooling: Caffe's output size, and AVE divides by the window clipped to the padded input.

    PyTorch's ceil mode and padding rules differ from Caffe's (e.g. stride > kernel, pad up to kernel - 1),
    so the input is padded explicitly to exactly cover Caffe's windows and pooled without implicit padding.
    """
    height, width = x.shape[-2:]
    padded = any(pad)
    out = [
        pooled_size(n, k, s, p, ceil, padded) for n, k, s, p in zip((height, width), kernel, stride, pad, strict=True)
    ]
    extra = [(o - 1) * s + k - n - p for o, s, k, n, p in zip(out, stride, kernel, (height, width), pad, strict=True)]
    spread = (pad[1], extra[1], pad[0], extra[0])
    if pool == "MAX":
        # Caffe's windows never see padding: pad with the lowest finite value (Caffe starts from -FLT_MAX).
        y = F.max_pool2d(F.pad(x, spread, value=torch.finfo(x.dtype).min), kernel, stride)
    else:
        y = F.avg_pool2d(F.pad(x, spread), kernel, stride) * (kernel[0] * kernel[1])
        y = y / _ave_divisor(out, kernel, stride, pad, (height, width), x)
    if tuple(y.shape[-2:]) != tuple(out):
        raise AssertionError(f"pooling produced {tuple(y.shape[-2:])}, Caffe gives {tuple(out)}")
    return y


def _ave_divisor(out: list, kernel: tuple, stride: tuple, pad: tuple, size: tuple, like: Tensor) -> Tensor:
    """Caffe's pool_size per output: the window clipped to [-pad, size + pad) (padding counts, overhang doesn't)."""
    spans = []
    for o, k, s, p, n in zip(out, kernel, stride, pad, size, strict=True):
        start = torch.arange(o, dtype=like.dtype, device=like.device) * s - p
        spans.append(torch.clamp(start + k, max=n + p) - start)
    return spans[0][:, None] * spans[1][None, :]


@_builds("Pooling")
class Pooling(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        return (caffe_pool(x, c["pool"], c["kernel"], c["stride"], c["pad"], c["ceil"]),)


@_builds("InnerProduct")
class InnerProduct(CaffeLayer):
    blob_names = ("weight", "bias")

    def forward(self, x: Tensor) -> tuple[Tensor]:
        x = x.flatten(self.config["axis"] + 1)
        bias = getattr(self, "bias", None)
        if self.config["transpose"]:
            out = x @ self.weight
            return (out + bias if bias is not None else out,)
        return (F.linear(x, self.weight, bias),)


@_builds("ReLU")
class ReLU(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        slope = self.config["negative_slope"]
        return (F.leaky_relu(x, slope) if slope else F.relu(x),)


@_builds("PReLU")
class PReLU(CaffeLayer):
    blob_names = ("weight",)

    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (F.prelu(x, self.weight),)


@_builds("Sigmoid")
class Sigmoid(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (torch.sigmoid(x),)


@_builds("TanH")
class TanH(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (torch.tanh(x),)


@_builds("Power")
class Power(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        y = x * c["scale"] + c["shift"] if (c["scale"], c["shift"]) != (1.0, 0.0) else x
        return (y if c["power"] == 1.0 else y.pow(c["power"]),)


@_builds("Dropout")
class Dropout(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        # Caffe scales kept units by 1 / (1 - ratio) while training, as F.dropout does.
        return (F.dropout(x, self.config["ratio"], self.training),)


@_builds("LRN")
class LRN(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        size = c["local_size"]
        if c["region"] == "ACROSS_CHANNELS":
            # Like Caffe, torch divides alpha by local_size and pads the channel window by (size - 1) / 2.
            return (F.local_response_norm(x, size, c["alpha"], c["beta"], c["k"]),)
        # Caffe's WITHIN_CHANNEL averages squares over a size x size window and uses shift 1 (k is ignored).
        pad = (size - 1) // 2
        mean_sq = F.avg_pool2d(x * x, size, 1, pad, count_include_pad=True)
        return (x * (1.0 + c["alpha"] * mean_sq).pow(-c["beta"]),)


@_builds("BatchNorm")
class BatchNorm(CaffeLayer):
    """Caffe's BatchNorm (no affine part; pair it with Scale), keeping Caffe's un-normalized running sums.

    Caffe stores mean and variance sums plus a factor; the statistics used are sum / factor. Training
    updates them as sum = batch + fraction * sum and factor = fraction * factor + 1, with the variance
    bias-corrected by m / (m - 1).
    """

    buffer_names = ("mean", "variance", "scale_factor")

    def __init__(self, layer: LayerSpec) -> None:
        super().__init__(layer)
        channels = layer.buffer_shapes[0][0]
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("variance", torch.zeros(channels))
        self.register_buffer("scale_factor", torch.zeros(1))

    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        use_global = c["use_global_stats"] if c["use_global_stats"] is not None else not self.training
        view = (1, -1) + (1,) * (x.dim() - 2)
        if use_global:
            factor = self.scale_factor[0]
            factor = torch.where(factor == 0, torch.zeros_like(factor), 1.0 / factor)
            mean, var = self.mean * factor, self.variance * factor
        else:
            dims = [d for d in range(x.dim()) if d != 1]
            mean = x.mean(dims)
            var = ((x - mean.view(view)) ** 2).mean(dims)
            if self.training:
                self._update(mean.detach(), var.detach(), x.numel() // x.shape[1])
        return ((x - mean.view(view)) / torch.sqrt(var.view(view) + c["eps"]),)

    @torch.no_grad()
    def _update(self, mean: Tensor, var: Tensor, m: int) -> None:
        fraction = self.config["moving_average_fraction"]
        self.scale_factor.mul_(fraction).add_(1.0)
        self.mean.mul_(fraction).add_(mean)
        self.variance.mul_(fraction).add_(var * (m / (m - 1) if m > 1 else 1.0))


@_builds("Scale")
class Scale(CaffeLayer):
    blob_names = ("weight", "bias")

    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        view = (1,) * (c["axis"] + 1) + tuple(c["shape"]) + (1,) * (x.dim() - 1 - c["axis"] - len(c["shape"]))
        y = x * self.weight.view(view)
        return (y + self.bias.view(view) if c["bias"] else y,)


@_builds("Concat")
class Concat(CaffeLayer):
    def forward(self, *xs: Tensor) -> tuple[Tensor]:
        return (torch.cat(xs, dim=self.config["axis"] + 1),)


@_builds("Eltwise")
class Eltwise(CaffeLayer):
    def forward(self, *xs: Tensor) -> tuple[Tensor]:
        op = self.config["operation"]
        if op == "SUM":
            out = sum((k * x if k != 1.0 else x for k, x in zip(self.config["coeff"], xs, strict=True)), start=0.0)
        elif op == "PROD":
            out = math.prod(xs[1:], start=xs[0])
        else:
            out = xs[0]
            for x in xs[1:]:
                out = torch.maximum(out, x)
        return (out,)


@_builds("Flatten")
class Flatten(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (x.flatten(self.config["axis"] + 1, self.config["end_axis"] + 1),)


@_builds("Split")
class Split(CaffeLayer):
    def __init__(self, layer: LayerSpec) -> None:
        super().__init__(layer)
        self.count = len(layer.tops)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return (x,) * self.count


@_builds("Softmax")
class Softmax(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (F.softmax(x, dim=self.config["axis"] + 1),)


def build_layer(layer: LayerSpec) -> nn.Module:
    """The module for one analyzed layer (KeyError for types that have none, such as data and loss layers)."""
    return BUILDERS[layer.type](layer)
