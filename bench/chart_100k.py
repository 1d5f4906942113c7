"""Benchmark: the model page's charts over 100,000 points per series, in Chromium: first draw and redraws.

A real model job comes from a short real run (dataset through the form, one LeNet epoch); with the server
stopped, its metrics.jsonl is extended with synthetic points to 100,000 per series (train loss, learning rate,
val loss, val accuracy); the server is started again and the real page is loaded in headless Chromium.

- cold_page_to_first_draw_s: navigation to both charts drawn, the first request for the job since the server
  started, for a metrics.jsonl no server has read (written behind its back: it parses the whole file);
- restart_page_to_first_draw_s: the same right after a restart, for a job the server had read before (it reads
  the history it kept beside the file, metrics.cache.npz, and only what was appended since), in a browser that
  had shown the page before (goal: < 1 s);
- page_to_first_draw_s: the same once the server has read the job (as the JSON twin's GET does; goal: < 1 s);
- redraw_ms, zoomed_redraw_ms: a forced synchronous redraw (decimation + uPlot draw of both charts), timed with
  performance.now() (goal: < 16);
- zoom_to_detail_s: from zooming into 1% of the epochs to that range drawn from its full detail (fetched).
Prints one JSON line: {"name": "chart_100k", ...}

    .venv/bin/python bench/chart_100k.py [--points 100000] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from live_latency import JSON, Devserver, make_images  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERIES = (("train", "loss"), ("train", "learning_rate"), ("val", "loss"), ("val", "accuracy"))


def extend_metrics(job_dir: str, points: int, seed: int = 0) -> dict[str, int]:
    """Append synthetic points after the real ones until each series holds `points`; returns the counts."""
    path = os.path.join(job_dir, "metrics.jsonl")
    counts = {f"{p}/{n}": 0 for p, n in SERIES}
    last_epoch = 0.0
    with open(path) as fh:
        for line in fh:
            m = json.loads(line)
            key = f"{m['phase']}/{m['name']}"
            if key in counts:
                counts[key] += 1
                last_epoch = max(last_epoch, m["epoch"])
    rnd = random.Random(seed)
    now = time.time()
    with open(path, "a") as fh:
        for phase, name in SERIES:
            key = f"{phase}/{name}"
            extra = points - counts[key]
            for i in range(extra):
                epoch = last_epoch + (i + 1) * 1000.0 / extra  # another 1,000 epochs
                t = epoch / (last_epoch + 1000.0)
                if name == "learning_rate":
                    value = 0.01 * 0.1 ** math.floor(t * 3)
                elif name == "accuracy":
                    value = min(1.0, 0.6 + 0.38 * t + rnd.gauss(0, 0.01))
                else:
                    value = abs(1.5 * math.exp(-4 * t) + rnd.gauss(0, 0.05))
                point = {"task": "train", "time": now, "phase": phase, "name": name, "value": value}
                fh.write(json.dumps({**point, "epoch": epoch, "iteration": None}) + "\n")
            counts[key] = points
    return counts


DRAWN = """(n) => window.DIGITS && DIGITS.modelCharts && DIGITS.modelCharts.counts()['train/loss'] >= n
  && DIGITS.modelCharts.group.charts.every((c) => c.u && c.u.data[0].length > 0)"""
NEXT_FRAME = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


def first_draw(browser, url: str, points: int, errors: list[str]):
    """A new page at `url`: (seconds from navigation to both charts drawn, the page)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("pageerror", lambda e: errors.append(str(e)))
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN, arg=points, timeout=120_000, polling="raf")
    page.evaluate(NEXT_FRAME)
    return time.perf_counter() - started, page


def restart_draw(server, url: str, chromium: str, points: int) -> float:
    """Seconds to the first draw right after a server restart, in a browser that had shown the page before (as a
    person's has: its static files are cached; the server comes back on the same port, so the same origin)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            errors: list[str] = []
            _, page = first_draw(browser, url, points, errors)
            page.close()
            server.stop()
            server.start()
            seconds, _ = first_draw(browser, url, points, errors)
            if errors:
                raise RuntimeError(f"page errors: {errors}")
            return round(seconds, 2)
        finally:
            browser.close()


def measure(url: str, chromium: str, points: int, runs: int, warm_up) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            errors: list[str] = []
            cold_s, page = first_draw(browser, url, points, errors)
            page.close()
            warm_up()
            first_draw_s, page = first_draw(browser, url, points, errors)
            timings = page.evaluate(
                """(runs) => {
                  const c = DIGITS.modelCharts, out = {full: [], zoomed: []};
                  for (const key of ["full", "zoomed"]) {
                    if (key === "zoomed") {  // the middle fifth of the epochs
                      const [a, b] = c.group.extent();
                      c.group.view = {min: a + (b - a) * 0.4, max: a + (b - a) * 0.6};
                    }
                    c.redrawNow();  // warm up
                    for (let i = 0; i < runs; i++) {
                      const t0 = performance.now();
                      c.redrawNow();
                      out[key].push(performance.now() - t0);
                    }
                  }
                  c.group.view = null;
                  out.drawn = c.group.charts.map((ch) => ch.u ? ch.u.data[0].length : 0);
                  out.width = c.group.charts.map((ch) => ch.u ? ch.u.bbox.width / uPlot.pxRatio : 0);
                  return out;
                }""",
                runs,
            )
            counts = page.evaluate("DIGITS.modelCharts.counts()")
            page.wait_for_function("!DIGITS.modelCharts.detailPending()", timeout=120_000)
            page.evaluate(NEXT_FRAME)
            started = time.perf_counter()
            loads = page.evaluate(
                """() => {
                  const c = DIGITS.modelCharts, [a, b] = c.group.extent();
                  c.group.setView(a + (b - a) * 0.5, a + (b - a) * 0.51);
                  return c.detailLoads();
                }"""
            )
            page.wait_for_function(
                "(n) => DIGITS.modelCharts.detailLoads() > n && !DIGITS.modelCharts.detailPending()",
                arg=loads,
                timeout=120_000,
            )
            page.evaluate(NEXT_FRAME)
            zoom_to_detail_s = time.perf_counter() - started
            detail_drawn = page.evaluate("DIGITS.modelCharts.group.charts.map((ch) => ch.u.data[0].length)")
            if errors:
                raise RuntimeError(f"page errors: {errors}")
        finally:
            browser.close()
    return {
        "redraw_ms": round(statistics.median(timings["full"]), 2),
        "zoomed_redraw_ms": round(statistics.median(timings["zoomed"]), 2),
        "page_to_first_draw_s": round(first_draw_s, 2),
        "cold_page_to_first_draw_s": round(cold_s, 2),
        "zoom_to_detail_s": round(zoom_to_detail_s, 2),
        "detail_drawn_x_values": detail_drawn,
        "points_per_series": counts,
        "drawn_x_values": timings["drawn"],
        "plot_width_px": timings["width"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-chart-")
    jobs = os.path.join(work, "jobs")
    try:
        server = Devserver(jobs).start()
        try:
            dataset = server.build_dataset(make_images(os.path.join(work, "images"), 20))
            job_id = server.train_lenet(dataset, epochs=1)
            if server.wait("models", job_id)["status"] != "Done":
                raise RuntimeError("the short training run failed")
        finally:
            server.stop()
        extend_metrics(os.path.join(jobs, job_id), args.points)
        server = Devserver(jobs).start()  # reads the job again, with its long history
        try:

            def warm_up():  # what any look at the job does: the server has read its metrics since it started
                assert server.http.get(f"{server.url}/models/{job_id}/json", headers=JSON).ok

            result = measure(f"{server.url}/models/{job_id}", args.chromium, args.points, args.runs, warm_up)
        finally:
            server.stop()
        server.start()  # the same port again; it reads the history it kept beside the file
        try:
            url = f"{server.url}/models/{job_id}"
            result["restart_page_to_first_draw_s"] = restart_draw(server, url, args.chromium, args.points)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"name": "chart_100k", **result}))


if __name__ == "__main__":
    main()
