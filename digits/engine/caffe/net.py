"""Compile an analyzed DIGITS Caffe network into a PyTorch module that trains on our engine.

Data layers, SoftmaxWithLoss and Accuracy get no module: the input arrives as the argument of `forward`,
and the training loop computes the cross entropy and accuracy itself from `forward_heads` / `forward`.
Modules live in `net.layers` under the layer's name (state_dict keys `layers.conv1.weight`,
`layers.conv1.bias`), so weights can be matched with .caffemodel blobs by layer name.
"""

from __future__ import annotations

from torch import Tensor, nn

from digits.engine.caffe import layers_layout, layers_loss, layers_more  # noqa: F401 - register their layer types
from digits.engine.caffe.layers import build_layer
from digits.model.caffe.analysis import LayerSpec, NetworkSpec, analyze
from digits.model.caffe.shapes import SOURCE_TYPES

NOT_COMPUTED = (*SOURCE_TYPES, "SoftmaxWithLoss", "Accuracy")


def _module_key(name: str, taken: set[str]) -> str:
    """A ModuleDict key for a layer name ('.' is not allowed in module names)."""
    key = name.replace(".", "_") or "layer"
    candidate, n = key, 1
    while candidate in taken:
        n += 1
        candidate = f"{key}_{n}"
    taken.add(candidate)
    return candidate


def _as_logits(blob: Tensor) -> Tensor:
    """(N, K, 1, 1) convolutional logits as (N, K), the shape a cross entropy over image labels expects."""
    return blob.flatten(1) if blob.dim() > 2 else blob


class CaffeNet(nn.Module):
    """The layers of one stage of a Caffe network, run in prototxt order over a dict of named blobs.

    A train-stage net starts in training mode, val and deploy nets in eval mode (Caffe's TEST phase:
    no dropout, BatchNorm on its running statistics); `train()` / `eval()` switch as usual.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleDict()
        self.keys: dict[str, str] = {}  # layer name -> key in self.layers
        self._steps: list[LayerSpec] = [layer for layer in spec.layers if layer.type not in NOT_COMPUTED]
        shared: dict[str, nn.Parameter] = {}
        for layer in self._steps:
            module = build_layer(layer)
            for blob, share, lr_mult in zip(module.blob_names, layer.param_names, layer.lr_mults, strict=True):
                if share and share in shared:
                    setattr(module, blob, shared[share])  # Caffe's named ParamSpecs share one blob
                elif share:
                    shared[share] = getattr(module, blob)
                if lr_mult == 0:
                    getattr(module, blob).requires_grad_(False)
            key = _module_key(layer.name, set(self.layers.keys()))
            self.keys[layer.name] = key
            self.layers[key] = module
        self._deps = self._dependencies()
        self.train(spec.stage == "train")  # val and deploy are Caffe's TEST phase: no dropout, global BN stats

    def _dependencies(self) -> list[set[int]]:
        """For each step, the steps whose outputs it reads (in-place layers make a blob's writer change)."""
        writer: dict[str, int] = {}
        deps = []
        for i, layer in enumerate(self._steps):
            deps.append({writer[b] for b in layer.bottoms if b in writer})
            for top in layer.tops:
                writer[top] = i
        self._final_writer = writer
        return deps

    def _plan(self, blobs: list[str]) -> list[int]:
        """The steps needed to compute `blobs`, in prototxt order."""
        todo = [self._final_writer[b] for b in blobs if b in self._final_writer]
        needed: set[int] = set()
        while todo:
            step = todo.pop()
            if step not in needed:
                needed.add(step)
                todo.extend(self._deps[step])
        return sorted(needed)

    def _run(self, x: Tensor, steps: list[int] | None = None) -> dict[str, Tensor]:
        blobs = {self.spec.data_blob: x}
        for i in steps if steps is not None else range(len(self._steps)):
            layer = self._steps[i]
            if steps is None and any(b not in blobs for b in layer.bottoms):
                continue  # a loss on the label, or a second input: not fed when drawing every blob
            outputs = self.layers[self.keys[layer.name]](*[blobs[b] for b in layer.bottoms])
            blobs.update(zip(layer.tops, outputs, strict=True))
        return blobs

    def forward(self, x: Tensor) -> Tensor:
        """The logits (`spec.output_blob`) for a batch of (N, C, H, W) inputs, as (N, K)."""
        return _as_logits(self._run(x, self._plan([self.spec.output_blob]))[self.spec.output_blob])

    def forward_heads(self, x: Tensor) -> list[tuple[Tensor, float]]:
        """(logits, loss_weight) of every SoftmaxWithLoss head in one pass; the output blob with weight 1
        when the stage has no loss (deploy)."""
        heads = self.spec.loss_heads or [(self.spec.output_blob, 1.0)]
        blobs = self._run(x, self._plan([blob for blob, _ in heads]))
        return [(_as_logits(blobs[blob]), weight) for blob, weight in heads]

    def forward_blobs(self, x: Tensor) -> dict[str, Tensor]:
        """Every blob the layers compute, in order of first appearance (an in-place layer's output replaces
        its input), starting with the input; for layer visualization."""
        return self._run(x)

    def layer(self, name: str) -> nn.Module:
        """The module of the layer called `name`."""
        return self.layers[self.keys[name]]

    def caffe_blobs(self, name: str) -> list[Tensor]:
        """A layer's blobs in Caffe's order (weights, bias; BatchNorm: mean, variance, factor)."""
        module = self.layer(name)
        return [getattr(module, n) for n in (*module.blob_names, *module.buffer_names)]

    def param_groups(self, base_lr: float, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups, one per (lr_mult, decay_mult); frozen (lr_mult 0) blobs are left out.

        Caffe's first `param {}` of a layer applies to its weights, the second to its bias.
        """
        groups: dict[tuple[float, float], dict] = {}
        seen: set[int] = set()
        for layer in self._steps:
            module = self.layer(layer.name)
            for blob, lr_mult, decay_mult in zip(module.blob_names, layer.lr_mults, layer.decay_mults, strict=True):
                param = getattr(module, blob)
                if id(param) in seen or not param.requires_grad:
                    continue
                seen.add(id(param))
                group = groups.setdefault(
                    (lr_mult, decay_mult),
                    {
                        "params": [],
                        "param_names": [],
                        "lr": base_lr * lr_mult,
                        "weight_decay": weight_decay * decay_mult,
                        "lr_mult": lr_mult,
                        "decay_mult": decay_mult,
                    },
                )
                group["params"].append(param)
                group["param_names"].append(f"{layer.name}.{blob}")
        return list(groups.values())


def build_net(text: str, *, input_shape: tuple[int, int, int], num_classes: int, stage: str = "train") -> CaffeNet:
    """Analyze a DIGITS prototxt for `stage` and build its module (parameters filled like Caffe's fillers)."""
    return CaffeNet(analyze(text, stage=stage, input_shape=input_shape, num_classes=num_classes))


__all__ = ["CaffeNet", "build_net"]
