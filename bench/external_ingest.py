"""Benchmark: metric points per second into an external run through its REST endpoint, with its page's chart live.

The real devserver runs; a run is created and its page opened in headless Chromium (history loaded, the job's
Socket.IO room joined, so every batch the server takes is also pushed to the page and drawn). Then digits.client's
Run logs points ({"step": n, "loss": v}: one metric value each) as fast as one script can for about --seconds; the
client sends them as JSON lines in batches of --batch-size, one request at a time (what a training script does).
The clock runs from the first log() to the last batch answered (run.flush()). Then the page must hold every point:
DIGITS.modelCharts.counts()["train/loss"] equal to the points sent, and its last point the last one sent.
Prints one JSON line:
  {"name": "external_ingest", "points_per_s", "batches", "batch_size", "chart_points_seen", "seconds", ...}
  (goal: points_per_s >= 10,000 with the chart live)

    .venv/bin/python bench/external_ingest.py [--seconds 10] [--batch-size 2000] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chart_100k import CHROMIUM_ARGS  # noqa: E402
from live_latency import Devserver  # noqa: E402

from digits.client import Run  # noqa: E402

JOINED = "document.addEventListener('digits:joined', () => { window.benchJoined = true; });"
LIVE = "() => window.benchJoined === true && document.getElementById('model-charts').dataset.history === 'loaded'"
HOLDS = "(n) => (DIGITS.modelCharts.counts()['train/loss'] || 0) >= n"


def ingest(run: Run, seconds: float) -> tuple[int, float]:
    """Log points until `seconds` have passed; (points sent, seconds from the first log to the last answer)."""
    n = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(run.batch):  # a whole batch between clock reads: log() sends it when it is full
            n += 1
            run.log(step=n, loss=1.0 / math.sqrt(n))
    run.flush()
    return n, time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    work = tempfile.mkdtemp(prefix="bench-ingest-")
    server = Devserver(os.path.join(work, "jobs"))
    errors: list[str] = []
    run = None
    try:
        server.start()
        # flush_s: the background thread stays out of the way; the batches go when full, from this thread.
        run = Run(server.url, None, "ingest bench", user="bench", batch=args.batch_size, flush_s=30.0)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
                page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
                page.add_init_script(JOINED)
                page.goto(run.url)
                page.wait_for_function(LIVE, timeout=60_000)
                sent, seconds = ingest(run, args.seconds)
                answered = time.perf_counter()
                page.wait_for_function(HOLDS, arg=sent, timeout=120_000, polling=100)
                drawn_after_s = time.perf_counter() - answered
                seen = page.evaluate("DIGITS.modelCharts.counts()['train/loss']")
                last = page.evaluate(
                    "(() => { const h = DIGITS.modelCharts.held('train/loss'); return h.x.at(-1); })()"
                )
                drawn = page.evaluate("DIGITS.modelCharts.group.charts.map((c) => (c.u ? c.u.data[0].length : 0))")
            finally:
                browser.close()
        run.finish()
        if run.status != "Done" or run.sent != sent:
            raise RuntimeError(f"the run ended {run.status} with {run.sent:,} of {sent:,} points taken")
        if last != sent:
            raise RuntimeError(f"the chart's last point is at step {last}, not {sent}")
        if errors:
            raise RuntimeError(f"the page reported: {errors}")
    finally:
        if run is not None:
            run.finish("the benchmark stopped")  # no-op once finished; else the server hears before it stops
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(
        json.dumps(
            {
                "name": "external_ingest",
                "points_per_s": round(sent / seconds),
                "batches": math.ceil(sent / args.batch_size),
                "batch_size": args.batch_size,
                "chart_points_seen": seen,
                "seconds": round(seconds, 2),
                "points": sent,
                "chart_caught_up_s": round(drawn_after_s, 2),
                "drawn_x_values": drawn,
            }
        )
    )


if __name__ == "__main__":
    main()
