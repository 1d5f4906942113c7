"""Benchmark: a member's /index/json latency while 8 wrong-password loops hammer /login on a --auth password server.

Each wrong password costs one argon2 check (tens of ms of CPU, 64 MiB). Run on the event loop, 8 loops of them
stall every other request; off the loop, the member barely notices. The flood runs twice against the real gevent
server (python -m digits --auth password, as a team runs it):
  unthrottled  DIGITS_LOGIN_MAX_FAILURES huge, so every attempt really hashes: the cost this measures;
  throttled    the default throttle, which answers most attempts 429 without hashing.
A baseline without the flood comes first. Prints one JSON line:
  {"name": "login_flood", "p95_ms", "p50_ms", "baseline_p95_ms", "flood_logins_per_s", "throttled": {...}}
  (goal: p95_ms < 100)

    .venv/bin/python bench/login_flood.py [--seconds 10] [--loops 8]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import requests  # noqa: E402

from digits.accounts import AccountStore  # noqa: E402

JSON = {"Accept": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Server:
    """The real devserver on a jobs directory with one member, as a child process."""

    def __init__(self, jobs_dir: str, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = os.path.join(os.path.dirname(sys.executable), "digits-devserver")
        head = [exe] if os.path.exists(exe) else [sys.executable, "-m", "digits"]
        command = [*head, "-p", str(self.port), "--jobs-dir", jobs_dir, "--gpus", "none", "--auth", "password"]
        log = open(os.path.join(os.path.dirname(jobs_dir), f"server-{self.port}.log"), "a")
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "DIGITS_INFERENCE_WORKERS": "0", **env},
        )
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("the server did not start")
            try:
                if requests.get(self.url + "/index/json", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(20)


def member_latencies(server: Server, seconds: float, flood_loops: int) -> dict:
    """The member's /index/json times (ms) for `seconds` while `flood_loops` threads post wrong passwords."""
    member = requests.Session()
    r = member.post(server.url + "/login", data={"username": "member", "password": "member-password"}, headers=JSON)
    r.raise_for_status()
    member.get(server.url + "/index/json").raise_for_status()  # warm: connection and first-request costs
    stop = threading.Event()
    counts = [collections.Counter() for _ in range(flood_loops)]  # one per thread: no shared counter to race on

    def flood(i: int) -> None:
        s = requests.Session()
        while not stop.is_set():
            form = {"username": f"guess{i}", "password": "wrong-password"}
            counts[i][s.post(server.url + "/login", data=form, headers=JSON).status_code] += 1

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(flood_loops)]
    for t in threads:
        t.start()
    time.sleep(0.5 if flood_loops else 0)  # let the flood reach full speed before measuring
    times = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        member.get(server.url + "/index/json").raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.02)  # a person's page polling, not a second flood
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(30)
    statuses = sum(counts, collections.Counter())
    return {
        "p50_ms": round(percentile(times, 0.50), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "requests": len(times),
        "logins_per_s": round(sum(statuses.values()) / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def run(tmp: str, name: str, env: dict[str, str], seconds: float, loops: int, baseline: bool) -> dict:
    jobs_dir = os.path.join(tmp, name, "jobs")
    os.makedirs(jobs_dir)
    AccountStore(jobs_dir).add("member", "member-password")
    server = Server(jobs_dir, env)
    try:
        result = {"flood": member_latencies(server, seconds, loops)}
        if baseline:
            result["baseline"] = member_latencies(server, min(seconds, 5), 0)
        return result
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--loops", type=int, default=8)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-login-flood-")
    try:
        # Throttling off (in effect), so every attempt hashes: what the event loop has to survive.
        open_ = run(tmp, "open", {"DIGITS_LOGIN_MAX_FAILURES": "1000000000"}, args.seconds, args.loops, True)
        throttled = run(tmp, "throttled", {}, args.seconds, args.loops, False)["flood"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    flood = open_["flood"]
    print(
        json.dumps(
            {
                "name": "login_flood",
                "loops": args.loops,
                "p50_ms": flood["p50_ms"],
                "p95_ms": flood["p95_ms"],
                "baseline_p95_ms": open_["baseline"]["p95_ms"],
                "flood_logins_per_s": flood["logins_per_s"],
                "flood_statuses": flood["statuses"],
                "throttled": {k: throttled[k] for k in ("p50_ms", "p95_ms", "logins_per_s", "statuses")},
                "goal_p95_ms": 100,
            }
        )
    )


if __name__ == "__main__":
    main()
