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
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.train import BATCH, ensure_dataset, worker_run  # noqa: E402
from digits import caffe_status  # noqa: E402
from digits.model.settings import TrainSettings  # noqa: E402


def train(dataset: str, engine: str, epochs: int) -> dict:
    """Train LeNet (framework caffe) on `engine` in the real worker: img/s between its first and last train-loss
    reports, and the val accuracy after the last epoch."""
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
    run = worker_run(dataset, settings)
    return {
        "img_s": round(run["img_s"], 1),
        "accuracy": round(run["accuracy"], 4) if run["accuracy"] is not None else None,
        "wall_s": round(run["wall_s"], 1),
    }


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
