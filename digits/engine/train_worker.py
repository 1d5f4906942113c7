"""The training worker: `python -m digits.engine.train_worker JOB_DIR --task train`.

Reads the dataset folder, builds the network, trains on the GPU when one is visible (CPU otherwise), and
speaks the task protocol; resumes from the latest snapshot in the job folder when there is one. A Caffe network
whose settings say caffe_engine=pycaffe trains on real Caffe instead (digits/engine/caffe_solver.py).
"""

# ruff: noqa: E402 - the collector is paused before the imports (below)

from __future__ import annotations

import gc

if __name__ == "__main__":
    # Importing torch, and torch._dynamo at the first optimizer, makes about a million long-lived objects that the
    # cyclic collector would walk again and again for nothing (a few tenths of a second before the first step).
    # It resumes once training starts (run_train), with these objects frozen out of its way.
    gc.disable()

import os
import sys

import torch

from digits.engine.augment import BatchTransform
from digits.engine.caffe_solver import run_pycaffe
from digits.engine.data import (
    PRELOAD_LIMIT_BYTES,
    LazySplit,
    StreamingSplit,
    decode_split,
    load_mean,
    split_bytes,
)
from digits.engine.export import snapshot_exporter
from digits.engine.finetune import start_from
from digits.engine.networks import (
    build_network,
    module_params_problem,
    network_crop,
    size_problem_before_building,
)
from digits.engine.solvers import make_optimizer
from digits.engine.trainer import Split, Trainer
from digits.folders.dataset import DatasetFolderError, db_name, open_dataset
from digits.folders.model import copy_dataset_essentials, latest_snapshot
from digits.job import is_job_id
from digits.model.best_epoch import tracker_for
from digits.model.lr_policy import LRPolicy
from digits.model.quotas import (
    optimizer_slots,
    snapshot_bytes,
    snapshot_files_bytes,
    snapshots_problem,
)
from digits.model.settings import TrainSettings, input_shape, iterations_per_epoch
from digits.worker_runtime import TaskFailed, WorkerContext, run_worker


def load_split(db_path: str, shape: tuple[int, int, int], transform: BatchTransform, device):
    """A split in memory when it fits (decoded once), else streamed from its LMDB."""
    if split_bytes(db_path, shape) > PRELOAD_LIMIT_BYTES:
        return StreamingSplit(db_path, device)
    return prepare_split(*decode_split(db_path), transform, device)


def prepare_split(
    images: torch.Tensor, labels: torch.Tensor, transform: BatchTransform, device, chunk: int = 4096
) -> Split:
    """Move a split to the device; transform it once when the transform is not random and memory allows."""
    images, labels = images.to(device), labels.to(device)
    if transform.random or images.numel() * 4 > PRELOAD_LIMIT_BYTES:
        return Split(images, labels)
    out = torch.cat([transform(images[i : i + chunk]) for i in range(0, len(images), chunk)])
    return Split(out, labels, transformed=True)


def planned_snapshots_problem(trainer: Trainer, s: TrainSettings, job_dir: str) -> str | None:
    """Why the snapshots this run will write do not fit in the model's snapshot quota, or None."""
    if s.max_snapshot_bytes is None:
        return None
    module = trainer.model.module
    params = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    buffers = sum(b.numel() for b in module.buffers())
    slots = optimizer_slots(s.framework, s.solver_type, s.momentum)
    return snapshots_problem(
        epochs=s.epochs,
        interval=s.snapshot_interval,
        per_snapshot=snapshot_bytes(params, buffers, trainable, slots, tensors=len(module.state_dict())),
        count=trainer.snapshots_left(),
        limit=s.max_snapshot_bytes,
        already=snapshot_files_bytes(job_dir),
        iters_per_epoch=trainer.iters_per_epoch,
    )


def open_job_dataset(ctx: WorkerContext):
    """The dataset folder of this model job: the job folder beside its own named by its dataset id."""
    dataset_id = (ctx.job.get("extra") or {}).get("dataset_id") or ""
    if not is_job_id(dataset_id):
        raise TaskFailed("this model names no dataset")
    try:
        dataset = open_dataset(os.path.join(os.path.dirname(ctx.job_dir), dataset_id))
    except DatasetFolderError as e:
        raise TaskFailed(str(e)) from None
    if not dataset.db("train"):
        raise TaskFailed(f"the dataset has no {db_name('train')} in {dataset.path}")
    return dataset


def resume_collector() -> None:
    """Turn the cyclic collector back on once training starts (paused while starting: see the imports)."""
    if not gc.isenabled():
        # Frozen without a collection first: that would walk every object once more (0.2 s) to free the few
        # thousand the imports left behind, a megabyte or two.
        gc.freeze()
        gc.enable()


def run_train(ctx: WorkerContext) -> str | None:
    s = TrainSettings.from_dict(ctx.args)
    torch.set_num_threads(os.cpu_count() or 1)
    # Training takes every core it can; a lower priority keeps the web process (live charts, pages) responsive.
    os.nice(5)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dataset = open_job_dataset(ctx)
    # The model keeps what it needs of its dataset (labels, image settings, mean): it classifies and downloads
    # without the dataset folder.
    copy_dataset_essentials(dataset, ctx.job_dir)
    if s.framework == "caffe" and s.caffe_engine == "pycaffe":
        if s.frozen_layers:
            # Said rather than passed over: a run that silently trained the layers it was told to keep would look
            # like one that kept them.
            raise TaskFailed(
                "Frozen layers are taken by the PyTorch compilation of a Caffe network; real Caffe (pycaffe) keeps a "
                "layer as it is when the network says lr_mult: 0 for its params, as in Caffe"
            )
        if s.best_monitor:
            ctx.reporter.log("best epoch and early stopping are kept by the PyTorch engine, not real Caffe", "warning")
        resume_collector()
        return run_pycaffe(ctx, s, dataset)
    with open(ctx.path(s.network_file), encoding="utf-8") as fh:
        text = fh.read()
    channels, height, width = dataset.shape
    crop = s.crop_size or network_crop(text, s.framework)
    shape = input_shape(dataset.image, crop if crop and (crop < height or crop < width) else None)
    num_classes = len(dataset.labels)
    build = dict(input_shape=shape, num_classes=num_classes)
    problem = size_problem_before_building(text, s.framework, **build, limit=s.max_model_params)
    if problem:
        raise TaskFailed(problem)
    torch.manual_seed(s.seed)
    net = build_network(text, s.framework, **build)
    problem = module_params_problem(net.module, s.max_model_params)
    if problem:
        raise TaskFailed(problem)
    # channels_last lets oneDNN (CPU) and cuDNN (GPU) pick their fastest convolutions.
    net.module.to(device, memory_format=torch.channels_last)
    start_from(net, s, ctx.job_dir, ctx.reporter.log)

    ctx.reporter.log(
        f"network {s.network_file} on {device}: input {shape}, {num_classes} classes, "
        f"{sum(p.numel() for p in net.module.parameters()):,} parameters"
    )
    mean = load_mean(dataset, s.use_mean)
    common = dict(
        in_shape=dataset.shape, mean=mean, crop=shape[1] if shape != dataset.shape else None, scale=net.input_scale
    )
    train_tf = BatchTransform(**common, mirror=net.mirror, aug=s.augmentation, train=True).to(device)
    # Whitening is per image and deterministic: validation and deployment apply it too.
    whitening = {"whitening": bool(s.augmentation.get("whitening"))}
    val_tf = BatchTransform(**common, mirror=False, aug=whitening, train=False).to(device)
    train = load_split(dataset.db("train"), dataset.shape, train_tf, device)
    val = None
    if dataset.db("val"):
        val = LazySplit(dataset.db("val"), lambda: load_split(dataset.db("val"), dataset.shape, val_tf, device))
    ctx.reporter.log(f"data: {len(train)} training and {len(val) if val else 0} validation images")

    batch = s.batch_size or net.batch_size or 64
    iters_per_epoch = iterations_per_epoch(len(train), batch * s.batch_accumulation)
    params = dict(s.lr_policy)
    policy = LRPolicy.from_form(params.pop("policy"), s.learning_rate, s.epochs * iters_per_epoch, **params)
    optimizer = make_optimizer(
        framework=s.framework,
        solver_type=s.solver_type,
        param_groups=net.param_groups(),
        lr=s.learning_rate,
        # Caffe's RMSProp has no momentum term; DIGITS' form still shows the field.
        momentum=None if s.solver_type == "RMSPROP" else s.momentum,
        weight_decay=s.weight_decay,
        rms_decay=s.rms_decay,
    )
    trainer = Trainer(
        model=net,
        optimizer=optimizer,
        policy=policy,
        train=train,
        val=val,
        train_transform=train_tf,
        val_transform=val_tf,
        sink=ctx.reporter,
        epochs=s.epochs,
        batch_size=batch,
        seed=s.seed,
        batch_accumulation=s.batch_accumulation,
        val_interval=s.val_interval,
        snapshot_interval=s.snapshot_interval,
        shuffle=s.shuffle,
        val_batch_size=net.val_batch_size,
        snapshot_dir=ctx.job_dir,
        device=device,
        autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
        extra_state={"framework": s.framework, "input_shape": list(shape), "labels": dataset.labels},
        on_snapshot=snapshot_exporter(net, shape, image_shape=dataset.shape, use_mean=s.use_mean, log=ctx.reporter.log),
        max_snapshot_bytes=s.max_snapshot_bytes,
        best=tracker_for(s),
    )
    resume_from = latest_snapshot(ctx.job_dir)
    if resume_from:
        trainer.load_snapshot(resume_from)
        ctx.reporter.log(f"resuming from {os.path.basename(resume_from)} (iteration {trainer.iteration})")
    problem = planned_snapshots_problem(trainer, s, ctx.job_dir)
    if problem:
        raise TaskFailed(problem)
    print(f"training {trainer.max_iter} iterations ({iters_per_epoch} per epoch, batch {batch})", file=sys.stderr)
    resume_collector()
    return trainer.run(lambda: ctx.abort_requested)


if __name__ == "__main__":
    run_worker(run_train)
