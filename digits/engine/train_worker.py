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

import torch

from digits.engine.caffe_solver import run_pycaffe
from digits.engine.data import LazySplit
from digits.engine.export import snapshot_exporter
from digits.engine.finetune import start_from
from digits.engine.run_setup import (
    build_image_network,
    image_transforms,
    load_split,
    open_job_dataset,
    resume_and_check,
    settings_trainer,
)
from digits.folders.model import copy_dataset_essentials
from digits.model.settings import TrainSettings
from digits.worker_runtime import TaskFailed, WorkerContext, run_worker


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
    net, shape = build_image_network(s, text, dataset, device)
    start_from(net, s, ctx.job_dir, ctx.reporter.log)
    ctx.reporter.log(
        f"network {s.network_file} on {device}: input {shape}, {len(dataset.labels)} classes, "
        f"{sum(p.numel() for p in net.module.parameters()):,} parameters"
    )
    train_tf, val_tf = image_transforms(s, dataset, net, shape, device)
    train = load_split(dataset.db("train"), dataset.shape, train_tf, device)
    val = None
    if dataset.db("val"):
        val = LazySplit(dataset.db("val"), lambda: load_split(dataset.db("val"), dataset.shape, val_tf, device))
    ctx.reporter.log(f"data: {len(train)} training and {len(val) if val else 0} validation images")
    trainer = settings_trainer(
        s,
        net,
        train,
        val,
        device=device,
        train_transform=train_tf,
        val_transform=val_tf,
        sink=ctx.reporter,
        snapshot_dir=ctx.job_dir,
        extra_state={"framework": s.framework, "input_shape": list(shape), "labels": dataset.labels},
        on_snapshot=snapshot_exporter(net, shape, image_shape=dataset.shape, use_mean=s.use_mean, log=ctx.reporter.log),
    )
    resume_and_check(trainer, s, ctx)
    resume_collector()
    return trainer.run(lambda: ctx.abort_requested)


if __name__ == "__main__":
    run_worker(run_train)
