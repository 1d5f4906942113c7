"""Benchmark: a zip bomb (3 MB holding 3 GB) sent to the dataset form of a real server, while another client
polls /index/json. How long the refusal takes (goal: under 1 s) and the p95 of /index/json meanwhile.
Prints {"name": "zip_bomb", "refusal_s", "refusal_max_s", "index_p95_ms", ...}.

    .venv/bin/python bench/zip_bomb.py [--bombs 20] [--gigabytes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support.zips import zeros_zip  # noqa: E402

FORM = {"method": "folder", "dataset_name": "bomb", "resize_width": "16", "resize_height": "16"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bombs", type=int, default=20)
    p.add_argument("--gigabytes", type=float, default=3.0)
    args = p.parse_args()
    size = int(args.gigabytes * 1e9)
    bomb = zeros_zip([("shapes/a/bomb.png", size), ("shapes/b/1.png", 10)])
    tmp = tempfile.mkdtemp(prefix="bench-zip-bomb-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    exe = os.path.join(ROOT, ".venv", "bin", "digits-devserver")
    proc = subprocess.Popen(
        [exe, "-p", str(port), "--jobs-dir", os.path.join(tmp, "jobs"), "--gpus", "none"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "DIGITS_INFERENCE_WORKERS": "0"},
    )
    index_ms: list[float] = []
    stop = threading.Event()
    try:
        started = time.perf_counter()
        while True:
            try:
                if requests.get(url + "/index/json", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 60:
                raise SystemExit("the server did not start")
            time.sleep(0.05)
        session = requests.Session()
        session.post(url + "/login", data={"username": "bench"}, headers={"Accept": "application/json"}, timeout=10)

        def poll() -> None:
            other = requests.Session()
            while not stop.is_set():
                t0 = time.perf_counter()
                other.get(url + "/index/json", timeout=60)
                index_ms.append((time.perf_counter() - t0) * 1000)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        refusals = []
        for _ in range(args.bombs):
            t0 = time.perf_counter()
            r = session.post(
                url + "/datasets/images/classification/json",
                data=FORM,
                files={"folder_train_zip": ("bomb.zip", bomb, "application/zip")},
                timeout=300,
            )
            refusals.append(time.perf_counter() - t0)
            if r.status_code != 400 or "folder_train_zip" not in r.json().get("errors", {}):
                raise SystemExit(f"the bomb was not refused by field: {r.status_code} {r.text[:200]}")
        stop.set()
        poller.join(60)
    finally:
        stop.set()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)
    ordered = sorted(index_ms)
    print(
        json.dumps(
            {
                "name": "zip_bomb",
                "zip_bytes": len(bomb),
                "unpacked_bytes": size + 10,
                "bombs": args.bombs,
                "refusal_s": round(statistics.median(refusals), 3),
                "refusal_max_s": round(max(refusals), 3),
                "index_requests": len(ordered),
                "index_p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2) if ordered else None,
            }
        )
    )


if __name__ == "__main__":
    main()
