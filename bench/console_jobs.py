"""Benchmark: a jobs directory with 1,000 finished jobs. How long the server takes to start (until /index/json
answers) and how long /index/json takes. Prints {"name": "console_1000_jobs", "start_s", "index_ms"}.

    .venv/bin/python bench/console_jobs.py [--jobs 1000]
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
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from digits.job import Job, Task  # noqa: E402
from digits.status import Status  # noqa: E402
from digits.store import write_json_atomic  # noqa: E402


def make_jobs(jobs_dir: str, count: int) -> None:
    base = time.time() - count * 60
    for i in range(count):
        category = "dataset" if i % 2 else "model"
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(base + i * 60))
        job = Job(
            id=f"{stamp}-{i % 65536:04x}",
            type=f"image-classification-{category}",
            category=category,
            name=f"{category}-{i}",
            owner="bench",
            created=base + i * 60,
            tasks=[Task("train" if category == "model" else "create_db_train", "bench")],
        )
        for status in (Status.WAITING, Status.RUNNING, Status.DONE):
            job.history.set(status, at=base + i * 60 + 1)
            job.tasks[0].history.set(status, at=base + i * 60 + 1)
        os.makedirs(os.path.join(jobs_dir, job.id))
        write_json_atomic(os.path.join(jobs_dir, job.id, "job.json"), job.to_dict())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except OSError:
        return 0, b""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=1000)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-console-")
    jobs_dir = os.path.join(tmp, "jobs")
    os.makedirs(jobs_dir)
    make_jobs(jobs_dir, args.jobs)
    port = free_port()
    url = f"http://127.0.0.1:{port}/index/json"
    exe = os.path.join(ROOT, ".venv", "bin", "digits-devserver")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "-p", str(port), "--jobs-dir", jobs_dir],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while get(url)[0] != 200:
            if proc.poll() is not None or time.perf_counter() - started > 60:
                raise SystemExit("the server did not start")
            time.sleep(0.02)
        start_s = time.perf_counter() - started
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            status, body = get(url)
            times.append((time.perf_counter() - t0) * 1000)
        listed = json.loads(body)
        assert len(listed["datasets"]) + len(listed["models"]) == args.jobs, "not every job was listed"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "name": "console_1000_jobs",
                "jobs": args.jobs,
                "start_s": round(start_s, 3),
                "index_ms": round(statistics.median(times), 2),
                "index_p95_ms": round(sorted(times)[28], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
