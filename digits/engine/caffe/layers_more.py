"""PyTorch modules for the rest of BVLC Caffe 1.0's layers, computing what Caffe's own code computes
(absval_layer.cpp, argmax_layer.cpp, ..., tile_layer.cpp, and stochastic pooling from pooling_layer.cu).
Configs come from the torch-free shape rules in `digits.model.caffe.shapes_more`; axes there are batch-free
unless noted, so tensors index them one further on. Gradients come from autograd; Caffe's layers without
a backward (ArgMax, Threshold) give tops that do not need one."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from digits.engine.caffe.layers import CaffeLayer, Pooling, _builds, caffe_pool
from digits.formats.caffe_pb import BlobProto
from digits.model.caffe.analysis import LayerSpec
from digits.model.caffe.shapes import pooled_size

LOG_THRESHOLD = 1e-20  # Caffe's kLOG_THRESHOLD: probabilities are clipped to it before the log
FLT_MIN = float(np.finfo(np.float32).tiny)


@_builds("AbsVal")
class AbsVal(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (x.abs(),)


@_builds("BNLL")
class BNLL(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        # log(1 + exp(x)), taken as x beyond Caffe's kBNLL_THRESHOLD (50); its gradient is sigmoid(x) as in Caffe.
        return (F.softplus(x, threshold=50.0),)


@_builds("ELU")
class ELU(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (F.elu(x, self.config["alpha"]),)


@_builds("Exp")
class Exp(CaffeLayer):
    """y = base ^ (shift + scale * x), base -1 meaning e: outer * exp(inner * x) as exp_layer.cpp does."""

    def forward(self, x: Tensor) -> tuple[Tensor]:
        base, scale, shift = self.config["base"], self.config["scale"], self.config["shift"]
        log_base = 1.0 if base == -1 else math.log(base)
        inner = log_base * scale
        outer = 1.0 if shift == 0 else math.exp(log_base * shift)
        y = torch.exp(x * inner if inner != 1.0 else x)
        return (y * outer if outer != 1.0 else y,)


@_builds("Log")
class Log(CaffeLayer):
    """y = log_base(shift + scale * x), base -1 meaning e."""

    def forward(self, x: Tensor) -> tuple[Tensor]:
        base, scale, shift = self.config["base"], self.config["scale"], self.config["shift"]
        inner = x * scale + shift if (scale, shift) != (1.0, 0.0) else x
        y = torch.log(inner)
        return (y / math.log(base) if base != -1 else y,)


@_builds("Threshold")
class Threshold(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return ((x > self.config["threshold"]).to(x.dtype),)


def _ranked(x: Tensor, dim: int, k: int) -> tuple[Tensor, Tensor]:
    """The k largest values along `dim` and their indices, ties going to the higher index as Caffe's
    partial_sort on (value, index) pairs with std::greater does."""
    size = x.shape[dim]
    values, order = torch.sort(x.flip(dim), dim=dim, descending=True, stable=True)
    return values.narrow(dim, 0, k), (size - 1 - order).narrow(dim, 0, k)


@_builds("ArgMax")
class ArgMax(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        x = x.detach()  # Caffe's ArgMax has no backward
        if c["axis"] is None:
            values, index = _ranked(x.reshape(x.shape[0], -1), 1, c["top_k"])
            parts = [index.to(x.dtype), values] if c["out_max_val"] else [index.to(x.dtype)]
            out = torch.stack(parts, dim=1)
            return (out.reshape(x.shape[0], len(parts), c["top_k"], *([1] * (x.dim() - 3))),)
        values, index = _ranked(x, c["axis"] + 1, c["top_k"])
        return (values if c["out_max_val"] else index.to(x.dtype),)


@_builds("BatchReindex")
class BatchReindex(CaffeLayer):
    def forward(self, x: Tensor, permutation: Tensor) -> tuple[Tensor]:
        index = permutation.detach().long()
        if (index != permutation).any() or (index < 0).any() or (index >= x.shape[0]).any():
            raise ValueError(f"BatchReindex takes whole numbers from 0 to {x.shape[0] - 1} (the input's batch)")
        return (x.index_select(0, index),)


@_builds("Bias")
class Bias(CaffeLayer):
    blob_names = ("weight",)

    def forward(self, x: Tensor, *given: Tensor) -> tuple[Tensor]:
        c = self.config
        bias = given[0] if c["bottom"] else self.weight
        lead = 0 if c["bottom"] else c["axis"] + 1
        trail = x.dim() - lead - bias.dim()
        return (x + bias.reshape(*([1] * lead), *bias.shape, *([1] * trail)),)


@_builds("Filter")
class Filter(CaffeLayer):
    def forward(self, *xs: Tensor) -> tuple[Tensor, ...]:
        *data, selector = xs
        keep = selector.detach().reshape(selector.shape[0]) != 0
        return tuple(d[keep] for d in data)


def _per_image(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def _label_index(label: Tensor, classes: int) -> Tensor:
    index = label.detach().reshape(-1).to(torch.int64)  # Caffe casts the label to int
    if (index < 0).any() or (index >= classes).any():
        raise ValueError(f"labels must be between 0 and {classes - 1}")
    return index


@_builds("HingeLoss")
class HingeLoss(CaffeLayer):
    def forward(self, scores: Tensor, label: Tensor) -> tuple[Tensor]:
        x = _per_image(scores)
        index = _label_index(label, x.shape[1])
        sign = torch.ones_like(x)
        sign[torch.arange(x.shape[0]), index] = -1.0
        margin = torch.clamp(1.0 + sign * x, min=0.0)
        total = margin.sum() if self.config["norm"] == "L1" else (margin * margin).sum()
        return (total / x.shape[0],)


@_builds("MultinomialLogisticLoss")
class MultinomialLogisticLoss(CaffeLayer):
    def forward(self, prob: Tensor, label: Tensor) -> tuple[Tensor]:
        p = _per_image(prob)
        picked = p.gather(1, _label_index(label, p.shape[1])[:, None])
        return (-torch.log(torch.clamp(picked, min=LOG_THRESHOLD)).sum() / p.shape[0],)


def read_infogain(path: str, dim: int) -> Tensor:
    """The H matrix of an InfogainLoss `source` (a BlobProto, as Caffe reads it), dim x dim."""
    try:
        with open(path, "rb") as fh:
            blob = BlobProto.FromString(fh.read())
    except OSError as error:
        raise ValueError(f"cannot read the infogain matrix {path}: {error.strerror}") from None
    data = np.asarray(blob.data if len(blob.data) else blob.double_data, dtype=np.float32)
    if data.size != dim * dim:
        raise ValueError(f"the infogain matrix {path} holds {data.size} values, not {dim} x {dim}")
    return torch.from_numpy(data.reshape(dim, dim).copy())


@_builds("InfogainLoss")
class InfogainLoss(CaffeLayer):
    def __init__(self, layer: LayerSpec) -> None:
        super().__init__(layer)
        source = layer.config["source"]
        if source:
            self.register_buffer("infogain", read_infogain(source, layer.config["dim"]), persistent=False)

    def forward(self, prob: Tensor, label: Tensor, *given: Tensor) -> tuple[Tensor]:
        p = _per_image(prob)
        matrix = given[0].detach().reshape(p.shape[1], p.shape[1]) if given else self.infogain
        weights = matrix.to(p.dtype)[_label_index(label, p.shape[1])]
        return (-(weights * torch.log(torch.clamp(p, min=LOG_THRESHOLD))).sum() / p.shape[0],)


@_builds("MVN")
class MVN(CaffeLayer):
    """Mean (and variance) normalization per image and channel, or per image across channels; Caffe adds
    eps to the standard deviation, not the variance."""

    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        groups = x.shape[0] if c["across_channels"] else x.shape[0] * (x.shape[1] if x.dim() > 1 else 1)
        flat = x.reshape(groups, -1)
        centred = flat - flat.mean(1, keepdim=True)
        if c["normalize_variance"]:
            centred = centred / (torch.sqrt((centred * centred).mean(1, keepdim=True)) + c["eps"])
        return (centred.reshape(x.shape[0], *c["shape"]),)


@_builds("Parameter")
class Parameter(CaffeLayer):
    blob_names = ("weight",)

    def forward(self) -> tuple[Tensor]:
        return (self.weight,)


@_builds("Reduction")
class Reduction(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        flat = x.reshape(*x.shape[: c["axis"]], -1)
        op = c["operation"]
        if op == "SUM":
            out = flat.sum(-1)
        elif op == "MEAN":
            out = flat.mean(-1)
        elif op == "ASUM":
            out = flat.abs().sum(-1)
        else:
            out = (flat * flat).sum(-1)
        return (out * c["coeff"] if c["coeff"] != 1.0 else out,)


def stochastic_pool(x: Tensor, kernel: tuple, stride: tuple, pad: tuple, ceil: bool, train: bool) -> Tensor:
    """Caffe's STOCHASTIC pooling (pooling_layer.cu; its CPU code has none): in training each window outputs
    one of its values, drawn with probability value / window sum (inputs are activations >= 0); in testing
    the probability-weighted average sum(x^2) / sum(x). Windows start at 0 and are clipped to the input:
    Caffe's stochastic kernels ignore the padding, which only adds output positions."""
    height, width = x.shape[-2:]
    out = [
        pooled_size(n, k, s, p, ceil, any(pad)) for n, k, s, p in zip((height, width), kernel, stride, pad, strict=True)
    ]
    extra = [(o - 1) * s + k - n for o, s, k, n in zip(out, stride, kernel, (height, width), strict=True)]
    padded = F.pad(x, (0, extra[1], 0, extra[0]))  # zeros add nothing to a window's sums
    if not train:
        area = kernel[0] * kernel[1]
        total = F.avg_pool2d(padded, kernel, stride) * area
        squares = F.avg_pool2d(padded * padded, kernel, stride) * area
        return squares / (total + FLT_MIN)
    n, c = x.shape[:2]
    windows = F.unfold(padded, kernel, stride=stride).reshape(n, c, kernel[0] * kernel[1], -1)
    running = windows.detach().cumsum(2)
    threshold = torch.rand(n, c, 1, running.shape[-1], dtype=x.dtype, device=x.device) * running[:, :, -1:]
    pick = (running < threshold).sum(2, keepdim=True).clamp(max=windows.shape[2] - 1)
    return windows.gather(2, pick).reshape(n, c, *out)


class StochasticPooling(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        return (stochastic_pool(x, c["kernel"], c["stride"], c["pad"], c["ceil"], self.training),)


@_builds("Pooling")
def _pooling(layer: LayerSpec) -> CaffeLayer:
    return StochasticPooling(layer) if layer.config["pool"] == "STOCHASTIC" else Pooling(layer)


@_builds("SPP")
class SPP(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        outs = []
        for level in c["levels"]:
            kernel, stride, pad = level["kernel"], level["stride"], level["pad"]
            if c["pool"] == "STOCHASTIC":
                outs.append(stochastic_pool(x, kernel, stride, pad, True, self.training))
            else:
                outs.append(caffe_pool(x, c["pool"], kernel, stride, pad, True))
        if len(outs) == 1:
            return (outs[0],)
        return (torch.cat([o.flatten(1) for o in outs], dim=1),)


@_builds("Tile")
class Tile(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        reps = [1] * x.dim()
        reps[self.config["axis"] + 1] = self.config["tiles"]
        return (x.repeat(*reps),)


@_builds("Im2col")
class Im2col(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        c = self.config
        cols = F.unfold(x, c["kernel"], dilation=c["dilation"], padding=c["pad"], stride=c["stride"])
        height = (x.shape[2] + 2 * c["pad"][0] - c["dilation"][0] * (c["kernel"][0] - 1) - 1) // c["stride"][0] + 1
        return (cols.reshape(x.shape[0], cols.shape[1], height, -1),)


@_builds("LSTM", "RNN")
class Recurrent(CaffeLayer):
    """Caffe's LSTM and RNN over T x N inputs (time first). cont_t = 0 starts a sequence: the previous hidden
    (and LSTM cell) state is multiplied by it. As Caffe does, the state a forward pass ends with is the initial
    state of the next one (zeros at first; a sequence may span batches), without a gradient across them."""

    blob_names = ("w_x", "b_x", "w_static", "w_h", "w_o", "b_o")

    def __init__(self, layer: LayerSpec) -> None:
        names = ["w_x", "b_x", *(["w_static"] if layer.config["static"] else []), "w_h"]
        self.blob_names = tuple(names if layer.config["lstm"] else [*names, "w_o", "b_o"])
        super().__init__(layer)
        self._state: tuple[Tensor, ...] | None = None

    def forward(self, x: Tensor, cont: Tensor, *static: Tensor) -> tuple[Tensor]:
        steps, batch = x.shape[:2]
        hidden = self.config["num_output"]
        pre = F.linear(x.reshape(steps, batch, -1), self.w_x, self.b_x)
        if static:
            pre = pre + F.linear(static[0].reshape(batch, -1), self.w_static)[None]
        zero = x.new_zeros(batch, hidden)
        state = self._state if self._state is not None and self._state[0].shape == zero.shape else (zero, zero)
        h, c = state
        outs = []
        for t in range(steps):
            keep = cont[t].reshape(batch, 1).to(x.dtype)
            gates = pre[t] + F.linear(h * keep, self.w_h)
            if self.config["lstm"]:
                i, f, o, g = gates.split(hidden, dim=1)
                c = keep * torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            else:
                h = torch.tanh(gates)
                outs.append(torch.tanh(F.linear(h, self.w_o, self.b_o)))
        self._state = (h.detach(), c.detach())
        return (torch.stack(outs),)


@_builds("LSTMUnit")
class LSTMUnit(CaffeLayer):
    def forward(self, c_prev: Tensor, gates: Tensor, cont: Tensor) -> tuple[Tensor, Tensor]:
        i, f, o, g = gates.split(self.config["hidden"], dim=2)
        keep = cont.reshape(*cont.shape, 1).to(gates.dtype)
        c = keep * torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        return c, torch.sigmoid(o) * torch.tanh(c)
