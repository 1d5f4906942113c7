"""Real Caffe (pycaffe) as a training engine for `framework=caffe` jobs whose settings say caffe_engine=pycaffe.

Caffe's own Solver trains the network: the job's train and val stages are written as plain prototxt
(train.prototxt, val.prototxt: stage rules applied, num_output filled in) with a solver.prototxt from the form,
and `solver.step(1)` is driven from here. The data layer becomes an Input layer fed from Python with the batches
the PyTorch engine would see (same decoding, mean, crop, mirror, augmentation, order): this Caffe is built
without OpenCV, so its Data layer cannot decode the PNG/JPEG records DIGITS datasets hold by default, and the two
engines then differ only in the network's arithmetic and the solver.

Metrics go through the protocol as the PyTorch trainer sends them (train loss about ten times an epoch, val
outputs each validation, lr, progress). Each snapshot is Caffe's .caffemodel + .solverstate (a resumed run
restores the latest) and the same weights as our compilation's .pt and deployable export, so classifying,
downloads and every page work as for a model trained on torch.

A failed Caffe CHECK aborts the process: this runs only in the training worker, never in the web process.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from digits.engine.augment import BatchTransform
from digits.engine.caffe.caffemodel import save_caffemodel
from digits.engine.caffe_prototxt import solver_prototxt, stage_prototxt, write_text
from digits.engine.caffe_real import CaffeUnavailable, import_caffe
from digits.engine.data import PRELOAD_LIMIT_BYTES, StreamingSplit, decode_split, load_mean, split_bytes
from digits.engine.export import snapshot_exporter
from digits.engine.finetune import start_from
from digits.engine.networks import BuiltNetwork, build_network, network_crop
from digits.engine.trainer import REPORTS_PER_EPOCH, Split, iteration_seed
from digits.folders.dataset import DatasetFolder
from digits.folders.model import CAFFE_NETS, caffe_snapshot_names, epoch_label, latest_solverstate, snapshot_name
from digits.model.lr_policy import LRPolicy
from digits.model.quotas import SNAPSHOT_OVERHEAD, snapshot_every, snapshot_refusal
from digits.model.settings import TrainSettings, input_shape, iterations_per_epoch
from digits.worker_runtime import TaskFailed, WorkerContext

SNAPSHOT_PREFIX = ".caffe-snapshot"  # Caffe writes <prefix>_iter_<N>.*; they are renamed at once


def _load_split(db_path: str, shape: tuple[int, int, int]) -> Split | StreamingSplit:
    """A split in memory when it fits (decoded once), else streamed from its LMDB (on the CPU: Caffe's side)."""
    if split_bytes(db_path, shape) > PRELOAD_LIMIT_BYTES:
        return StreamingSplit(db_path, torch.device("cpu"))
    return Split(*decode_split(db_path))


def _feed(net, data_blob: str, label_blob: str, x: torch.Tensor, y: torch.Tensor) -> None:
    """Put a batch into a net's Input blobs (reshaped when the batch is short: Caffe reshapes the layers after)."""
    images = np.ascontiguousarray(x.float().contiguous().numpy())
    labels = y.numpy().astype(np.float32)
    if net.blobs[data_blob].data.shape != images.shape:
        net.blobs[data_blob].reshape(*images.shape)
        net.blobs[label_blob].reshape(len(labels))
    net.blobs[data_blob].data[...] = images
    net.blobs[label_blob].data[...] = labels


class CaffeRun:
    """One pycaffe training run of a model job: its nets and solver, its data, and the loop."""

    def __init__(self, ctx: WorkerContext, s: TrainSettings, dataset: DatasetFolder, caffe) -> None:
        self.ctx, self.s, self.caffe = ctx, s, caffe
        self.sink = ctx.reporter
        with open(ctx.path(s.network_file), encoding="utf-8") as fh:
            text = fh.read()
        channels, height, width = dataset.shape
        crop = s.crop_size or network_crop(text, "caffe")
        self.shape = input_shape(dataset.image, crop if crop and (crop < height or crop < width) else None)
        self.labels = dataset.labels
        num_classes = len(self.labels)
        # Our compilation of the same network: its defaults (batch, scale, mirror) and the .pt each snapshot
        # keeps for classifying and downloads.
        self.built: BuiltNetwork = build_network(text, "caffe", input_shape=self.shape, num_classes=num_classes)
        mean = load_mean(dataset, s.use_mean)
        cropped = self.shape[1] if self.shape != dataset.shape else None
        common = dict(in_shape=dataset.shape, mean=mean, crop=cropped, scale=self.built.input_scale)
        self.train_tf = BatchTransform(**common, mirror=self.built.mirror, aug=s.augmentation, train=True)
        whitening = {"whitening": bool(s.augmentation.get("whitening"))}
        self.val_tf = BatchTransform(**common, mirror=False, aug=whitening, train=False)
        self.train = _load_split(dataset.db("train"), dataset.shape)
        self.val = _load_split(dataset.db("val"), dataset.shape) if dataset.db("val") else None
        # Caffe's iter_size would forward the same fed batch again: accumulation is one larger batch instead.
        self.batch = (s.batch_size or self.built.batch_size or 64) * s.batch_accumulation
        self.val_batch = self.built.val_batch_size or self.batch
        self.iters_per_epoch = iterations_per_epoch(len(self.train), self.batch)
        self.max_iter = s.epochs * self.iters_per_epoch
        params = dict(s.lr_policy)
        self.policy = LRPolicy.from_form(params.pop("policy"), s.learning_rate, self.max_iter, **params)

        job = ctx.job_dir
        train_text, self.data_blob, self.label_blob = stage_prototxt(
            text, "train", shape=self.shape, num_classes=num_classes, batch=self.batch
        )
        train_net = write_text(os.path.join(job, CAFFE_NETS["train"]), train_text)
        self.prefix = os.path.join(job, SNAPSHOT_PREFIX)
        solver_file = write_text(
            os.path.join(job, CAFFE_NETS["solver"]), solver_prototxt(s, self.policy, train_net, self.prefix)
        )
        self.solver = caffe.get_solver(solver_file)
        self.net = self.solver.net
        self.val_net = None
        if self.val is not None:
            val_text, self.val_data, self.val_label = stage_prototxt(
                text, "val", shape=self.shape, num_classes=num_classes, batch=self.val_batch
            )
            val_file = write_text(os.path.join(job, CAFFE_NETS["val"]), val_text)
            self.val_net = caffe.Net(val_file, caffe.TEST)
            self.val_net.share_with(self.net)  # one set of weights: the solver's updates are the val net's
        self.losses = {name: w for name, w in self.net.blob_loss_weights.items() if w and name in self.net.outputs}
        self.val_every = max(1, round(s.val_interval * self.iters_per_epoch))
        self.snapshot_every = snapshot_every(s.snapshot_interval, self.iters_per_epoch)
        self.report_every = max(1, self.iters_per_epoch // REPORTS_PER_EPOCH)
        self.export = snapshot_exporter(
            self.built, self.shape, image_shape=dataset.shape, use_mean=s.use_mean, log=self.sink.log
        )
        self._perm_epoch, self._perm = -1, torch.arange(0)
        self._snapshot_bytes: int | None = None  # what the last snapshot's files took

    def start_from_weights(self) -> None:
        """Start from the settings' weights as the PyTorch engine does (by layer name; renamed or reshaped layers
        keep their fillers; the record kept for the model page): loaded into our compilation, then handed to the
        solver's net as a .caffemodel of the very same network, which Caffe copies layer by layer."""
        start_from(self.built, self.s, self.ctx.job_dir, self.sink.log)
        path = os.path.join(self.ctx.job_dir, "start.caffemodel.tmp")
        save_caffemodel(self.built.module, path)
        try:
            self.net.copy_from(path)
        finally:
            os.remove(path)

    # ---- data ------------------------------------------------------------------------------------------
    def _batch_indices(self, iteration: int) -> torch.Tensor:
        """The records of an iteration: the epoch's order (seeded by seed and epoch, as the torch trainer's)."""
        epoch, position = divmod(iteration, self.iters_per_epoch)
        if epoch != self._perm_epoch:
            n = len(self.train)
            if self.s.shuffle:
                g = torch.Generator().manual_seed(iteration_seed(self.s.seed, -1 - epoch))
                self._perm = torch.randperm(n, generator=g)
            else:
                self._perm = torch.arange(n)
            self._perm_epoch = epoch
        return self._perm[position * self.batch : (position + 1) * self.batch]

    def _train_batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.train.take(self._batch_indices(iteration))
        return self.train_tf(x), y

    # ---- steps -----------------------------------------------------------------------------------------
    def step(self, iteration: int) -> float:
        """One solver iteration on the fed batch; returns its weighted loss (what Caffe's solver minimizes)."""
        x, y = self._train_batch(iteration)
        _feed(self.net, self.data_blob, self.label_blob, x, y)
        self.solver.step(1)
        return sum(float(self.net.blobs[name].data) * weight for name, weight in self.losses.items())

    def validate(self, should_abort: Callable[[], bool]) -> dict[str, float]:
        """Every scalar output of the val net (loss, accuracy, ...), averaged over the whole val split by images;
        {} when an abort comes first."""
        sums: dict[str, float] = {}
        n = 0
        for start in range(0, len(self.val), self.val_batch):
            if should_abort():
                return {}
            x, y = self.val.take(torch.arange(start, min(start + self.val_batch, len(self.val))))
            _feed(self.val_net, self.val_data, self.val_label, self.val_tf(x), y)
            out = self.val_net.forward()
            for name, value in out.items():
                if np.size(value) == 1:
                    sums[name] = sums.get(name, 0.0) + float(value) * len(y)
            n += len(y)
        return {name: total / n for name, total in sums.items()}

    # ---- snapshots -------------------------------------------------------------------------------------
    def _check_snapshot_room(self, label: str, epoch: float) -> None:
        """Fail before writing a snapshot that would take this model's snapshot files past the quota (the
        server's max_snapshot_bytes): Caffe's two files and the .pt, each about the weights' size or more."""
        limit = self.s.max_snapshot_bytes
        if limit is None:
            return
        mine = {snapshot_name(float(label)), *caffe_snapshot_names(label)}  # a snapshot rewritten replaces itself
        used = 0
        for entry in os.scandir(self.ctx.job_dir):
            if entry.name.startswith("snapshot_epoch_") and entry.name not in mine and entry.is_file():
                used += entry.stat().st_size
        weights = sum(blob.data.nbytes for blobs in self.net.params.values() for blob in blobs)
        after = used + (self._snapshot_bytes or 4 * weights + SNAPSHOT_OVERHEAD)
        refusal = snapshot_refusal(epoch_label(epoch), after, limit)
        if refusal:
            raise TaskFailed(refusal)

    def save_snapshot(self, iteration: int) -> None:
        """Caffe's .caffemodel + .solverstate for this epoch, and the same weights as our engine's .pt."""
        from caffe.proto import caffe_pb2  # pycaffe's own protobuf classes, loaded with caffe

        epoch = iteration / self.iters_per_epoch
        label = epoch_label(epoch)
        job = self.ctx.job_dir
        self._check_snapshot_room(label, epoch)
        weights, state_name = caffe_snapshot_names(label)
        self.solver.snapshot()
        written = f"{self.prefix}_iter_{self.solver.iter}"
        os.replace(written + ".caffemodel", os.path.join(job, weights))
        state = caffe_pb2.SolverState()
        with open(written + ".solverstate", "rb") as fh:
            state.ParseFromString(fh.read())
        # Caffe names the weights by the path it wrote; the job folder may move, so the name alone (restore
        # runs in the job folder).
        state.learned_net = weights
        with open(os.path.join(job, state_name) + ".tmp", "wb") as fh:
            fh.write(state.SerializeToString())
        os.replace(os.path.join(job, state_name) + ".tmp", os.path.join(job, state_name))
        os.remove(written + ".solverstate")

        path = os.path.join(job, snapshot_name(epoch))
        torch.save(self._torch_state(iteration, epoch), path + ".tmp")
        os.replace(path + ".tmp", path)
        self.export(epoch, path)
        self._snapshot_bytes = sum(os.path.getsize(os.path.join(job, n)) for n in (weights, state_name)) + (
            os.path.getsize(path)
        )
        self.sink.snapshot(int(epoch) if float(epoch).is_integer() else round(epoch, 4), os.path.basename(path))

    def _torch_state(self, iteration: int, epoch: float) -> dict[str, Any]:
        """Caffe's weights in our compilation of the network, by layer name (blobs in Caffe's order)."""
        module = self.built.module
        with torch.no_grad():
            for name, blobs in self.net.params.items():
                for tensor, blob in zip(module.caffe_blobs(name), blobs, strict=True):
                    tensor.copy_(torch.from_numpy(np.array(blob.data)).reshape(tensor.shape))
        return {
            "format": 1,
            "engine": "pycaffe",
            "iteration": iteration,
            "epoch": epoch,
            "model": module.state_dict(),
            "lr_policy": self.policy.to_dict(),
            "seed": self.s.seed,
            "framework": "caffe",
            "input_shape": list(self.shape),
            "labels": self.labels,
        }

    def restore(self, path: str) -> int:
        """Restore Caffe's solver (weights, history, iteration) from a .solverstate of this job folder."""
        here = os.getcwd()
        os.chdir(self.ctx.job_dir)  # the state names its .caffemodel relative to the job folder
        try:
            self.solver.restore(os.path.basename(path))
        finally:
            os.chdir(here)
        return int(self.solver.iter)

    # ---- the loop --------------------------------------------------------------------------------------
    def run(self, should_abort: Callable[[], bool]) -> str:
        """Train to max_iter; "Done", or "Aborted" after writing a snapshot."""
        it = int(self.solver.iter)
        running, count = 0.0, 0
        while it < self.max_iter:
            if should_abort():
                self.save_snapshot(it)
                return "Aborted"
            loss = self.step(it)
            it += 1
            running += loss
            count += 1
            if not math.isfinite(loss):
                raise TaskFailed(f"loss became NaN at iteration {it}; try a lower learning rate")
            epoch = it / self.iters_per_epoch
            if it % self.report_every == 0 or it == self.max_iter:
                self.sink.metric("train", "loss", running / count, epoch=epoch, iteration=it)
                self.sink.lr(self.policy.lr_at(it - 1), epoch=epoch)
                self.sink.progress(it / self.max_iter, epoch=epoch)
                running, count = 0.0, 0
            if self.val_net is not None and (it % self.val_every == 0 or it == self.max_iter):
                for name, value in self.validate(should_abort).items():
                    self.sink.metric("val", name, value, epoch=epoch, iteration=it)
            if it % self.snapshot_every == 0 or it == self.max_iter:
                self.save_snapshot(it)
        return "Done"


def run_pycaffe(ctx: WorkerContext, s: TrainSettings, dataset: DatasetFolder) -> str:
    """Train a model job on real Caffe; returns the final status ("Done" or "Aborted")."""
    try:
        caffe = import_caffe()
    except CaffeUnavailable as e:
        raise TaskFailed(f"the pycaffe engine is not available here: {e}") from None
    run = CaffeRun(ctx, s, dataset, caffe)
    resume_from = latest_solverstate(ctx.job_dir)
    if resume_from:
        iteration = run.restore(resume_from)
        ctx.reporter.log(f"resuming from {os.path.basename(resume_from)} (iteration {iteration} of {run.max_iter})")
    elif s.pretrained:
        run.start_from_weights()
    ctx.reporter.log(
        f"real Caffe {caffe.__version__} (pycaffe, CPU) trains {s.network_file}: input {run.shape}, "
        f"{len(run.labels)} classes, {run.max_iter} iterations ({run.iters_per_epoch} per epoch, batch {run.batch}), "
        f"{len(run.train)} training and {len(run.val) if run.val else 0} validation images"
    )
    try:
        return run.run(lambda: ctx.abort_requested)
    finally:
        # The solver's nets hold Caffe's threads and buffers: let them go before the process reports done.
        del run.solver, run.net, run.val_net


__all__ = ["CaffeRun", "run_pycaffe"]
