"""Benchmark: the classify-many results page over 10,000 classified images.

A real server trains LeNet for one epoch on a small shapes dataset, then classifies a labeled list of 10,000
distinct images through the JSON twin (the results and thumbnails are kept in the model's results/). Then:

- classify_s: the POST itself (reading, scoring, thumbnails, keeping the run);
- first_page_cold_s, first_page_s: GET of the results page (first page of 50): the first GET after the POST
  (reads result.json) and the median of the next ones (goal: < 1 s), with first_page_bytes (goal: < 1 MB) and
  the number of <img> on it (thumbnails load lazily, each from its own URL);
- sorted_filtered_page_s: wrong ones only, most confident first, page 3;
- mistakes_page_s: the mistakes gallery;
- last_page_s: the last page at 200 per page;
- thumbnail_s, thumbnail_bytes: one thumbnail;
- export_csv_s / export_csv_bytes, export_json_s / export_json_bytes: the full exports.
Prints one JSON line: {"name": "classify_many_page", ...}

    .venv/bin/python bench/classify_many_page.py [--images 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from live_latency import JSON, Devserver, make_images  # noqa: E402

HTML = {"Accept": "text/html"}
CLASSES = ("circle", "square", "triangle")


def timed(server: Devserver, url: str, headers=HTML) -> tuple[float, bytes]:
    started = time.perf_counter()
    r = server.http.get(url, headers=headers, timeout=600)
    elapsed = time.perf_counter() - started
    r.raise_for_status()
    return elapsed, r.content


def median_of(server: Devserver, url: str, runs: int) -> tuple[float, bytes]:
    times, body = [], b""
    for _ in range(runs):
        elapsed, body = timed(server, url)
        times.append(elapsed)
    return statistics.median(times), body


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-results-")
    try:
        server = Devserver(os.path.join(work, "jobs")).start()
        try:
            dataset = server.build_dataset(make_images(os.path.join(work, "train"), 20))
            model = server.train_lenet(dataset, epochs=1)
            if server.wait("models", model)["status"] != "Done":
                raise RuntimeError("the short training run failed")
            per_class = -(-args.images // len(CLASSES))
            folder = make_images(os.path.join(work, "list"), per_class, seed=1)
            lines = [
                f"{os.path.join(folder, cls, name)} {index}"
                for index, cls in enumerate(CLASSES)
                for name in sorted(os.listdir(os.path.join(folder, cls)))
            ][: args.images]
            started = time.perf_counter()
            r = server.http.post(
                server.url + "/models/images/classification/classify_many/json",
                data={"job_id": model},
                files={"image_list": ("list.txt", ("\n".join(lines) + "\n").encode())},
                headers=JSON,
                timeout=3600,
            )
            classify_s = time.perf_counter() - started
            r.raise_for_status()
            answer = r.json()
            page = server.url + answer["results_url"]
            cold_s, body = timed(server, page)
            first_s, body = median_of(server, page, args.runs)
            html = body.decode()
            sorted_s, _ = median_of(server, page + "?outcome=wrong&sort=confidence&order=desc&page=3", args.runs)
            mistakes_s, _ = median_of(server, page + "?view=mistakes", args.runs)
            last_s, _ = median_of(server, page + "?per_page=200&page=1000", args.runs)
            thumb = re.search(r'src="([^"]+/thumbs/\d+)"', html).group(1)
            thumb_s, thumb_body = median_of(server, server.url + thumb.replace("&amp;", "&"), args.runs)
            csv_s, csv_body = timed(server, page + "/export.csv")
            json_s, json_body = timed(server, page + "/export.json")
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "name": "classify_many_page",
        "images": len(answer["classifications"]),
        "classify_s": round(classify_s, 2),
        "first_page_cold_s": round(cold_s, 4),
        "first_page_s": round(first_s, 4),
        "first_page_bytes": len(body),
        "first_page_images": html.count("<img"),
        "first_page_inline_images": html.count("data:image"),
        "sorted_filtered_page_s": round(sorted_s, 4),
        "mistakes_page_s": round(mistakes_s, 4),
        "last_page_s": round(last_s, 4),
        "thumbnail_s": round(thumb_s, 4),
        "thumbnail_bytes": len(thumb_body),
        "export_csv_s": round(csv_s, 3),
        "export_csv_bytes": len(csv_body),
        "export_json_s": round(json_s, 3),
        "export_json_bytes": len(json_body),
        "goals": {"first_page_s": 1.0, "first_page_bytes": 1_000_000},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
