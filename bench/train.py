"""Benchmark: LeNet on MNIST through the real training worker, against a bare PyTorch loop on the same data,
network, batch and threads. Prints {"name": "train_lenet", "img_s", "bare_img_s", "ratio"} as one JSON line.

    .venv/bin/python bench/train.py [--epochs 1] [--framework caffe]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from digits import protocol  # noqa: E402
from digits.engine.data import decode_split, load_mean  # noqa: E402
from digits.engine.networks import build_network  # noqa: E402
from digits.engine.solvers import make_optimizer  # noqa: E402
from digits.folders.dataset import open_dataset  # noqa: E402
from digits.job import Job, Task, new_job_id  # noqa: E402
from digits.model.settings import TrainSettings  # noqa: E402
from digits.model.standard import get_network  # noqa: E402
from digits.store import write_json_atomic  # noqa: E402

BATCH = 64


def ensure_dataset(cache: str) -> str:
    """MNIST as a dataset folder (60,000 train, 10,000 val), built once with the command-line tool."""
    out = os.path.join(cache, "dataset")
    if os.path.isdir(os.path.join(out, "val_db")):
        return out
    mnist = os.path.join(cache, "mnist")
    if not os.path.isdir(os.path.join(mnist, "test", "9")):
        subprocess.run(
            [sys.executable, "-m", "digits.download_data", "mnist", mnist],
            cwd=ROOT,
            check=True,
            stderr=subprocess.DEVNULL,
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "digits.tools.create_db",
            out,
            "--folder",
            os.path.join(mnist, "train"),
            "--val-folder",
            os.path.join(mnist, "test"),
            "--channels",
            "1",
            "--width",
            "28",
            "--height",
            "28",
        ],
        cwd=ROOT,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return out


def worker_run(dataset: str, settings: TrainSettings) -> dict:
    """Train LeNet with `settings` in the real worker: images per second between its first and last train-loss
    reports ("img_s"), the last val accuracy it reported ("accuracy", None without one) and the wall time from
    the worker's start ("wall_s")."""
    jobs = tempfile.mkdtemp(prefix="bench-train-")
    try:
        dataset_id = new_job_id()  # the worker finds its dataset as the job folder beside its own
        os.symlink(dataset, os.path.join(jobs, dataset_id))
        job = Job(
            id=new_job_id(),
            type="bench",
            category="model",
            name="bench",
            tasks=[Task("train", "model.train", settings.to_dict())],
            extra={"dataset_id": dataset_id},
        )
        job_dir = os.path.join(jobs, job.id)
        os.makedirs(job_dir)
        with open(os.path.join(job_dir, settings.network_file), "w") as fh:
            fh.write(get_network("lenet").text(settings.framework))
        write_json_atomic(os.path.join(job_dir, "job.json"), job.to_dict())
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "digits.engine.train_worker", job_dir, "--task", "train"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        points, accuracy = [], None
        for line in proc.stdout:
            msg = protocol.decode(line)
            if isinstance(msg, protocol.Metric) and msg.phase == "train" and msg.name == "loss":
                points.append((time.perf_counter(), msg.iteration))
            elif isinstance(msg, protocol.Metric) and msg.phase == "val" and msg.name == "accuracy":
                accuracy = msg.value
            elif isinstance(msg, protocol.Error):
                raise SystemExit(f"worker failed: {msg.message}")
        proc.wait()
        (t0, i0), (t1, i1) = points[0], points[-1]
        return {
            "img_s": (i1 - i0) * settings.batch_size / (t1 - t0),
            "accuracy": accuracy,
            "wall_s": time.perf_counter() - started,
        }
    finally:
        shutil.rmtree(jobs, ignore_errors=True)


def worker_rate(dataset: str, framework: str, epochs: int) -> float:
    """Images per second of the real worker training LeNet as bare_rate does."""
    settings = TrainSettings(
        framework=framework,
        epochs=epochs,
        snapshot_interval=epochs,
        val_interval=epochs,
        seed=1,
        batch_size=BATCH,
        batch_accumulation=1,
        solver_type="SGD",
        learning_rate=0.01,
        momentum=0.9,
        weight_decay=1e-4,
        rms_decay=0.99,
        lr_policy={"policy": "step", "lr_step_size": 33, "lr_step_gamma": 0.1},
        shuffle=True,
        crop_size=None,
        use_mean="image",
    )
    return worker_run(dataset, settings)["img_s"]


def bare_rate(dataset_path: str, framework: str, epochs: int) -> float:
    """The same network, data, batch and threads in a plain loop over tensors already in memory."""
    torch.set_num_threads(os.cpu_count() or 1)
    dataset = open_dataset(dataset_path)
    images, labels = decode_split(dataset.db("train"))
    net = build_network(get_network("lenet").text(framework), framework, input_shape=dataset.shape, num_classes=10)
    net.module.to(memory_format=torch.channels_last)  # the worker's layout, so only the loop around it differs
    x_all = (images.float() - load_mean(dataset, "image")) * net.input_scale
    opt = make_optimizer(
        framework=framework,
        solver_type="SGD",
        param_groups=net.param_groups(),
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-4,
    )
    n = len(labels)
    iters = epochs * math.ceil(n / BATCH)
    report = max(1, math.ceil(n / BATCH) // 10)
    net.module.train()
    t0 = i0 = None
    for it in range(iters):
        if it % math.ceil(n / BATCH) == 0:
            perm = torch.randperm(n)
        pos = it % math.ceil(n / BATCH)
        idx = perm[pos * BATCH : (pos + 1) * BATCH]
        loss = sum(w * F.cross_entropy(out, labels[idx]) for out, w in net.heads(x_all[idx]))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (it + 1) % report == 0:
            loss.item()
            if t0 is None:
                t0, i0 = time.perf_counter(), it + 1
            t1, i1 = time.perf_counter(), it + 1
    return (i1 - i0) * BATCH / (t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "digits-bench-train"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--framework", default="caffe", choices=["caffe", "torch"])
    args = p.parse_args()
    dataset = ensure_dataset(args.cache)
    bare = bare_rate(dataset, args.framework, args.epochs)
    worker = worker_rate(dataset, args.framework, args.epochs)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        json.dumps(
            {
                "name": "train_lenet",
                "framework": args.framework,
                "device": device,
                "img_s": round(worker, 1),
                "bare_img_s": round(bare, 1),
                "ratio": round(worker / bare, 3),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
