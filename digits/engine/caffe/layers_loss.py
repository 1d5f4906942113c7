"""PyTorch modules for Caffe's EuclideanLoss, SigmoidCrossEntropyLoss and ContrastiveLoss, each returning
the scalar Caffe's layer writes to its top (before loss_weight, which weighs it in the net's objective).
Arithmetic follows euclidean_loss_layer.cpp, sigmoid_cross_entropy_loss_layer.cpp and
contrastive_loss_layer.cpp of BVLC Caffe 1.0."""

from __future__ import annotations

import torch
from torch import Tensor

from digits.engine.caffe.layers import CaffeLayer, _builds


@_builds("EuclideanLoss")
class EuclideanLoss(CaffeLayer):
    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor]:
        diff = a.reshape(a.shape[0], -1) - b.reshape(b.shape[0], -1)
        return ((diff * diff).sum() / a.shape[0] / 2,)


@_builds("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLoss(CaffeLayer):
    """The sum over every value, divided by the batch size (loss_param is not read, as in the Caffe we build)."""

    def forward(self, x: Tensor, target: Tensor) -> tuple[Tensor]:
        batch = x.shape[0]
        x, target = x.reshape(-1), target.reshape(-1).to(x.dtype)
        positive = (x >= 0).to(x.dtype)
        # Caffe's stable form: x * (t - [x >= 0]) - log(1 + exp(x - 2 x [x >= 0])).
        each = -(x * (target - positive) - torch.log1p(torch.exp(x - 2 * x * positive)))
        return (each.sum() / batch,)


@_builds("ContrastiveLoss")
class ContrastiveLoss(CaffeLayer):
    def forward(self, a: Tensor, b: Tensor, similar: Tensor) -> tuple[Tensor]:
        batch = a.shape[0]
        dist_sq = ((a.reshape(batch, -1) - b.reshape(batch, -1)) ** 2).sum(1)
        margin = self.config["margin"]
        if self.config["legacy_version"]:
            apart = torch.clamp(margin - dist_sq, min=0.0)
        else:
            apart = torch.clamp(margin - torch.sqrt(dist_sq), min=0.0) ** 2
        same = similar.reshape(batch).to(torch.int64) != 0  # Caffe casts the label to int
        return (torch.where(same, dist_sq, apart).sum() / batch / 2,)
