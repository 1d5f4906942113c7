"""The training loop. It calls a sink (progress, metric, lr, snapshot, log) and never names a consumer, so the
same loop serves the worker (protocol lines), the tests and the benchmarks.

The epoch's data order comes from a generator seeded by (seed, epoch); every other draw (dropout, augmentation)
from torch's global generator, whose state each snapshot keeps. A run resumed from a snapshot therefore takes
exactly the steps an uninterrupted run would.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from digits.engine.augment import BatchTransform
from digits.engine.solvers import set_learning_rate
from digits.folders.model import BEST_RECORD, epoch_label, label_of, remove_snapshot_files, snapshot_name
from digits.model.best_epoch import BestTracker
from digits.model.lr_policy import LRPolicy
from digits.model.quotas import (
    SNAPSHOT_OVERHEAD,
    TENSOR_OVERHEAD,
    snapshot_every,
    snapshot_files_bytes,
    snapshot_iterations,
    snapshot_refusal,
)
from digits.model.settings import iterations_per_epoch
from digits.store import write_json_atomic
from digits.worker_runtime import TaskFailed

REPORTS_PER_EPOCH = 10


class Sink(Protocol):
    def progress(self, fraction: float, epoch: float | None = None) -> None: ...
    def metric(
        self, phase: str, name: str, value: float, epoch: float | None = None, iteration: int | None = None
    ) -> None: ...
    def lr(self, value: float, epoch: float | None = None) -> None: ...
    def snapshot(self, epoch: float, path: str) -> None: ...
    def log(self, message: str, level: str = "info") -> None: ...


@dataclass
class Split:
    """A split in memory on the device: raw uint8 images (or already-transformed floats) and their labels."""

    images: torch.Tensor
    labels: torch.Tensor
    transformed: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images.index_select(0, idx), self.labels.index_select(0, idx)

    def prefetch(self, idx: torch.Tensor) -> None:
        """Nothing to do: everything is in memory already."""


class Model(Protocol):
    """What the loop needs of a network: the module, its loss heads, and its logits."""

    module: torch.nn.Module

    def heads(self, x: torch.Tensor) -> list[tuple[torch.Tensor, float]]: ...
    def logits(self, x: torch.Tensor) -> torch.Tensor: ...


def iteration_seed(seed: int, iteration: int) -> int:
    return (seed * 1_000_003 + iteration * 7_919 + 12_345) % (2**63 - 1)


def saved_bytes(state: Any) -> int:
    """About the bytes torch.save writes for a (nested) state dict: its tensors' data and their zip entries."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size() + TENSOR_OVERHEAD
    if isinstance(state, dict):
        return sum(saved_bytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(saved_bytes(v) for v in state)
    return 0


@dataclass
class Trainer:
    model: Model
    optimizer: torch.optim.Optimizer
    policy: LRPolicy
    train: Split
    val: Split | None
    train_transform: BatchTransform
    val_transform: BatchTransform
    sink: Sink
    epochs: int
    batch_size: int
    seed: int = 0
    batch_accumulation: int = 1
    val_interval: float = 1.0
    snapshot_interval: float = 1.0
    shuffle: bool = True
    val_batch_size: int | None = None
    snapshot_dir: str | None = None
    device: torch.device = torch.device("cpu")
    autocast_dtype: torch.dtype | None = None
    extra_state: dict[str, Any] | None = None
    # Called after each snapshot is written, with (epoch, path): the worker exports a deployable model there.
    on_snapshot: Callable[[float, str], None] | None = None
    # The most bytes this model's snapshot files may take together (the server's max_snapshot_bytes); None: no limit.
    max_snapshot_bytes: int | None = None
    # Generic data with a numeric target (digits.engine.generic_data): mean squared error is the loss, and
    # validation reports it as loss with the mean absolute error beside it, instead of accuracy.
    regression: bool = False
    # Best epoch (digits/model/best_epoch.py): the best validation so far, a snapshot kept at it, and early stopping.
    best: BestTracker | None = None

    def __post_init__(self) -> None:
        self.iters_per_epoch = iterations_per_epoch(len(self.train), self.batch_size * self.batch_accumulation)
        self.max_iter = self.epochs * self.iters_per_epoch
        self.val_every = max(1, round(self.val_interval * self.iters_per_epoch))
        self.snapshot_every = snapshot_every(self.snapshot_interval, self.iters_per_epoch)
        self.report_every = max(1, self.iters_per_epoch // REPORTS_PER_EPOCH)
        self._perm_epoch = -1
        self._perm: torch.Tensor | None = None
        self.iteration = 0
        self._superseded: str | None = None  # a best snapshot kept only for being the best, now beaten

    # ---- data ------------------------------------------------------------------------------------------
    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            n = len(self.train)
            if self.shuffle:
                g = torch.Generator().manual_seed(iteration_seed(self.seed, -1 - epoch))
                self._perm = torch.randperm(n, generator=g).to(self.train.device)
            else:
                self._perm = torch.arange(n, device=self.train.device)
            self._perm_epoch = epoch
        return self._perm

    def _indices(self, iteration: int) -> list[torch.Tensor]:
        """The record indices of each batch of an iteration."""
        epoch, position = divmod(iteration, self.iters_per_epoch)
        perm = self._permutation(epoch)
        step = self.batch_size * self.batch_accumulation
        chunk = perm[position * step : (position + 1) * step]
        return [chunk[start : start + self.batch_size] for start in range(0, len(chunk), self.batch_size)]

    def _batches(self, iteration: int):
        batches = self._indices(iteration)
        if iteration + 1 < self.max_iter:  # a streamed split reads the next iteration's first batch meanwhile
            self.train.prefetch(self._indices(iteration + 1)[0])
        for idx in batches:
            x, y = self.train.take(idx)
            yield (x if self.train.transformed else self.train_transform(x)), y

    # ---- steps -----------------------------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def step(self, iteration: int) -> torch.Tensor:
        """One optimizer step (over batch_accumulation batches); returns the summed weighted loss (detached)."""
        self.model.module.train()
        lr = self.policy.lr_at(iteration)
        set_learning_rate(self.optimizer, lr)
        total = torch.zeros((), device=self.device)
        for x, y in self._batches(iteration):
            with self._autocast():
                heads = self.model.heads(x)
                loss = sum(w * self._loss(out.float(), y) for out, w in heads)
            (loss / self.batch_accumulation).backward()
            total += loss.detach() / self.batch_accumulation
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def _loss(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self.regression:
            return F.mse_loss(out.reshape(len(y), -1)[:, 0], y.float(), reduction=reduction)
        return F.cross_entropy(out, y, reduction=reduction)

    @torch.no_grad()
    def _validate_regression(self, should_abort: Callable[[], bool]) -> dict[str, float]:
        n, squared, absolute = 0, 0.0, 0.0
        batch = self.val_batch_size or self.batch_size
        for start in range(0, len(self.val), batch):
            if should_abort():
                return {}
            x, y = self.val.take(torch.arange(start, min(start + batch, len(self.val)), device=self.val.device))
            if not self.val.transformed:
                x = self.val_transform(x)
            with self._autocast():
                predicted = self.model.logits(x).float().reshape(len(y), -1)[:, 0]
            squared += F.mse_loss(predicted, y.float(), reduction="sum").item()
            absolute += F.l1_loss(predicted, y.float(), reduction="sum").item()
            n += len(y)
        return {"loss": squared / n, "mae": absolute / n}

    @torch.no_grad()
    def validate(self, should_abort: Callable[[], bool] = lambda: False) -> dict[str, float]:
        """Loss and accuracy on the validation split (loss = MSE and MAE for regression); {} when an abort comes
        first (it cannot wait a pass)."""
        self.model.module.eval()
        if self.regression:
            return self._validate_regression(should_abort)
        n, loss_sum, top1, top5, classes = 0, 0.0, 0, 0, 0
        batch = self.val_batch_size or self.batch_size
        for start in range(0, len(self.val), batch):
            if should_abort():
                return {}
            x, y = self.val.take(torch.arange(start, min(start + batch, len(self.val)), device=self.val.device))
            if not self.val.transformed:
                x = self.val_transform(x)
            with self._autocast():
                logits = self.model.logits(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            classes = logits.shape[1]
            k = min(5, classes)
            best = logits.topk(k, dim=1).indices
            top1 += (best[:, 0] == y).sum().item()
            top5 += (best == y[:, None]).any(dim=1).sum().item()
            n += len(y)
        out = {"loss": loss_sum / n, "accuracy": top1 / n}
        if classes > 5:
            out["top5"] = top5 / n  # "top5", not "accuracy_top5": clients look for "accuracy" as top-1
        return out

    # ---- snapshots -------------------------------------------------------------------------------------
    def snapshots_left(self) -> int:
        """Snapshots the rest of the run writes (one each interval and one at the end; an abort adds one)."""
        # Tracking the best keeps one more between intervals at most (an older one goes when a new best comes).
        extra = 1 if self.best is not None and self.val_every % self.snapshot_every else 0
        return snapshot_iterations(self.max_iter, self.snapshot_every, start=self.iteration) + extra

    def _check_snapshot_room(self, state: dict[str, Any], name: str, epoch: float) -> None:
        """Fail before writing a snapshot that would take this model's snapshots past the quota."""
        if self.max_snapshot_bytes is None:
            return
        used = snapshot_files_bytes(self.snapshot_dir or ".", skip=(name,))  # a snapshot rewritten replaces itself
        after = used + saved_bytes(state) + SNAPSHOT_OVERHEAD
        refusal = snapshot_refusal(epoch_label(epoch), after, self.max_snapshot_bytes)
        if refusal:
            raise TaskFailed(refusal)

    def save_snapshot(self, iteration: int) -> str:
        epoch = iteration / self.iters_per_epoch
        name = snapshot_name(epoch)
        state = {
            "format": 1,
            "iteration": iteration,
            "epoch": epoch,
            "model": self.model.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_policy": self.policy.to_dict(),
            "seed": self.seed,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            **(self.extra_state or {}),
        }
        if self.best is not None:
            state["best"] = self.best.to_dict()
        self._check_snapshot_room(state, name, epoch)
        path = os.path.join(self.snapshot_dir or ".", name)
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)
        if self.on_snapshot is not None:
            self.on_snapshot(epoch, path)
        self.sink.snapshot(int(epoch) if float(epoch).is_integer() else round(epoch, 4), name)
        return path

    def load_snapshot(self, path: str) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = int(state["iteration"])
        if self.best is not None and isinstance(state.get("best"), dict):
            kept = BestTracker.from_dict(state["best"])
            if kept.monitor == self.best.monitor:  # the tracking goes on; the settings' patience and delta rule
                for name in ("value", "epoch", "snapshot", "snapshot_extra", "since"):
                    setattr(self.best, name, getattr(kept, name))
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        self.sink.log(f"resumed from {os.path.basename(path)} (iteration {self.iteration} of {self.max_iter})")

    # ---- the loop --------------------------------------------------------------------------------------
    def run(self, should_abort: Callable[[], bool] = lambda: False) -> str:
        """Train from self.iteration to the end; returns "Done" or "Aborted" (after writing a snapshot)."""
        running, count = torch.zeros((), device=self.device), 0
        check_every_step = self.device.type == "cpu"  # a .item() per step would stall a GPU
        it = self.iteration
        while it < self.max_iter:
            if should_abort():
                self.save_snapshot(it)
                return "Aborted"
            loss = self.step(it)
            it += 1
            self.iteration = it
            running += loss
            count += 1
            if check_every_step and not math.isfinite(loss.item()):
                raise TaskFailed(f"loss became NaN at iteration {it}; try a lower learning rate")
            epoch = it / self.iters_per_epoch
            if it % self.report_every == 0 or it == self.max_iter:
                value = (running / count).item()
                if not math.isfinite(value):
                    raise TaskFailed(f"loss became NaN at iteration {it}; try a lower learning rate")
                self.sink.metric("train", "loss", value, epoch=epoch, iteration=it)
                self.sink.lr(self.policy.lr_at(it - 1), epoch=epoch)
                self.sink.progress(it / self.max_iter, epoch=epoch)
                running, count = torch.zeros((), device=self.device), 0
            keep, stop = False, False
            if self.val is not None and (it % self.val_every == 0 or it == self.max_iter):
                values = self.validate(should_abort)
                for name, value in values.items():
                    self.sink.metric("val", name, value, epoch=epoch, iteration=it)
                if self.best is not None:
                    keep, stop = self._track_best(values, it)
            if keep or stop or it % self.snapshot_every == 0 or it == self.max_iter:
                self.save_snapshot(it)
                if self._superseded:
                    remove_snapshot_files(self.snapshot_dir or ".", self._superseded)
                    self._superseded = None
            if stop:
                return "Done"
        return "Done"

    # ---- best epoch and early stopping -----------------------------------------------------------------
    def _track_best(self, values: dict[str, float], it: int) -> tuple[bool, bool]:
        """Update the best with one validation's values and record it; (keep a snapshot now, stop early)."""
        epoch = it / self.iters_per_epoch
        best = self.best
        improved = best.update(values, epoch)
        if improved is None:
            return False, False
        at_interval = it % self.snapshot_every == 0 or it == self.max_iter
        if improved:
            if best.snapshot_extra and best.snapshot != snapshot_name(epoch):
                self._superseded = label_of(best.snapshot)
            best.snapshot, best.snapshot_extra = snapshot_name(epoch), not at_interval
        stop = best.should_stop() and it < self.max_iter
        if stop:
            reason = best.stop_reason(epoch)
            best.stopped = {"epoch": round(epoch, 4), "reason": reason}
            self.sink.log(reason)
        # Written before the snapshot, whose event refreshes the page that reads it.
        write_json_atomic(os.path.join(self.snapshot_dir or ".", BEST_RECORD), best.record())
        return bool(improved) and not at_interval, stop
