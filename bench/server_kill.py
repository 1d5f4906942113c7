"""Benchmark: the server is killed (kill -9) while LeNet trains. How long its orphaned training worker takes to
write the abort snapshot and exit (goal: within 2 s, with the snapshot).
Prints {"name": "server_kill", "snapshot_s", "stop_s", "runs"} (medians over the runs; the worst too).

    .venv/bin/python bench/server_kill.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.conftest import LiveServer  # noqa: E402
from tests.support.imagegen import make_shapes  # noqa: E402


def exited_after(worker: psutil.Process, since: float, timeout: float = 60.0) -> float:
    """Seconds from `since` until the worker has exited. An orphan becomes a zombie until the init process
    reaps it, which can take a while here: a zombie has stopped."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if worker.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    else:
        raise SystemExit(f"the worker still runs {timeout:g} s after the server was killed")
    return time.time() - since


def one_run(tmp: Path) -> tuple[float, float]:
    server = LiveServer(tmp / "jobs").start()
    try:
        web = requests.Session()
        web.post(server.url + "/login", data={"username": "bench"}, timeout=10)
        dataset = server.folder_dataset(web, tmp / "images")
        form = {
            "dataset": dataset,
            "method": "standard",
            "standard_networks": "lenet",
            "framework": "torch",
            "train_epochs": "1000",
            "model_name": "long",
        }
        model = web.post(server.url + "/models/images/classification/json", data=form, timeout=60).json()["id"]
        server.wait_progress(model, timeout=300)
        time.sleep(1.0)  # well inside an epoch
        worker = next(
            p
            for p in psutil.Process(server.proc.pid).children(recursive=True)
            if "digits.engine.train_worker" in p.cmdline()
        )
        killed = time.time()
        os.kill(server.proc.pid, signal.SIGKILL)
        stopped = exited_after(worker, killed)
        newest = max((tmp / "jobs" / model).glob("snapshot_epoch_*.pt"), key=lambda p: p.stat().st_mtime)
        written = newest.stat().st_mtime - killed
        if written < 0:
            raise SystemExit("no snapshot was written after the kill")
        return written, stopped
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-kill-") as folder:
        make_shapes(os.path.join(folder, "images"), per_class=200, size=(24, 40))
        for n in range(args.runs):
            run = Path(folder) / f"run{n}"
            run.mkdir()
            (run / "images").symlink_to(Path(folder) / "images")
            results.append(one_run(run))
            print(f"run {n}: snapshot after {results[-1][0]:.2f} s, exit after {results[-1][1]:.2f} s", file=sys.stderr)
    snap, stop = zip(*results, strict=True)
    print(
        json.dumps(
            {
                "name": "server_kill",
                "snapshot_s": round(statistics.median(snap), 2),
                "stop_s": round(statistics.median(stop), 2),
                "stop_max_s": round(max(stop), 2),
                "runs": len(results),
                "goal_s": 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
