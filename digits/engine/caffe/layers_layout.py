"""PyTorch modules for Caffe's Crop, Slice, Reshape, Silence, DummyData and Embed, computing what Caffe's
layers compute (crop_layer.cpp, slice_layer.cpp, reshape_layer.cpp, silence_layer.cpp,
dummy_data_layer.cpp, embed_layer.cpp). Configs come from the torch-free shape rules in
`digits.model.caffe.shapes_layout`; axes there are batch-free, so tensors index them one further on."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from digits.engine.caffe.fillers import fill_
from digits.engine.caffe.layers import CaffeLayer, _builds
from digits.model.caffe.analysis import LayerSpec


@_builds("Crop")
class Crop(CaffeLayer):
    def forward(self, x: Tensor, like: Tensor) -> tuple[Tensor]:
        first, index = self.config["axis"], [slice(None)]
        for axis, start in enumerate(self.config["offsets"]):
            index.append(slice(start, start + like.shape[axis + 1]) if axis >= first else slice(None))
        return (x[tuple(index)],)


@_builds("Slice")
class Slice(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(torch.split(x, self.config["sizes"], dim=self.config["axis"] + 1))


@_builds("Reshape")
class Reshape(CaffeLayer):
    def forward(self, x: Tensor) -> tuple[Tensor]:
        return (x.reshape(x.shape[0], *self.config["shape"]),)


@_builds("Silence")
class Silence(CaffeLayer):
    def forward(self, *xs: Tensor) -> tuple[()]:
        return ()


@_builds("DummyData")
class DummyData(CaffeLayer):
    """Caffe fills constant tops once and refills the others on every forward pass."""

    def __init__(self, layer: LayerSpec) -> None:
        super().__init__(layer)
        self.shapes = [tuple(s) for s in layer.config["shapes"]]
        self.fillers = layer.config["fillers"]
        self.constant = [torch.full(s, float(f["value"])) if f["type"] == "constant" else None
                         for s, f in zip(self.shapes, self.fillers, strict=True)]  # fmt: skip

    def forward(self) -> tuple[Tensor, ...]:
        return tuple(
            fixed.clone() if fixed is not None else fill_(torch.empty(shape), filler)
            for fixed, shape, filler in zip(self.constant, self.shapes, self.fillers, strict=True)
        )


@_builds("Embed")
class Embed(CaffeLayer):
    blob_names = ("weight", "bias")

    def forward(self, x: Tensor) -> tuple[Tensor]:
        index = x.long()
        if (x != index).any() or (index < 0).any() or (index >= self.config["input_dim"]).any():
            raise ValueError(f"Embed takes whole numbers from 0 to {self.config['input_dim'] - 1}")
        out = nn.functional.embedding(index, self.weight)
        return (out + self.bias if self.config["bias"] else out,)
