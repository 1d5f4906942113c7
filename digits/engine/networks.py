"""Build a job's network, in either framework, as the training loop's Model (worker side: imports torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from digits.model.quotas import caffe_params_problem, params_problem


@dataclass
class BuiltNetwork:
    """A network ready to train, with the defaults its definition asks for."""

    module: torch.nn.Module
    framework: str
    batch_size: int | None
    val_batch_size: int | None
    input_scale: float
    crop_size: int | None
    mirror: bool
    param_groups_fn: Any

    def heads(self, x: torch.Tensor) -> list[tuple[torch.Tensor, float]]:
        if self.framework == "caffe":
            return self.module.forward_heads(x)
        out = self.module(x)
        if isinstance(out, tuple | list):  # auxiliary heads (GoogLeNet) count 0.3 each, as in its paper
            return [(out[0], 1.0)] + [(o, 0.3) for o in out[1:]]
        return [(out, 1.0)]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out[0] if isinstance(out, tuple | list) else out

    def param_groups(self) -> list[dict]:
        """Parameter groups carrying lr_mult/decay_mult (Caffe's param { } blocks); the solver applies the rates."""
        groups = []
        for group in self.param_groups_fn(1.0, 1.0):
            group = {k: v for k, v in group.items() if k not in ("lr", "weight_decay")}
            group["params"] = [p for p in group["params"] if p.requires_grad]
            if group["params"]:
                groups.append(group)
        return groups


def network_crop(text: str, framework: str) -> int | None:
    """The crop size the network definition asks for (Caffe transform_param, or CROP_SIZE in Python)."""
    if framework == "caffe":
        from digits.model.forms import network_crop as caffe_crop

        return caffe_crop(text, "caffe")
    from digits.model.torch_networks import load_network_source

    return getattr(load_network_source(text), "CROP_SIZE", None)


def build_network(text: str, framework: str, *, input_shape: tuple[int, int, int], num_classes: int) -> BuiltNetwork:
    channels, height, width = input_shape
    if framework == "caffe":
        from digits.engine.caffe.net import build_net
        from digits.model.caffe import analyze

        net = build_net(text, input_shape=input_shape, num_classes=num_classes, stage="train")
        train_spec = analyze(text, stage="train", input_shape=input_shape, num_classes=num_classes)
        val_spec = analyze(text, stage="val", input_shape=input_shape, num_classes=num_classes)
        transform = train_spec.transform or {}
        return BuiltNetwork(
            net,
            "caffe",
            train_spec.batch_size,
            val_spec.batch_size,
            float(transform.get("scale", 1.0)),
            transform.get("crop_size"),
            bool(transform.get("mirror", False)),
            net.param_groups,
        )
    from digits.model.torch_networks import load_network_source

    source = load_network_source(text)
    module = source.build_model(num_classes=num_classes, channels=channels, height=height, width=width)

    def groups(lr: float, weight_decay: float) -> list[dict]:
        return [{"params": list(module.parameters())}]

    batch = getattr(source, "BATCH_SIZE", None)
    return BuiltNetwork(
        module,
        "torch",
        batch,
        batch,
        float(getattr(source, "INPUT_SCALE", 1.0)),
        getattr(source, "CROP_SIZE", None),
        False,
        groups,
    )


def module_params_problem(module: torch.nn.Module, limit: int | None) -> str | None:
    """Why a built network has too many parameters (naming the layer that holds the most), or None."""
    if limit is None:
        return None
    total = sum(p.numel() for p in module.parameters())
    if total <= limit:
        return None
    name, count, detail = "", 0, ""
    for sub_name, sub in module.named_modules():
        own = list(sub.named_parameters(recurse=False))
        n = sum(p.numel() for _, p in own)
        if n > count:
            blob, largest = max(own, key=lambda item: item[1].numel())
            shape = "x".join(str(d) for d in largest.shape)
            # A compiled Caffe network keeps its layers under `layers.<name>`: show the prototxt's name.
            name = sub_name.removeprefix("layers.") or type(sub).__name__
            count, detail = n, f"{type(sub).__name__}, {blob} {shape}"
    return params_problem(total, name, count, detail, limit)


def size_problem_before_building(
    text: str, framework: str, *, input_shape: tuple[int, int, int], num_classes: int, limit: int | None
) -> str | None:
    """Check the parameter quota without allocating the weights: a Caffe network from its analysis, a PyTorch
    network built on the meta device (shapes only). None when it fits, or when the network cannot be built on
    the meta device (the real build is then checked once it exists)."""
    if limit is None:
        return None
    if framework == "caffe":
        from digits.model.caffe import analyze

        try:
            spec = analyze(text, stage="train", input_shape=input_shape, num_classes=num_classes)
        except Exception:  # noqa: BLE001 - the real build reports a broken network with its line and layer
            return None
        return caffe_params_problem(spec, limit)
    rng = torch.get_rng_state()
    try:
        with torch.device("meta"):
            net = build_network(text, framework, input_shape=input_shape, num_classes=num_classes)
        return module_params_problem(net.module, limit)
    except Exception:  # noqa: BLE001 - a network written for real tensors only: checked after the real build
        return None
    finally:
        torch.set_rng_state(rng)
