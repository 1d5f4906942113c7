"""Benchmark: how long a training metric takes to reach a browser-side Socket.IO client.

Two hops, measured separately and added:
  worker -> server   a harness under gevent (as the server runs) reads protocol lines through digits.runner's
                     TaskProcess from a child that stamps each line with its print time;
  server -> client   the real devserver trains a real LeNet; a python-socketio client in the job's room compares
                     each `metric` event's arrival with its `time` field (stamped when the server read the line).
The harness runs while the real training loads the machine, so both hops see the same load. One machine, one
clock: time.time() differences are valid. Prints one JSON line:
  {"name": "live_latency", "p50_ms", "p95_ms", "points", ...the two hops...}   (goal: p95 <= 250 ms)

    .venv/bin/python bench/live_latency.py [--epochs 15] [--batch-size 8]
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and "--hop" in sys.argv:  # the harness reads its child the way the gevent server does
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import requests  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

JSON = {"Accept": "application/json"}


# ---- the real server, driven like a user (also used by bench/chart_100k.py) ---------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Devserver:
    """`digits-devserver -p PORT --jobs-dir DIR` as a child process, signed in as one user."""

    def __init__(self, jobs_dir: str, args: list[str] | None = None):
        self.jobs_dir = jobs_dir
        self.port = free_port()
        self.args = args or []
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        exe = os.path.join(os.path.dirname(sys.executable), "digits-devserver")
        head = [exe] if os.path.exists(exe) else [sys.executable, "-m", "digits"]
        return [*head, "-p", str(self.port), "--jobs-dir", self.jobs_dir, *self.args]

    def start(self, timeout: float = 30.0) -> Devserver:
        os.makedirs(self.jobs_dir, exist_ok=True)
        log = open(os.path.join(os.path.dirname(self.jobs_dir), f"server-{self.port}.log"), "a")
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"digits-devserver exited with {self.proc.returncode}")
            try:
                if self.http.get(self.url + "/index/json", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"digits-devserver did not answer in {timeout}s")
        self.http.post(self.url + "/login", data={"username": "bench"}, headers=JSON).raise_for_status()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def wait(self, kind: str, job_id: str, statuses=("Done", "Error", "Aborted"), timeout: float = 300) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            js = self.http.get(f"{self.url}/{kind}/{job_id}/json", headers=JSON, timeout=30).json()
            if js["status"] in statuses:
                return js
            time.sleep(0.2)
        raise RuntimeError(f"{kind} {job_id} still {js['status']} after {timeout}s")

    def build_dataset(self, image_dir: str, name: str = "shapes") -> str:
        """A 28x28 gray dataset from class folders, through the form's JSON twin; returns its id once Done."""
        form = {
            "method": "folder",
            "folder_train": image_dir,
            "folder_pct_val": "25",
            "resize_channels": "1",
            "resize_width": "28",
            "resize_height": "28",
            "encoding": "png",
            "dataset_name": name,
        }
        r = self.http.post(self.url + "/datasets/images/classification/json", data=form, headers=JSON)
        r.raise_for_status()
        job_id = r.json()["id"]
        js = self.wait("datasets", job_id)
        if js["status"] != "Done":
            raise RuntimeError(f"dataset {job_id} ended {js['status']}: {js.get('error')}")
        return job_id

    def train_lenet(self, dataset_id: str, epochs: int, batch_size: int = 8, name: str = "lenet") -> str:
        form = {
            "dataset": dataset_id,
            "model_name": name,
            "method": "standard",
            "standard_networks": "lenet",
            "framework": "torch",
            "train_epochs": str(epochs),
            "batch_size": str(batch_size),
            "random_seed": "1",
        }
        r = self.http.post(self.url + "/models/images/classification/json", data=form, headers=JSON)
        r.raise_for_status()
        return r.json()["id"]


def make_images(root: str, per_class: int = 40, seed: int = 0) -> str:
    """root/<class>/<n>.png: three classes of simple shapes on noisy gray backgrounds."""
    rnd = random.Random(seed)
    for cls in ("circle", "square", "triangle"):
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        for i in range(per_class):
            im = Image.new("L", (32, 32), rnd.randint(0, 60))
            draw = ImageDraw.Draw(im)
            c, r = 16 + rnd.randint(-3, 3), rnd.randint(7, 11)
            box = [c - r, c - r, c + r, c + r]
            if cls == "circle":
                draw.ellipse(box, fill=220)
            elif cls == "square":
                draw.rectangle(box, fill=220)
            else:
                draw.polygon([(c, c - r), (c - r, c + r), (c + r, c + r)], fill=220)
            im.save(os.path.join(root, cls, f"{i:04d}.png"))
    return root


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ---- hop 1: worker print -> server decode, through the real TaskProcess under gevent ------------------------------
CHILD = """
import json, sys, time
n, gap = int(sys.argv[1]), float(sys.argv[2])
for i in range(n):
    time.sleep(gap)
    line = {"type": "metric", "phase": "train", "name": "loss", "value": time.time(), "epoch": i / 10, "iteration": i}
    sys.stdout.write(json.dumps(line) + "\\n")
    sys.stdout.flush()
print(json.dumps({"type": "done", "status": "Done"}), flush=True)
"""


def hop_harness(count: int, gap_s: float) -> None:
    """Run in its own process (gevent-patched like the server); prints the hop latencies in ms as JSON."""
    from digits import protocol
    from digits.runner import TaskProcess

    latencies: list[float] = []

    def on_message(msg) -> None:
        if isinstance(msg, protocol.Metric):
            latencies.append((time.time() - msg.value) * 1000)

    work = tempfile.mkdtemp(prefix="bench-hop-")
    try:
        process = TaskProcess("unused", work, "hop", os.path.join(work, "hop.log"), {}, on_message)
        process.argv = [sys.executable, "-u", "-c", CHILD, str(count), str(gap_s)]
        process.run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(latencies))


def start_hop_harness(count: int, gap_s: float) -> subprocess.Popen:
    argv = [sys.executable, os.path.abspath(__file__), "--hop", str(count), "--gap", str(gap_s)]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)


# ---- hop 2: server -> Socket.IO client, on a real training run ----------------------------------------------------
def client_latencies(server: Devserver, job_id: str, timeout: float) -> list[float]:
    import socketio

    latencies: list[float] = []
    joined, finished = threading.Event(), threading.Event()
    client = socketio.Client()
    client.on("joined", lambda data: joined.set(), namespace="/jobs")
    client.on("metric", lambda data: latencies.append((time.time() - data["time"]) * 1000), namespace="/jobs")

    def on_status(data):
        if data["status"] in ("Done", "Error", "Aborted"):
            finished.set()

    client.on("job_status", on_status, namespace="/jobs")
    client.connect(server.url, namespaces=["/jobs"], transports=["websocket"], wait_timeout=10)
    try:
        client.emit("join", {"room": job_id}, namespace="/jobs")
        if not joined.wait(10):
            raise RuntimeError("could not join the job's room")
        if not finished.wait(timeout):
            raise RuntimeError(f"training did not finish in {timeout}s")
    finally:
        client.disconnect()
    return latencies


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--hop", type=int, help=argparse.SUPPRESS)
    p.add_argument("--gap", type=float, default=0.02, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.hop:
        hop_harness(args.hop, args.gap)
        return

    work = tempfile.mkdtemp(prefix="bench-live-")
    server = Devserver(os.path.join(work, "jobs"))
    try:
        server.start()
        dataset = server.build_dataset(make_images(os.path.join(work, "images"), args.per_class))
        job_id = server.train_lenet(dataset, args.epochs, args.batch_size)
        hop = start_hop_harness(300, args.gap)
        to_client = client_latencies(server, job_id, timeout=600)
        to_server = json.loads(hop.communicate(timeout=120)[0])
        status = server.wait("models", job_id)["status"]
        if status != "Done":
            raise RuntimeError(f"training ended {status}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    result = {"name": "live_latency"}
    for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms")):
        a, b = percentile(to_server, q), percentile(to_client, q)
        result[key] = round(a + b, 2)
        result[f"worker_to_server_{key}"] = round(a, 2)
        result[f"server_to_client_{key}"] = round(b, 2)
    result["points"] = len(to_client)
    result["worker_to_server_points"] = len(to_server)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
