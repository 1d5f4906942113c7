"""Benchmark: the LR finder's ramp on LeNet over MNIST through its real worker, against one epoch of training
through the training worker (bench/train.py worker_run), both timed from the worker's start to its exit. The goal:
the ramp costs at most one epoch (ratio <= 1). Prints {"name": "lr_finder", "seconds", "epoch_seconds", "ratio",
"steps", "suggestion"} as one JSON line.

    .venv/bin/python bench/lr_finder.py [--framework caffe]
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
sys.path.insert(0, os.path.join(ROOT, "bench"))

from train import BATCH, ensure_dataset, worker_run  # noqa: E402

from digits import protocol  # noqa: E402
from digits.job import new_job_id  # noqa: E402
from digits.model.lr_finder import build_lr_finder_job, read_result  # noqa: E402
from digits.model.settings import TrainSettings  # noqa: E402
from digits.model.standard import get_network  # noqa: E402
from digits.store import write_json_atomic  # noqa: E402


def finder_run(dataset: str, settings: TrainSettings) -> dict:
    """Run the LR finder worker on `dataset`; its wall time and answer."""
    jobs = tempfile.mkdtemp(prefix="bench-lr-finder-")
    try:
        dataset_id = new_job_id()  # the worker finds its dataset as the job folder beside its own
        os.symlink(dataset, os.path.join(jobs, dataset_id))
        job = build_lr_finder_job(new_job_id(), "bench", settings, dataset_id, {"cpu": 1})
        job_dir = os.path.join(jobs, job.id)
        os.makedirs(job_dir)
        with open(os.path.join(job_dir, settings.network_file), "w") as fh:
            fh.write(get_network("lenet").text(settings.framework))
        write_json_atomic(os.path.join(job_dir, "job.json"), job.to_dict())
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "digits.engine.lr_finder", job_dir, "--task", "lr_finder"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        for line in proc.stdout.splitlines():
            msg = protocol.decode(line)
            if isinstance(msg, protocol.Error):
                raise SystemExit(f"lr finder failed: {msg.message}")
        return {"seconds": seconds, **read_result(job_dir)}
    finally:
        shutil.rmtree(jobs, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "digits-bench-train"))
    p.add_argument("--framework", default="caffe", choices=["caffe", "torch"])
    args = p.parse_args()
    dataset = ensure_dataset(args.cache)
    settings = TrainSettings(framework=args.framework, epochs=1, batch_size=BATCH, seed=1)
    finder = finder_run(dataset, settings)
    epoch = worker_run(dataset, settings)
    print(
        json.dumps(
            {
                "name": "lr_finder",
                "framework": args.framework,
                "seconds": round(finder["seconds"], 2),
                "epoch_seconds": round(epoch["wall_s"], 2),
                "ratio": round(finder["seconds"] / epoch["wall_s"], 3),
                "steps": len(finder["points"]),
                "suggestion": finder["suggestion"],
                "stopped": finder["stopped"],
            }
        )
    )


if __name__ == "__main__":
    main()
