"""Benchmark: MNIST's 60,000 training PNGs into an LMDB, against the limit of the same decode/resize/encode work
on all cores with no database. Prints one JSON line: {"name": "create_db", "img_s", "limit_img_s", "ratio"}.

    .venv/bin/python bench/create_db.py [--data DIR] [--images N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from digits.dataset.create_db import ImageSettings, build_db, pool_results  # noqa: E402
from digits.dataset.parse import parse_folders  # noqa: E402
from digits.download_data import write_mnist  # noqa: E402

SETTINGS = ImageSettings(channels=1, width=28, height=28, resize_mode="squash", encoding="png")


def ensure_mnist(folder: str) -> str:
    train = os.path.join(folder, "train")
    if not os.path.isdir(os.path.join(train, "9")):
        print(f"writing MNIST to {folder} ...", file=sys.stderr)
        write_mnist(folder, quiet=True)
    return train


def warm(entries) -> None:
    for path, _ in entries:  # both runs read from the page cache
        with open(path, "rb") as fh:
            fh.read()


def limit_rate(entries) -> float:
    start = time.perf_counter()
    pool, results = pool_results(entries, SETTINGS, with_mean=True)
    n = sum(len(r.labels) for r in results)
    pool.close()
    pool.join()
    return n / (time.perf_counter() - start)


def db_rate(entries, out: str) -> float:
    start = time.perf_counter()
    result = build_db(entries, os.path.join(out, "train_db"), SETTINGS, 10, with_mean=True)
    return result.entries / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "digits-bench-mnist"))
    p.add_argument("--images", type=int, default=60000)
    args = p.parse_args()
    train = ensure_mnist(args.data)
    entries = parse_folders({"train": {"path": train}, "pct_val": 0, "pct_test": 0})
    entries = entries.splits["train"][: args.images]
    warm(entries)
    out = tempfile.mkdtemp(prefix="bench-create-db-")
    try:
        limit = max(limit_rate(entries), limit_rate(entries))
        rate = max(db_rate(entries, out), db_rate(entries, out))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(
        json.dumps(
            {
                "name": "create_db",
                "images": len(entries),
                "img_s": round(rate, 1),
                "limit_img_s": round(limit, 1),
                "ratio": round(rate / limit, 3),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
