"""A snapshot's network as ONNX, beside its TorchScript (worker side: imports torch and onnx).

The graph keeps model.ts' contract: input `data`, N x C x H x W floats already preprocessed (resized, mean
subtracted, center-cropped, times input_scale), any batch size; outputs `logits` (N x K) and `prob` (their
softmax). What the preprocessing is goes into the model's metadata (`metadata_props`), so a lone .onnx file
still says how to feed it, and into the snapshot's deploy_epoch_<N>.json under "onnx".

torch's TorchScript-based exporter is used (dynamo=False): it needs the `onnx` package only, where the dynamo
exporter also needs onnxscript, and it traces the network as model.ts is traced, so both files compute the same.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import onnx

OPSET = 17  # onnxruntime, TensorRT and OpenVINO of the last years all read it
INPUT = "data"  # Caffe's name for a network's input
OUTPUTS = ("logits", "prob")


class OnnxExportError(RuntimeError):
    """The network cannot be written as ONNX; the message says which layer and why."""


class Logits(torch.nn.Module):
    """The network's first output only (GoogLeNet's auxiliary heads are for training)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[0] if isinstance(out, tuple | list) else out


def _add_softmax(model: onnx.ModelProto) -> None:
    """Give the graph a second output, `prob`: the softmax of `logits` over the classes. Added to the ONNX graph,
    not traced, so a TorchScript network (which the tracer cannot wrap) gets it as well."""
    import onnx.helper  # see write_onnx

    graph = model.graph
    graph.node.append(onnx.helper.make_node("Softmax", [OUTPUTS[0]], [OUTPUTS[1]], name=OUTPUTS[1], axis=1))
    prob = graph.output.add()
    prob.CopyFrom(graph.output[0])
    prob.name = OUTPUTS[1]


def _short(e: BaseException) -> str:
    """The error's first sentence (the exporter appends the whole traced graph to some), at most 300 characters."""
    text = " ".join(str(e).split())
    first = text.split(". ", 1)[0]
    return first if len(first) <= 300 else first[:297] + "..."


def _floor_divide(g, self, other):
    from torch.onnx import symbolic_opset9  # the exporter's own correct floor division, which // should use

    return symbolic_opset9._floor_divide(g, self, other)


@contextlib.contextmanager
def _true_floor_division():
    """While exporting, `a // b` is exported as floor division: the exporter's own rule truncates (its comment
    says "Deprecated behavior"), so a Caffe pooling's ceil-mode output size, -(-span // stride), came out one
    short and GoogLeNet's ONNX computed an empty tensor."""
    ops = ("aten::floor_divide", "aten::floordiv")
    for op in ops:
        torch.onnx.register_custom_op_symbolic(op, _floor_divide, OPSET)
    try:
        yield
    finally:
        for op in ops:
            torch.onnx.unregister_custom_op_symbolic(op, OPSET)


def _export(module: torch.nn.Module, example: tuple, path: str, names: tuple[list[str], list[str]]) -> None:
    inputs, outputs = names
    with warnings.catch_warnings(), _true_floor_division():
        # The TorchScript-based exporter warns that it is deprecated, and about traced Python branches on shapes
        # (the TorchScript export beside this one has checked the traced network computes what the network does).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            path,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={name: {0: "N"} for name in inputs + outputs},
            opset_version=OPSET,
            do_constant_folding=True,
        )


def _leaf_inputs(net: torch.nn.Module, x: torch.Tensor) -> list[tuple[str, torch.nn.Module, tuple]]:
    """(name, module, inputs) of each layer without sublayers, in the order the network ran them on `x`."""
    seen: list[tuple[str, torch.nn.Module, tuple]] = []
    hooks = []
    try:
        for name, module in net.named_modules():
            if name and not any(True for _ in module.children()):
                hooks.append(
                    module.register_forward_hook(
                        lambda m, args, out, name=name: seen.append(
                            (name, m, tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args))
                        )
                    )
                )
        net(x)
    except RuntimeError:  # TorchScript layers take no hooks: nothing is known of them
        return []
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _pool_size(size: object, n: int) -> tuple[int, ...] | None:
    sizes = tuple(size) if isinstance(size, tuple | list) else (size,) * n
    return None if any(s is None for s in sizes) else tuple(int(s) for s in sizes)


def _fixed_pools(net: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """`net`, or a copy of it where each adaptive 2-D pooling layer is the fixed pooling it amounts to at this
    input size (the exporter refuses adaptive pools, and the input size is fixed but for the batch). A pool whose
    input is no whole multiple of its output is left as it is, and named if the export fails."""
    kinds = {torch.nn.AdaptiveAvgPool2d: torch.nn.AvgPool2d, torch.nn.AdaptiveMaxPool2d: torch.nn.MaxPool2d}
    if not any(type(m) in kinds for m in net.modules()):
        return net  # no need to run the network to see its sizes
    replace = []
    for name, module, args in _leaf_inputs(net, x):
        fixed = kinds.get(type(module))
        if fixed is None or getattr(module, "return_indices", False):
            continue
        out = _pool_size(module.output_size, 2)
        if out is None:
            continue
        size = tuple(int(d) for d in args[0].shape[-2:])
        if all(s % o == 0 for s, o in zip(size, out, strict=True)):
            kernel = tuple(s // o for s, o in zip(size, out, strict=True))
            replace.append((name, fixed(kernel, stride=kernel)))
    if not replace:
        return net
    net = copy.deepcopy(net)  # the caller's network keeps its layers (it may be traced or saved again)
    for name, module in replace:
        parent_name, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent_name), attr, module)
    return net


def _guilty_layer(net: torch.nn.Module, x: torch.Tensor, scratch: str) -> str | None:
    """The first layer that cannot be exported by itself, as `name (Type): reason`; None when each of them can
    (the network's own forward then is what fails)."""
    for name, module, args in _leaf_inputs(net, x):
        if not args or not all(isinstance(a, torch.Tensor) for a in args):
            continue
        try:
            _export(module, args, scratch, ([f"in{i}" for i in range(len(args))], ["out"]))
        except Exception as e:  # noqa: BLE001 - any failure names this layer
            return f"layer {name!r} ({type(module).__name__}): {_short(e)}"
        finally:
            if os.path.exists(scratch):
                os.remove(scratch)
    return None


def write_onnx(
    net: torch.nn.Module,
    input_shape: tuple[int, int, int],
    path: str,
    metadata: dict[str, object],
) -> dict[str, object]:
    """Write `net` (on the CPU, in eval mode, float) as ONNX at `path`; returns the description the deploy .json
    keeps. `metadata` (the preprocessing contract) goes into the model as string properties.
    Raises OnnxExportError naming the first layer that cannot be exported."""
    # onnx takes about half a second to import: here, at the first snapshot, a training worker's first metric
    # does not wait for it (bench/first_metric.py).
    import onnx
    import onnx.checker

    example = (torch.rand((2, *input_shape), generator=torch.Generator().manual_seed(0)) * 2 - 1,)
    with torch.no_grad():
        net = _fixed_pools(net, example[0])
    # A TorchScript network (an imported model.ts) is exported as it is: the tracer cannot call it from a wrapper.
    module = net if isinstance(net, torch.jit.ScriptModule) else Logits(net).eval()

    def write(tmp: str) -> None:
        try:
            with torch.no_grad():
                _export(module, example, tmp, ([INPUT], [OUTPUTS[0]]))
        except Exception as e:  # noqa: BLE001 - the exporter fails in many ways; all mean "not exportable"
            with torch.no_grad():
                guilty = _guilty_layer(net, example[0], tmp + ".layer")
            where = guilty or _short(e)
            raise OnnxExportError(f"the network cannot be exported to ONNX (opset {OPSET}): {where}") from e
        model = onnx.load(tmp)
        if [o.name for o in model.graph.output] != [OUTPUTS[0]]:
            raise OnnxExportError(f"the network has {len(model.graph.output)} outputs; one, the logits, was expected")
        _add_softmax(model)
        model.producer_name = "DIGITS"
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as e:
            raise OnnxExportError(f"the exported ONNX model is not valid: {_short(e)}") from e
        onnx.save(model, tmp)

    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return {
        "file": os.path.basename(path),
        "opset": OPSET,
        "input": INPUT,
        "input_shape": ["N", *(int(d) for d in input_shape)],
        "outputs": list(OUTPUTS),
    }
