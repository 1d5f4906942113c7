"""Shape rules of Caffe's regression and pair losses (euclidean_loss_layer.cpp,
sigmoid_cross_entropy_loss_layer.cpp, contrastive_loss_layer.cpp): each checks its bottoms as Caffe does
and has one scalar top."""

from __future__ import annotations

import math

from digits.model.caffe.schema import value, values
from digits.model.caffe.shapes import LayerShapes, Shape, ShapeError, _rule, fmt
from digits.model.caffe.textformat import Message

LOSS_TYPES = ("SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "ContrastiveLoss")


def _loss_weight(layer: Message) -> float:
    weights = values(layer, "loss_weight")
    return float(weights[0]) if weights else 1.0


def _same_count(bottoms: list[Shape], what: str) -> None:
    if math.prod(bottoms[0]) != math.prod(bottoms[1]):
        raise ShapeError(
            f"{what} needs inputs with the same count per image, got N x {fmt(bottoms[0])} and N x {fmt(bottoms[1])}"
        )


@_rule("EuclideanLoss", bottoms=(2, 2), tops=(0, 1))
def _euclidean(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    _same_count(bottoms, "EuclideanLoss")
    return LayerShapes([()] * len(layer.get("top", [])), {"loss_weight": _loss_weight(layer)})


@_rule("SigmoidCrossEntropyLoss", bottoms=(2, 2), tops=(0, 1))
def _sigmoid_cross_entropy(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    # The Caffe this project builds (brocolli-caffe 9.0.2) divides by the batch size and reads no loss_param
    # (no ignore_label, no normalization): so do we, to give the same loss on both engines.
    _same_count(bottoms, "SigmoidCrossEntropyLoss")
    return LayerShapes([()] * len(layer.get("top", [])), {"loss_weight": _loss_weight(layer)})


def _flat(shape: Shape) -> int:
    """Values per image of a blob Caffe's legacy accessors read as N x C x 1 x 1 (height and width must be 1)."""
    if any(d != 1 for d in shape[1:]):
        raise ShapeError(f"expects N x C x 1 x 1 inputs, got N x {fmt(shape)}")
    return shape[0] if shape else 1


@_rule("ContrastiveLoss", bottoms=(3, 3), tops=(0, 1))
def _contrastive(layer: Message, bottoms: list[Shape]) -> LayerShapes:
    a, b, similar = (_flat(s) for s in bottoms)
    if a != b:
        raise ShapeError(f"the two feature inputs must match, got N x {fmt(bottoms[0])} and N x {fmt(bottoms[1])}")
    if similar != 1:
        raise ShapeError(f"the third input holds one similarity label per pair, got N x {fmt(bottoms[2])}")
    p = layer.first("contrastive_loss_param")
    config = {
        "loss_weight": _loss_weight(layer),
        "margin": value(p, "ContrastiveLossParameter", "margin"),
        "legacy_version": value(p, "ContrastiveLossParameter", "legacy_version"),
    }
    return LayerShapes([()] * len(layer.get("top", [])), config)
