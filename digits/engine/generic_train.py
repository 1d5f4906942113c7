"""The training worker of models over generic data: `python -m digits.engine.generic_train JOB_DIR --task train`.

The same loop, protocol, snapshots and resume as the image worker (digits.engine.train_worker), fed by a generic
dataset folder (digits.engine.generic_data): rows of features normalized by the training split's mean and std,
cross-entropy on a label or mean squared error on a numeric target (Trainer.regression).
"""

from __future__ import annotations

import os

import torch

from digits.engine.generic_data import build_generic_network, load_generic_split
from digits.engine.networks import module_params_problem
from digits.engine.run_setup import resume_and_check, settings_trainer
from digits.folders.generic import GenericFolderError, copy_generic_essentials, open_generic
from digits.job import is_job_id
from digits.model.settings import TrainSettings
from digits.worker_runtime import TaskFailed, WorkerContext, run_worker

# The train task's argument beside the TrainSettings: what build_model is given beyond the dataset's numbers
# (the MLP's hidden_sizes and dropout).
NETWORK_OPTIONS = "network_options"


def identity(x: torch.Tensor) -> torch.Tensor:
    return x  # tabular rows are normalized once, when loaded: nothing is drawn at random per batch


def open_job_generic(ctx: WorkerContext):
    """The generic dataset this model job names, beside the job's own folder."""
    dataset_id = (ctx.job.get("extra") or {}).get("dataset_id") or ""
    if not is_job_id(dataset_id):
        raise TaskFailed("this model names no dataset")
    try:
        return open_generic(os.path.join(os.path.dirname(ctx.job_dir), dataset_id))
    except GenericFolderError as e:
        raise TaskFailed(str(e)) from None


def run_generic_train(ctx: WorkerContext) -> str | None:
    s = TrainSettings.from_dict(ctx.args)
    torch.set_num_threads(os.cpu_count() or 1)
    os.nice(5)  # as the image worker: the web process stays responsive
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dataset = open_job_generic(ctx)
    if s.framework == "caffe" and s.caffe_engine == "pycaffe":
        raise TaskFailed("generic data trains on the PyTorch engine (its compilation of a Caffe network) only")
    if s.framework == "caffe" and dataset.problem == "regression":
        raise TaskFailed("a Caffe network trains on a classification dataset only; use the MLP or a PyTorch network")
    copy_generic_essentials(dataset, ctx.job_dir)
    with open(ctx.path(s.network_file), encoding="utf-8") as fh:
        text = fh.read()
    torch.manual_seed(s.seed)
    net = build_generic_network(
        text,
        s.framework,
        num_features=dataset.num_features,
        num_outputs=dataset.num_outputs,
        options=ctx.args.get(NETWORK_OPTIONS) or {},
    )
    problem = module_params_problem(net.module, s.max_model_params)
    if problem:
        raise TaskFailed(problem)
    net.module.to(device)
    train = load_generic_split(dataset, "train", s.framework, device)
    val = load_generic_split(dataset, "val", s.framework, device) if dataset.has("val") else None
    ctx.reporter.log(
        f"network {s.network_file} on {device}: {dataset.num_features} features, "
        f"{dataset.num_outputs} output(s) ({dataset.problem}), "
        f"{sum(p.numel() for p in net.module.parameters()):,} parameters; "
        f"{len(train)} training and {len(val) if val else 0} validation rows"
    )
    trainer = settings_trainer(
        s,
        net,
        train,
        val,
        device=device,
        train_transform=identity,
        val_transform=identity,
        sink=ctx.reporter,
        snapshot_dir=ctx.job_dir,
        autocast_dtype=None,
        extra_state={
            "framework": s.framework,
            "num_features": dataset.num_features,
            "problem": dataset.problem,
            "labels": dataset.labels,
        },
        regression=dataset.problem == "regression",
    )
    resume_and_check(trainer, s, ctx)
    return trainer.run(lambda: ctx.abort_requested)


if __name__ == "__main__":
    run_worker(run_generic_train)
