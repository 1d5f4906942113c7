"""Optimizers for DIGITS' solver types, either PyTorch's own or Caffe's update rules re-implemented in torch.

A Caffe network trained with framework "caffe" should follow Caffe's arithmetic (the learning rate sits inside
the momentum buffer, Adam's epsilon is not bias-corrected, ...), so a schedule that worked in DIGITS works here.
Networks written for PyTorch get PyTorch's optimizers, which is what their authors tuned them with.

Per-group "lr_mult" and "decay_mult" (from Caffe `param { lr_mult: 2 }` blocks) stay in the param groups; the
group's lr is always base lr * lr_mult, kept so by `set_learning_rate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

SOLVER_TYPES = ("SGD", "NESTEROV", "ADAGRAD", "RMSPROP", "ADADELTA", "ADAM")
FRAMEWORKS = ("torch", "caffe")
# Caffe's AdaDelta needs a larger delta than the others (its own example uses 1e-6, as does torch.optim).
DEFAULT_DELTA = {"ADADELTA": 1e-6}
# RMSProp takes no momentum in Caffe and none by default in DIGITS; the others default to DIGITS' 0.9.
DEFAULT_MOMENTUM = {"RMSPROP": 0.0}


class CaffeOptimizer(torch.optim.Optimizer):
    """Base for Caffe's solvers: L2 regularization (g = grad + weight_decay * w), then one rule per parameter."""

    def __init__(self, params: Iterable[Any], *, lr: float, weight_decay: float = 0.0, **hyper: float) -> None:
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0 (got {lr})")
        if weight_decay < 0:
            raise ValueError(f"weight decay must be >= 0 (got {weight_decay})")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, **hyper})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                grad = param.grad
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                self._update(param, grad, self.state[param], group)
        return loss

    def _update(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def _buffer(state: dict[str, Any], name: str, param: torch.Tensor) -> torch.Tensor:
        if name not in state:
            state[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state[name]


class CaffeSGD(CaffeOptimizer):
    """v = momentum * v + lr * g; w -= v. Unlike torch.optim.SGD, a new lr only affects new gradients."""

    def __init__(self, params: Iterable[Any], *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, momentum=momentum)

    def _update(self, param, grad, state, group) -> None:
        history = self._buffer(state, "history", param)
        history.mul_(group["momentum"]).add_(grad, alpha=group["lr"])
        param.sub_(history)


class CaffeNesterov(CaffeOptimizer):
    """v' = momentum * v + lr * g; w -= (1 + momentum) * v' - momentum * v."""

    def __init__(self, params: Iterable[Any], *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, momentum=momentum)

    def _update(self, param, grad, state, group) -> None:
        momentum = group["momentum"]
        history = self._buffer(state, "history", param)
        previous = history.clone()
        history.mul_(momentum).add_(grad, alpha=group["lr"])
        param.sub_(history * (1 + momentum) - previous * momentum)


class CaffeAdaGrad(CaffeOptimizer):
    """h += g^2; w -= lr * g / (sqrt(h) + delta)."""

    def __init__(self, params: Iterable[Any], *, lr: float, delta: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, delta=delta)

    def _update(self, param, grad, state, group) -> None:
        history = self._buffer(state, "history", param)
        history.addcmul_(grad, grad)
        param.addcdiv_(grad, history.sqrt().add_(group["delta"]), value=-group["lr"])


class CaffeRMSProp(CaffeOptimizer):
    """h = rms_decay * h + (1 - rms_decay) * g^2; w -= lr * g / (sqrt(h) + delta)."""

    def __init__(
        self,
        params: Iterable[Any],
        *,
        lr: float,
        rms_decay: float = 0.99,
        delta: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, rms_decay=rms_decay, delta=delta)

    def _update(self, param, grad, state, group) -> None:
        decay = group["rms_decay"]
        history = self._buffer(state, "history", param)
        history.mul_(decay).addcmul_(grad, grad, value=1 - decay)
        param.addcdiv_(grad, history.sqrt().add_(group["delta"]), value=-group["lr"])


class CaffeAdaDelta(CaffeOptimizer):
    """Caffe's AdaDelta with `momentum` as the decay of both running averages, and lr applied to the update."""

    def __init__(
        self, params: Iterable[Any], *, lr: float, momentum: float = 0.9, delta: float = 1e-6, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, momentum=momentum, delta=delta)

    def _update(self, param, grad, state, group) -> None:
        m, delta = group["momentum"], group["delta"]
        history = self._buffer(state, "history", param)
        update_history = self._buffer(state, "update_history", param)
        history.mul_(m).addcmul_(grad, grad, value=1 - m)
        update = grad * (update_history + delta).sqrt_() / (history + delta).sqrt_()
        update_history.mul_(m).addcmul_(update, update, value=1 - m)
        param.sub_(update, alpha=group["lr"])


class CaffeAdam(CaffeOptimizer):
    """Caffe's Adam: the bias correction scales the step, and epsilon is added to the uncorrected sqrt(v)."""

    def __init__(
        self,
        params: Iterable[Any],
        *,
        lr: float,
        momentum: float = 0.9,
        momentum2: float = 0.999,
        delta: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, momentum=momentum, momentum2=momentum2, delta=delta)

    def _update(self, param, grad, state, group) -> None:
        beta1, beta2 = group["momentum"], group["momentum2"]
        # Caffe counts solver iterations; a per-parameter count is the same when every parameter gets a gradient.
        state["step"] = t = state.get("step", 0) + 1
        m = self._buffer(state, "m", param)
        v = self._buffer(state, "v", param)
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        correction = (1 - beta2**t) ** 0.5 / (1 - beta1**t)
        param.addcdiv_(m, v.sqrt().add_(group["delta"]), value=-group["lr"] * correction)


def make_optimizer(
    *,
    framework: str,
    solver_type: str,
    param_groups: Iterable[Any],
    lr: float,
    momentum: float | None = None,
    weight_decay: float = 0.0,
    rms_decay: float = 0.99,
    momentum2: float = 0.999,
    delta: float | None = None,
) -> torch.optim.Optimizer:
    """An optimizer for a DIGITS solver type; `framework` picks PyTorch's rules ("torch") or Caffe's ("caffe").

    `param_groups` is either parameters or dicts {"params": ..., "lr_mult": ..., "decay_mult": ...}; each
    group gets lr * lr_mult and weight_decay * decay_mult. `momentum` defaults to 0.9 (0 for RMSPROP), `delta`
    to 1e-8 (1e-6 for ADADELTA). For ADADELTA `momentum` is the decay rate; for ADAM it is beta1.
    """
    kind = str(solver_type).upper()
    if kind not in SOLVER_TYPES:
        raise ValueError(f"Unknown solver type {solver_type!r} (known: {', '.join(SOLVER_TYPES)}).")
    if framework not in FRAMEWORKS:
        raise ValueError(f"Unknown framework {framework!r} (known: {', '.join(FRAMEWORKS)}).")
    momentum = DEFAULT_MOMENTUM.get(kind, 0.9) if momentum is None else momentum
    delta = DEFAULT_DELTA.get(kind, 1e-8) if delta is None else delta
    groups = _groups(param_groups, lr, weight_decay)
    if framework == "caffe":
        return _caffe_optimizer(kind, groups, lr, momentum, weight_decay, rms_decay, momentum2, delta)
    return _torch_optimizer(kind, groups, lr, momentum, weight_decay, rms_decay, momentum2, delta)


def set_learning_rate(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """Set every group's lr to base_lr * its lr_mult (what a schedule calls each iteration)."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group.get("lr_mult", 1.0)


def _groups(param_groups: Iterable[Any], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    items = list(param_groups)
    if not items or not all(isinstance(item, dict) for item in items):
        items = [{"params": items}]
    groups = []
    for item in items:
        if "lr" in item or "weight_decay" in item:
            # A fixed lr would be overwritten by the schedule; multipliers say what is meant and survive it.
            raise ValueError("give a param group lr_mult/decay_mult, not lr/weight_decay")
        group = dict(item)
        group.setdefault("lr_mult", 1.0)
        group.setdefault("decay_mult", 1.0)
        group["lr"] = lr * group["lr_mult"]
        group["weight_decay"] = weight_decay * group["decay_mult"]
        groups.append(group)
    return groups


def _caffe_optimizer(kind, groups, lr, momentum, weight_decay, rms_decay, momentum2, delta) -> CaffeOptimizer:
    if kind == "SGD":
        return CaffeSGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "NESTEROV":
        return CaffeNesterov(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "ADAGRAD":
        return CaffeAdaGrad(groups, lr=lr, delta=delta, weight_decay=weight_decay)
    if kind == "RMSPROP":
        if momentum:
            raise ValueError("Caffe's RMSProp does not use momentum; set it to 0.")
        return CaffeRMSProp(groups, lr=lr, rms_decay=rms_decay, delta=delta, weight_decay=weight_decay)
    if kind == "ADADELTA":
        return CaffeAdaDelta(groups, lr=lr, momentum=momentum, delta=delta, weight_decay=weight_decay)
    return CaffeAdam(groups, lr=lr, momentum=momentum, momentum2=momentum2, delta=delta, weight_decay=weight_decay)


def _torch_optimizer(kind, groups, lr, momentum, weight_decay, rms_decay, momentum2, delta) -> torch.optim.Optimizer:
    optim = torch.optim
    if kind in ("SGD", "NESTEROV"):
        return optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=kind == "NESTEROV")
    if kind == "ADAGRAD":
        return optim.Adagrad(groups, lr=lr, eps=delta, weight_decay=weight_decay)
    if kind == "RMSPROP":
        return optim.RMSprop(groups, lr=lr, alpha=rms_decay, eps=delta, momentum=momentum, weight_decay=weight_decay)
    if kind == "ADADELTA":
        return optim.Adadelta(groups, lr=lr, rho=momentum, eps=delta, weight_decay=weight_decay)
    return optim.Adam(groups, lr=lr, betas=(momentum, momentum2), eps=delta, weight_decay=weight_decay)
