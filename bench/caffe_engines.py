"""Benchmark: the two engines of a Caffe network side by side, LeNet on MNIST through the real training worker:
our PyTorch compilation ("torch") and real Caffe ("pycaffe", where make install built it), the same data, batch,
solver and epochs. Prints one JSON line {"name": "caffe_engines", "torch": {"img_s", "accuracy"}, "pycaffe": {...},
"faster"}; an engine that cannot run here has {"unavailable": why}.

    .venv/bin/python bench/caffe_engines.py [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.train import BATCH, ensure_dataset  # noqa: E402
from digits import caffe_status, protocol  # noqa: E402
from digits.job import Job, Task, new_job_id  # noqa: E402
from digits.model.settings import TrainSettings  # noqa: E402
from digits.model.standard import get_network  # noqa: E402
from digits.store import write_json_atomic  # noqa: E402


def train(dataset: str, engine: str, epochs: int) -> dict:
    """Train LeNet (framework caffe) on `engine` in the real worker: img/s between its first and last train-loss
    reports, and the val accuracy after the last epoch."""
    jobs = tempfile.mkdtemp(prefix="bench-caffe-engines-")
    try:
        dataset_id = new_job_id()  # the worker finds its dataset as the job folder beside its own
        os.symlink(dataset, os.path.join(jobs, dataset_id))
        settings = TrainSettings(
            framework="caffe",
            caffe_engine=engine,
            epochs=epochs,
            snapshot_interval=epochs,
            val_interval=1,
            seed=1,
            batch_size=BATCH,
            solver_type="SGD",
            learning_rate=0.01,
            momentum=0.9,
            weight_decay=1e-4,
            lr_policy={"policy": "step", "lr_step_size": 33, "lr_step_gamma": 0.1},
            use_mean="image",
        )
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
            fh.write(get_network("lenet").text("caffe"))
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
                raise SystemExit(f"{engine} worker failed: {msg.message}")
        proc.wait()
        (t0, i0), (t1, i1) = points[0], points[-1]
        return {
            "img_s": round((i1 - i0) * BATCH / (t1 - t0), 1),
            "accuracy": round(accuracy, 4) if accuracy is not None else None,
            "wall_s": round(time.perf_counter() - started, 1),
        }
    finally:
        shutil.rmtree(jobs, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "digits-bench-train"))
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    dataset = ensure_dataset(args.cache)
    out: dict = {"name": "caffe_engines", "network": "lenet", "data": "mnist", "epochs": args.epochs}
    out["torch"] = train(dataset, "torch", args.epochs)
    reason = caffe_status.unavailable_reason()
    out["pycaffe"] = {"unavailable": reason} if reason else train(dataset, "pycaffe", args.epochs)
    rates = {e: out[e]["img_s"] for e in ("torch", "pycaffe") if "img_s" in out[e]}
    out["faster"] = max(rates, key=rates.get)
    if len(rates) == 2:
        out["speedup"] = round(max(rates.values()) / min(rates.values()), 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
