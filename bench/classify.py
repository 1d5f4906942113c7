"""Benchmark: classification through the real server (gevent, warm inference workers) against bare PyTorch.

Builds an MNIST subset dataset and trains LeNet through the server's REST API (kept in --cache and reused on
the next run), then:
  classify_one   200 warm `classify_one/json` requests of one 28x28 PNG: the server's own time (the
                 response's server_ms, measured inside the handler) and the client's end-to-end time;
  classify_many  `classify_many/json` on a list of --images MNIST test files, against a bare loop over the same
                 files (load_for_network on as many reader threads and torch threads as a warm worker has, the
                 validation transform, the network in batches, softmax, top-5) in this process with no server;
                 runs alternate, the best of each counts.
Prints two JSON lines:
  {"name": "classify_one", "p50_ms", "p99_ms", "e2e_p50_ms"}
  {"name": "classify_many", "img_s", "bare_img_s", "ratio"}

    .venv/bin/python bench/classify.py [--images 3000] [--requests 200] [--framework torch] [--cache DIR]
                                       [--tcp-nodelay]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODEL_NAME = "bench-lenet-{framework}"


def serve(argv: list[str]) -> int:
    """The devserver with the inference pool installed (a no-op once create_app wires it)."""
    from gevent import monkey

    monkey.patch_all()
    # --tcp-nodelay: what the proposed server fix gives. Without TCP_NODELAY on its sockets, a keep-alive
    # client waits ~40 ms per response (Nagle's algorithm against the client's delayed ACK).
    if os.environ.get("BENCH_TCP_NODELAY"):
        import socket as _socket

        from geventwebsocket.handler import WebSocketHandler

        original = WebSocketHandler.handle

        def handle(self):
            self.socket.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return original(self)

        WebSocketHandler.handle = handle
    from digits.inference.app import install
    from digits.server import main

    return main(argv, extend=install)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Server:
    def __init__(self, jobs_dir: str, log_path: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, os.path.abspath(__file__), "--serve", "-p", str(self.port), "--jobs-dir", jobs_dir]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=open(log_path, "a"), stderr=subprocess.STDOUT, start_new_session=True
        )
        import requests

        self.http = requests.Session()
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}); see {log_path}")
            try:
                if self.http.get(self.url + "/index/json", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        self.http.post(self.url + "/login", data={"username": "bench"}, headers={"Accept": "application/json"})

    def wait_done(self, kind: str, job_id: str, timeout: float = 1800) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.http.get(f"{self.url}/{kind}/{job_id}/json", timeout=10).json()["status"]
            if status == "Done":
                return
            if status in ("Error", "Aborted"):
                raise SystemExit(f"{kind} {job_id} ended {status}")
            time.sleep(0.5)
        raise SystemExit(f"{kind} {job_id} did not finish in {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)


def ensure_model(server: Server, mnist: str, framework: str) -> str:
    """The id of a trained LeNet on the MNIST subset, made through the REST API unless the cache has one."""
    name = MODEL_NAME.format(framework=framework)
    index = server.http.get(server.url + "/index/json").json()
    done = [m for m in index["models"] if m["name"] == name and m["status"] == "Done"]
    if done:
        return done[0]["id"]
    datasets = [d for d in index["datasets"] if d["name"] == "bench-mnist" and d["status"] == "Done"]
    if datasets:
        dataset_id = datasets[0]["id"]
    else:
        form = {
            "dataset_name": "bench-mnist",
            "method": "folder",
            "folder_train": os.path.join(mnist, "train"),
            "has_val_folder": "true",
            "folder_val": os.path.join(mnist, "test"),
            "resize_channels": "1",
            "resize_width": "28",
            "resize_height": "28",
        }
        r = server.http.post(server.url + "/datasets/images/classification/json", data=form)
        r.raise_for_status()
        dataset_id = r.json()["id"]
        server.wait_done("datasets", dataset_id)
    form = {
        "dataset": dataset_id,
        "model_name": name,
        "method": "standard",
        "standard_networks": "lenet",
        "framework": framework,
        "train_epochs": "2",
        "random_seed": "1",
    }
    r = server.http.post(server.url + "/models/images/classification/json", data=form)
    r.raise_for_status()
    model_id = r.json()["id"]
    server.wait_done("models", model_id)
    return model_id


def bench_one(server: Server, model_id: str, image: bytes, requests: int) -> dict:
    def call() -> tuple[float, float]:
        started = time.perf_counter()
        r = server.http.post(
            server.url + "/models/images/classification/classify_one/json",
            data={"job_id": model_id},
            files={"image_file": ("digit.png", image, "image/png")},
        )
        elapsed = (time.perf_counter() - started) * 1000
        r.raise_for_status()
        return r.json()["server_ms"], elapsed

    for _ in range(20):  # load the model, warm the caches
        call()
    server_ms, e2e_ms = zip(*(call() for _ in range(requests)), strict=True)
    return {
        "name": "classify_one",
        "p50_ms": round(statistics.median(server_ms), 3),
        "p99_ms": round(percentile(list(server_ms), 99), 3),
        "e2e_p50_ms": round(statistics.median(e2e_ms), 3),
    }


def server_rate(server: Server, model_id: str, paths: list[str]) -> float:
    """Images per second of one classify_many/json request, as the client sees it."""
    listing = "".join(p + "\n" for p in paths).encode()
    started = time.perf_counter()
    r = server.http.post(
        server.url + "/models/images/classification/classify_many/json",
        data={"job_id": model_id},
        files={"image_list": ("list.txt", listing, "text/plain")},
    )
    elapsed = time.perf_counter() - started
    r.raise_for_status()
    assert len(r.json()["classifications"]) == len(paths), r.json()["errors"][:3]
    return len(paths) / elapsed


def bare_classifier(job_dir: str, dataset_dir: str):
    """A function that does the same work with no server (read the files, transform, run the network in
    batches, softmax, top-5) and returns images per second."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import torch

    from digits.config import Settings
    from digits.engine.augment import BatchTransform
    from digits.engine.data import load_mean
    from digits.engine.networks import build_network
    from digits.folders.dataset import open_dataset
    from digits.formats.images import load_for_network
    from digits.inference.pool import default_threads

    torch.set_num_threads(default_threads(Settings().inference_workers))  # as many as each warm worker has
    with open(os.path.join(job_dir, "job.json")) as fh:
        job = json.load(fh)
    args = job["tasks"][0]["args"]
    dataset = open_dataset(dataset_dir)
    with open(os.path.join(job_dir, args["network_file"])) as fh:
        text = fh.read()
    snapshots = sorted(job["tasks"][0]["snapshots"], key=lambda s: s["epoch"])
    state = torch.load(os.path.join(job_dir, snapshots[-1]["path"]), map_location="cpu", weights_only=True)
    net = build_network(text, args["framework"], input_shape=dataset.shape, num_classes=len(dataset.labels))
    net.module.load_state_dict(state["model"])
    net.module.to(memory_format=torch.channels_last).eval()
    transform = BatchTransform(
        in_shape=dataset.shape,
        mean=load_mean(dataset, args["use_mean"]),
        crop=None,
        scale=net.input_scale,
        mirror=False,
        aug=None,
        train=False,
    )
    channels, height, width = dataset.shape
    batch = net.val_batch_size or net.batch_size or 64
    readers = ThreadPoolExecutor(min(8, os.cpu_count() or 1))  # as many reader threads as a worker has

    def read(path: str) -> np.ndarray:
        return load_for_network(path, channels, height, width, dataset.image.get("resize_mode", "squash"))[0]

    def rate(paths: list[str]) -> float:
        started = time.perf_counter()
        with torch.no_grad():
            for start in range(0, len(paths), batch):
                arrays = list(readers.map(read, paths[start : start + batch]))
                x = torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)))
                probs = torch.softmax(net.logits(transform(x)).float(), dim=1)
                probs.topk(min(5, probs.shape[1]), dim=1)
        return len(paths) / (time.perf_counter() - started)

    return rate


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sys.exit(serve(sys.argv[2:]))
    p = argparse.ArgumentParser()
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "digits-bench-classify"))
    p.add_argument("--framework", default="torch", choices=["torch", "caffe"])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--runs", type=int, default=5, help="classify_many runs each way, alternated; the best counts")
    p.add_argument("--tcp-nodelay", action="store_true", help="serve with TCP_NODELAY (the proposed server fix)")
    args = p.parse_args()
    if args.tcp_nodelay:
        os.environ["BENCH_TCP_NODELAY"] = "1"

    mnist = os.path.join(args.cache, "mnist")
    if not os.path.isdir(os.path.join(mnist, "test", "9")):
        from digits.download_data import write_mnist

        print(f"writing an MNIST subset to {mnist} ...", file=sys.stderr)
        write_mnist(mnist, per_class=300, quiet=True)
    jobs_dir = os.path.join(args.cache, "jobs")
    server = Server(jobs_dir, os.path.join(args.cache, "server.log"))
    try:
        model_id = ensure_model(server, mnist, args.framework)
        test = os.path.join(mnist, "test")
        paths = sorted(os.path.join(test, d, f) for d in os.listdir(test) for f in os.listdir(os.path.join(test, d)))
        paths = (paths * (args.images // max(1, len(paths)) + 1))[: args.images]
        with open(paths[0], "rb") as fh:
            image = fh.read()
        print(json.dumps(bench_one(server, model_id, image, args.requests)), flush=True)
        model = server.http.get(f"{server.url}/models/{model_id}/json").json()
        bare_rate = bare_classifier(os.path.join(jobs_dir, model_id), os.path.join(jobs_dir, model["dataset_id"]))
        # Alternate the two so that a change in the machine's load between them does not decide the ratio.
        img_s = bare = 0.0
        for _ in range(args.runs):
            img_s = max(img_s, server_rate(server, model_id, paths))
            bare = max(bare, bare_rate(paths))
    finally:
        server.stop()
    result = {"name": "classify_many", "img_s": round(img_s, 1), "bare_img_s": round(bare, 1)}
    result["ratio"] = round(img_s / bare, 3)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
