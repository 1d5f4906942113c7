"""What every training run of a model job starts with, shared by the image training worker
(digits.engine.train_worker), the generic-data worker (digits.engine.generic_train) and the LR finder
(digits.engine.lr_finder): the dataset and its splits, the network built within the server's size limits, the
transforms, the solver and its schedule from the training settings, the Trainer they make, and the resume and
snapshot-quota checks before the first step."""

from __future__ import annotations

import os
import sys

import torch

from digits.engine.augment import BatchTransform
from digits.engine.data import PRELOAD_LIMIT_BYTES, StreamingSplit, decode_split, load_mean, split_bytes
from digits.engine.networks import (
    BuiltNetwork,
    build_network,
    module_params_problem,
    network_crop,
    size_problem_before_building,
)
from digits.engine.solvers import make_optimizer
from digits.engine.trainer import Split, Trainer
from digits.folders.dataset import DatasetFolder, DatasetFolderError, db_name, open_dataset
from digits.folders.model import latest_snapshot
from digits.job import is_job_id
from digits.model.best_epoch import tracker_for
from digits.model.lr_policy import LRPolicy
from digits.model.quotas import optimizer_slots, snapshot_bytes, snapshot_files_bytes, snapshots_problem
from digits.model.settings import TrainSettings, input_shape, iterations_per_epoch
from digits.worker_runtime import TaskFailed, WorkerContext


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


def build_image_network(s: TrainSettings, text: str, dataset: DatasetFolder, device) -> tuple[BuiltNetwork, tuple]:
    """The network of `text` for the dataset's images (a center crop when the settings or the network ask for a
    smaller input), checked against the server's size limit before and after it is built, seeded, on `device`
    in channels_last (oneDNN on CPU and cuDNN on GPU pick their fastest convolutions so); and its input shape."""
    channels, height, width = dataset.shape
    crop = s.crop_size or network_crop(text, s.framework)
    shape = input_shape(dataset.image, crop if crop and (crop < height or crop < width) else None)
    build = dict(input_shape=shape, num_classes=len(dataset.labels))
    problem = size_problem_before_building(text, s.framework, **build, limit=s.max_model_params)
    if problem:
        raise TaskFailed(problem)
    torch.manual_seed(s.seed)
    net = build_network(text, s.framework, **build)
    problem = module_params_problem(net.module, s.max_model_params)
    if problem:
        raise TaskFailed(problem)
    net.module.to(device, memory_format=torch.channels_last)
    return net, shape


def image_transforms(s: TrainSettings, dataset: DatasetFolder, net: BuiltNetwork, shape, device):
    """(train, val) transforms: mean, crop and scale for both; mirroring and augmentation for training only
    (whitening is per image and deterministic: validation and deployment apply it too)."""
    common = dict(
        in_shape=dataset.shape,
        mean=load_mean(dataset, s.use_mean),
        crop=shape[1] if shape != dataset.shape else None,
        scale=net.input_scale,
    )
    train_tf = BatchTransform(**common, mirror=net.mirror, aug=s.augmentation, train=True).to(device)
    whitening = {"whitening": bool(s.augmentation.get("whitening"))}
    val_tf = BatchTransform(**common, mirror=False, aug=whitening, train=False).to(device)
    return train_tf, val_tf


def make_solver(s: TrainSettings, net: BuiltNetwork) -> torch.optim.Optimizer:
    return make_optimizer(
        framework=s.framework,
        solver_type=s.solver_type,
        param_groups=net.param_groups(),
        lr=s.learning_rate,
        # Caffe's RMSProp has no momentum term; DIGITS' form still shows the field.
        momentum=None if s.solver_type == "RMSPROP" else s.momentum,
        weight_decay=s.weight_decay,
        rms_decay=s.rms_decay,
    )


def settings_trainer(s: TrainSettings, net: BuiltNetwork, train: Split, val, *, device, **fields) -> Trainer:
    """The Trainer of these settings (batch, epochs, intervals, seed, shuffle, solver and its lr schedule over the
    run, quota, best epoch) for `net` on `train`/`val`; `fields` give the rest (transforms, sink, snapshot_dir,
    exports) or replace a setting's value."""
    batch = s.batch_size or net.batch_size or 64
    iters_per_epoch = iterations_per_epoch(len(train), batch * s.batch_accumulation)
    params = dict(s.lr_policy)
    policy = LRPolicy.from_form(params.pop("policy"), s.learning_rate, s.epochs * iters_per_epoch, **params)
    values = dict(
        model=net,
        optimizer=make_solver(s, net),
        policy=policy,
        train=train,
        val=val,
        epochs=s.epochs,
        batch_size=batch,
        seed=s.seed,
        batch_accumulation=s.batch_accumulation,
        val_interval=s.val_interval,
        snapshot_interval=s.snapshot_interval,
        shuffle=s.shuffle,
        val_batch_size=net.val_batch_size,
        device=device,
        autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
        max_snapshot_bytes=s.max_snapshot_bytes,
        best=tracker_for(s),
    )
    values.update(fields)
    return Trainer(**values)


def resume_and_check(trainer: Trainer, s: TrainSettings, ctx: WorkerContext) -> None:
    """Resume from the job folder's latest snapshot when there is one, and fail before the first step when the
    snapshots still to come do not fit in the model's quota."""
    resume_from = latest_snapshot(ctx.job_dir)
    if resume_from:
        trainer.load_snapshot(resume_from)
        ctx.reporter.log(f"resuming from {os.path.basename(resume_from)} (iteration {trainer.iteration})")
    problem = planned_snapshots_problem(trainer, s, ctx.job_dir)
    if problem:
        raise TaskFailed(problem)
    print(
        f"training {trainer.max_iter} iterations ({trainer.iters_per_epoch} per epoch, batch {trainer.batch_size})",
        file=sys.stderr,
    )
