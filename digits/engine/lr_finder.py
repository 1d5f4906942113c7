"""The LR finder's worker: `python -m digits.engine.lr_finder JOB_DIR --task lr_finder`.

Builds the network and reads the dataset as the training worker does, then takes up to one epoch of optimizer
steps with the learning rate growing exponentially from start_lr to end_lr (Leslie Smith's range test, as in
fastai's lr_find). The loss is smoothed (an exponential moving average, debiased); the ramp stops early once the
smoothed loss passes 4x its lowest or stops being finite. The points and the suggestion (digits/model/lr_finder.py
suggest_lr) go to lr_finder.json in the job folder, rewritten as the ramp goes, so the page can draw it. The
weights are thrown away: nothing else is written.
"""

from __future__ import annotations

import math
import os
import time

import torch

from digits.engine.run_setup import build_image_network, image_transforms, load_split, make_solver, open_job_dataset
from digits.engine.trainer import Split, Trainer
from digits.model.lr_finder import DIVERGE_FACTOR, RESULT_FILE, ramp_steps, smoothing, suggest_lr
from digits.model.lr_policy import LRPolicy
from digits.model.settings import TrainSettings, iterations_per_epoch
from digits.store import write_json_atomic
from digits.worker_runtime import WorkerContext, run_worker


class Ramp:
    """An exponential learning-rate ramp, read by the trainer's step as a policy."""

    def __init__(self, start: float, end: float, steps: int):
        self.start, self.end, self.steps = start, end, max(2, steps)

    def lr_at(self, iteration: int) -> float:
        return self.start * (self.end / self.start) ** (min(iteration, self.steps - 1) / (self.steps - 1))


def ramp(trainer: Trainer, schedule: Ramp, on_point=None, should_abort=lambda: False) -> dict:
    """Take the ramp's steps on `trainer`; returns {"points": [[lr, smoothed loss], ...], "stopped": why or None}."""
    points, avg, lowest = [], 0.0, math.inf
    beta = smoothing(schedule.steps)
    stopped = None
    for i in range(schedule.steps):
        if should_abort():
            stopped = "cancelled"
            break
        lr = schedule.lr_at(i)
        loss = trainer.step(i).item()
        if not math.isfinite(loss):
            stopped = f"the loss stopped being finite at lr {lr:.3g}"
            break
        avg = beta * avg + (1 - beta) * loss
        smoothed = avg / (1 - beta ** (i + 1))
        points.append([lr, smoothed])
        lowest = min(lowest, smoothed)
        if on_point is not None:
            on_point(i, points)
        if i > 0 and smoothed > DIVERGE_FACTOR * lowest:
            stopped = f"the loss diverged (over {DIVERGE_FACTOR:g}x its lowest) at lr {lr:.3g}"
            break
    return {"points": points, "stopped": stopped}


def build_trainer(ctx: WorkerContext, s: TrainSettings, device: torch.device) -> Trainer:
    """The network, data and optimizer a training run of these settings would start with (its first epoch, no
    validation, no snapshots: the ramp sets the rate)."""
    dataset = open_job_dataset(ctx)
    with open(ctx.path(s.network_file), encoding="utf-8") as fh:
        text = fh.read()
    net, shape = build_image_network(s, text, dataset, device)
    train_tf, _ = image_transforms(s, dataset, net, shape, device)
    train: Split = load_split(dataset.db("train"), dataset.shape, train_tf, device)
    return Trainer(
        model=net,
        optimizer=make_solver(s, net),
        policy=LRPolicy.from_form("fixed", s.learning_rate, 1),
        train=train,
        val=None,
        train_transform=train_tf,
        val_transform=train_tf,
        sink=ctx.reporter,
        epochs=1,
        batch_size=s.batch_size or net.batch_size or 64,
        seed=s.seed,
        batch_accumulation=s.batch_accumulation,
        shuffle=s.shuffle,
        device=device,
        autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
    )


def run_lr_finder(ctx: WorkerContext) -> str | None:
    args = ctx.args
    s = TrainSettings.from_dict(args)
    torch.set_num_threads(os.cpu_count() or 1)
    os.nice(5)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.monotonic()
    trainer = build_trainer(ctx, s, device)
    steps = ramp_steps(iterations_per_epoch(len(trainer.train), trainer.batch_size * s.batch_accumulation))
    schedule = Ramp(float(args["start_lr"]), float(args["end_lr"]), steps)
    trainer.policy = schedule
    ctx.reporter.log(f"lr finder: {steps} steps, lr {schedule.start:g} to {schedule.end:g}, batch {trainer.batch_size}")
    result_path = ctx.path(RESULT_FILE)
    last_write = [0.0]

    def save(points, stopped=None, done=False) -> None:
        write_json_atomic(
            result_path,
            {
                "points": points,
                "steps": steps,
                "start_lr": schedule.start,
                "end_lr": schedule.end,
                "suggestion": suggest_lr(points) if done else None,
                "stopped": stopped,
                "done": done,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def on_point(i, points) -> None:
        ctx.reporter.progress((i + 1) / steps)
        now = time.monotonic()
        if now - last_write[0] > 0.5:  # the page follows the ramp as it goes
            save(points)
            last_write[0] = now

    result = ramp(trainer, schedule, on_point, lambda: ctx.abort_requested)
    if result["stopped"] == "cancelled":
        save(result["points"], "cancelled")
        return "Aborted"
    save(result["points"], result["stopped"], done=True)
    ctx.reporter.progress(1.0)
    return "Done"


if __name__ == "__main__":
    run_worker(run_lr_finder)
