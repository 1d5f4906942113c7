"""Build a job's network, in either framework, as the training loop's Model (worker side: imports torch).

A PyTorch network written as Python is run here, and only here (training and inference workers): its source
becomes a module, what build_model returns is checked to be a torch.nn.Module, and its BATCH_SIZE,
INPUT_SCALE and CROP_SIZE are checked before they are used.
"""

from __future__ import annotations

import itertools
import linecache
import sys
import traceback
import types
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from digits.engine.caffe.net import build_net
from digits.model.caffe import analyze, transform_crop
from digits.model.quotas import caffe_params_problem, params_problem
from digits.model.torch_networks import BUILDER, NetworkSourceError, missing_builder, syntax_error

_module_ids = itertools.count(1)


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


def load_network_source(text: str, filename: str = "network.py") -> types.ModuleType:
    """Compile and run `text` as a fresh module; problems become NetworkSourceError with the line they are on."""
    try:
        code = compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise syntax_error(e) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise NetworkSourceError(f"the source cannot be compiled: {e}") from None
    # Tracebacks from the worker then show the person's own lines.
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    name = f"digits_network_{next(_module_ids)}"
    module = types.ModuleType(name)
    module.__file__ = filename
    # Registered only while it runs: dataclasses and typing look their module up in sys.modules.
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except Exception as e:
        raise _runtime_error(e, filename) from e
    finally:
        sys.modules.pop(name, None)
    if not callable(getattr(module, BUILDER, None)):
        raise missing_builder()
    return module


def build_from_source(
    text: str, *, num_classes: int, channels: int, height: int, width: int, filename: str = "network.py"
) -> tuple[nn.Module, dict[str, Any]]:
    """Run a network's source and build it; returns (model, {"batch_size", "input_scale", "crop_size"})."""
    module = load_network_source(text, filename)
    try:
        model = module.build_model(num_classes=num_classes, channels=channels, height=height, width=width)
    except Exception as e:
        raise _runtime_error(e, filename) from e
    if not isinstance(model, nn.Module):
        raise NetworkSourceError(f"{BUILDER}() must return a torch.nn.Module (it returned {type(model).__name__})")
    return model, network_settings(module)


def network_settings(module: types.ModuleType) -> dict[str, Any]:
    """BATCH_SIZE, INPUT_SCALE and CROP_SIZE of a loaded network, checked, with defaults None / 1.0 / None."""
    batch_size = getattr(module, "BATCH_SIZE", None)
    input_scale = getattr(module, "INPUT_SCALE", 1.0)
    crop_size = getattr(module, "CROP_SIZE", None)
    for name, value in (("BATCH_SIZE", batch_size), ("CROP_SIZE", crop_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise NetworkSourceError(f"{name} must be a positive integer or None (got {value!r})")
    if isinstance(input_scale, bool) or not isinstance(input_scale, int | float) or not input_scale > 0:
        raise NetworkSourceError(f"INPUT_SCALE must be a positive number (got {input_scale!r})")
    return {"batch_size": batch_size, "input_scale": float(input_scale), "crop_size": crop_size}


def _runtime_error(e: Exception, filename: str) -> NetworkSourceError:
    if isinstance(e, NetworkSourceError):
        return e
    line = None
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename == filename:
            line = frame.lineno  # the innermost line of the person's own file
    return NetworkSourceError(f"{type(e).__name__}: {e}", line)


def network_crop(text: str, framework: str) -> int | None:
    """The crop size the network definition asks for (Caffe transform_param, or CROP_SIZE in Python)."""
    if framework == "caffe":
        return transform_crop(text)
    return network_settings(load_network_source(text))["crop_size"]


def build_network(text: str, framework: str, *, input_shape: tuple[int, int, int], num_classes: int) -> BuiltNetwork:
    channels, height, width = input_shape
    if framework == "caffe":
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
    module, own = build_from_source(text, num_classes=num_classes, channels=channels, height=height, width=width)

    def groups(lr: float, weight_decay: float) -> list[dict]:
        return [{"params": list(module.parameters())}]

    batch = own["batch_size"]
    return BuiltNetwork(module, "torch", batch, batch, own["input_scale"], own["crop_size"], False, groups)


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
