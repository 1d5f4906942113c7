"""Weights between a compiled Caffe network (CaffeNet) and Caffe's .caffemodel files, matched by layer name.

Reading follows Caffe's `Net::CopyTrainedLayersFrom`: each file layer goes to the net's layer of that name (the
last one, when names repeat), its blobs in Caffe's order must be as many and of the same shapes (a legacy
num x channels x height x width blob matches when the net's shape, padded with leading 1s to 4-D, is the same),
and file layers that match no layer are passed over. Unlike Caffe nothing is changed when one layer does not
fit: every layer is checked before any weight is copied.

Writing gives what Caffe's `net.save` gives: every layer of the net's stage in prototxt order (name, type,
bottoms, tops) with its blobs: Convolution N x C/group x kh x kw and bias, InnerProduct out x in (in x out with
`transpose`) and bias, BatchNorm's mean, variance and scale factor, Scale's and PReLU's, and so on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from digits.engine.caffe.net import NOT_COMPUTED, CaffeNet, build_net
from digits.formats.caffemodel import Caffemodel, parse_caffemodel, read_caffemodel, write_caffemodel


class CaffemodelMismatch(ValueError):
    """A file layer's blobs do not fit the net's layer of that name; the message names the layer and shapes."""


@dataclass
class LoadReport:
    """What a .caffemodel gave a net, by layer name."""

    loaded: list[str] = field(default_factory=list)  # the net's layers whose weights came from the file
    no_weights: list[str] = field(default_factory=list)  # the net's learnable layers the file has no weights for
    unmatched: list[str] = field(default_factory=list)  # file layers holding weights that match no layer


def _blobs(module: torch.nn.Module) -> list[torch.Tensor]:
    return [getattr(module, n) for n in (*module.blob_names, *module.buffer_names)]


# Layers that leave each channel where it is: the image's channel order reaches through them unchanged.
CHANNEL_BLIND = ("Power", "ReLU", "Dropout", "AbsVal", "Exp", "Log", "Sigmoid", "TanH", "BNLL", "Threshold")


def image_layers(net: CaffeNet) -> list[str]:
    """The learned layers that read a color image's channels (Convolution or Deconvolution with 3 input
    channels fed by the data blob through channel-blind layers only). Caffe fed them BGR, this server feeds RGB:
    a .caffemodel holds their weights in Caffe's order (reverse_image_channels, save_caffemodel(bgr=True))."""
    reaches, found = {net.spec.data_blob}, []
    for layer in net.spec.layers:
        if not reaches.intersection(layer.bottoms):
            continue
        if layer.type in CHANNEL_BLIND:
            reaches.update(layer.tops)
        elif layer.type in ("Convolution", "Deconvolution") and net.caffe_blobs(layer.name):
            if net.caffe_blobs(layer.name)[0].shape[1] == 3:
                found.append(layer.name)
    return found


def reverse_image_channels(net: CaffeNet, names: list[str] | None = None) -> list[str]:
    """Reverse, in place, the input channels of `names` (default: image_layers): BGR weights become RGB ones and
    back. Returns the names."""
    names = image_layers(net) if names is None else names
    with torch.no_grad():
        for name in names:
            weight = net.caffe_blobs(name)[0]
            weight.copy_(weight.flip(1))
    return names


def net_layers(net: CaffeNet) -> list[tuple[str, str, list[str], list[str], list[torch.Tensor]]]:
    """(name, type, bottoms, tops, blobs in Caffe's order) of each layer of the net's stage, in prototxt order."""
    modules = iter(net.layers.values())  # one per computed layer, in the same order (names may repeat)
    out = []
    for layer in net.spec.layers:
        blobs = [] if layer.type in NOT_COMPUTED else _blobs(next(modules))
        out.append((layer.name, layer.type, list(layer.bottoms), list(layer.tops), blobs))
    return out


def _shape(shape) -> str:
    return " x ".join(str(int(d)) for d in shape) or "scalar"


def blob_fits(target: tuple[int, ...], blob_shape: tuple[int, ...], legacy: bool) -> bool:
    """Caffe's blob shape check: a legacy num x channels x height x width blob fits the shape padded to 4-D."""
    if not legacy:
        return tuple(target) == tuple(blob_shape)
    if len(target) > 4:
        return False
    return (1,) * (4 - len(target)) + tuple(target) == tuple(blob_shape)


def load_caffemodel(net: CaffeNet, source: str | bytes | Caffemodel) -> LoadReport:
    """Copy the weights of a .caffemodel (a path, its bytes, or parsed) into `net` by layer name.

    Raises CaffemodelMismatch, naming the layer and both shapes, before changing anything when a layer's blobs
    do not fit; CaffemodelError (digits.formats.caffemodel) when the file cannot be read.
    """
    model = source if isinstance(source, Caffemodel) else None
    if model is None:
        model = read_caffemodel(source) if isinstance(source, str) else parse_caffemodel(source)
    targets: dict[str, list[torch.Tensor]] = {}
    learnable: list[str] = []
    for name, _, _, _, blobs in net_layers(net):
        targets[name] = blobs  # the last layer of a name, as Caffe's layer_names_index_
        if blobs and name not in learnable:
            learnable.append(name)
    report = LoadReport()
    copies: list[tuple[torch.Tensor, np.ndarray]] = []
    given: set[str] = set()
    for layer in model.layers:
        if not layer.blobs:
            continue
        if layer.name not in targets:
            report.unmatched.append(layer.name)
            continue
        wanted = targets[layer.name]
        if len(wanted) != len(layer.blobs):
            raise CaffemodelMismatch(
                f"layer {layer.name!r}: the file has {len(layer.blobs)} blob(s) "
                f"({', '.join(_shape(b.shape) for b in layer.blobs)}), the network "
                f"{len(wanted)} ({', '.join(_shape(t.shape) for t in wanted) or 'none'})"
            )
        for i, (tensor, blob) in enumerate(zip(wanted, layer.blobs, strict=True)):
            if not blob_fits(tuple(tensor.shape), blob.shape, blob.legacy):
                raise CaffemodelMismatch(
                    f"layer {layer.name!r} blob {i}: the file's shape is {_shape(blob.shape)}, "
                    f"the network's is {_shape(tensor.shape)}"
                )
            copies.append((tensor, blob.data.reshape(tuple(tensor.shape))))
        if layer.name not in given:
            given.add(layer.name)
            report.loaded.append(layer.name)
    with torch.no_grad():
        for tensor, values in copies:
            if tensor.device.type == "cpu" and tensor.dtype == torch.float32 and tensor.is_contiguous():
                tensor.detach().numpy()[...] = values  # straight from the file's bytes (read-only, maybe unaligned)
            else:
                tensor.copy_(torch.from_numpy(np.array(values)))
    report.no_weights = [name for name in learnable if name not in given]
    return report


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).contiguous().numpy()


def save_caffemodel(net: CaffeNet, path: str, *, bgr: bool = False) -> None:
    """Write `net`'s weights as a .caffemodel that Caffe loads with the same network's prototxt (any stage).
    `bgr`: for Caffe, which feeds color images as BGR (the layers reading the image get their input channels
    reversed in the file; `net` is left as it is). Without it the file keeps this server's RGB order (a file
    only this server's own Caffe run reads back)."""
    flip = set(image_layers(net)) if bgr else set()

    def arrays(name: str, blobs: list[torch.Tensor]) -> list[np.ndarray]:
        return [_to_numpy(t.flip(1) if name in flip and i == 0 else t) for i, t in enumerate(blobs)]

    layers = [(name, kind, bottoms, tops, arrays(name, blobs)) for name, kind, bottoms, tops, blobs in net_layers(net)]
    write_caffemodel(path, net.spec.name, layers)


def snapshot_to_caffemodel(snapshot_path: str, network_text: str, path: str) -> None:
    """A training snapshot (snapshot_epoch_<E>.pt) of a Caffe-framework model as a .caffemodel at `path`."""
    state = torch.load(snapshot_path, map_location="cpu", weights_only=True)
    shape = tuple(int(d) for d in state["input_shape"])
    net = build_net(network_text, input_shape=shape, num_classes=len(state["labels"]), stage="train")
    net.load_state_dict(state["model"])
    tmp = path + ".tmp"
    save_caffemodel(net, tmp, bgr=True)
    os.replace(tmp, path)


__all__ = [
    "CaffemodelMismatch",
    "LoadReport",
    "image_layers",
    "load_caffemodel",
    "net_layers",
    "reverse_image_channels",
    "save_caffemodel",
]
