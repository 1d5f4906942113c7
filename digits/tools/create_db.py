"""Build a dataset folder from the command line, as the New Dataset form does, with a progress bar.

    python -m digits.tools.create_db --folder ~/mnist/train --val-folder ~/mnist/test \\
        --channels 1 --width 28 --height 28 OUT_DIR

OUT_DIR gets what a dataset job folder holds (labels.txt, train.txt, train_db/, mean.binaryproto, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from digits.config import Settings
from digits.dataset.create_db import ImageSettings, build_db, save_mean
from digits.dataset.forms import read_dataset_form
from digits.dataset.parse import parse_folders, write_lists
from digits.folders.dataset import IMAGE_JSON, STATS, db_name
from digits.progress import ProgressBar
from digits.store import write_json_atomic
from digits.worker_runtime import TaskFailed


def form_values(args: argparse.Namespace) -> dict[str, str]:
    """The command line as the form's fields, so both are checked by the same code."""
    values = {
        "dataset_name": os.path.basename(os.path.abspath(args.output_dir)),
        "method": "folder",
        "folder_train": args.folder,
        "folder_pct_val": str(args.pct_val),
        "folder_pct_test": str(args.pct_test),
        "resize_channels": str(args.channels),
        "resize_width": str(args.width),
        "resize_height": str(args.height),
        "resize_mode": args.resize_mode,
        "encoding": args.encoding,
        "random_seed": str(args.seed),
    }
    if args.val_folder:
        values.update(has_val_folder="true", folder_val=args.val_folder)
    if args.min_per_class:
        values["folder_train_min_per_class"] = str(args.min_per_class)
    if args.max_per_class:
        values["folder_train_max_per_class"] = str(args.max_per_class)
    return values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m digits.tools.create_db", description=__doc__.splitlines()[0])
    p.add_argument("output_dir")
    p.add_argument("--folder", required=True, help="training images: one subfolder per class")
    p.add_argument("--val-folder", help="validation images in their own class folders")
    p.add_argument("--pct-val", type=float, default=25.0)
    p.add_argument("--pct-test", type=float, default=0.0)
    p.add_argument("--min-per-class", type=int)
    p.add_argument("--max-per-class", type=int)
    p.add_argument("--channels", type=int, default=3, choices=[1, 3])
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--resize-mode", default="squash")
    p.add_argument("--encoding", default="png")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.val_folder:
        args.pct_val = 0.0

    form, errors = read_dataset_form(form_values(args), {}, Settings())
    if errors:
        for field, messages in errors.items():
            print(f"error: {field}: {' '.join(messages)}", file=sys.stderr)
        return 2
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    try:
        parse_args = {**form.parse_args(), "allowed_roots": None, "wanted_splits": form.splits}
        result = parse_folders(parse_args)
        write_lists(out, result)
        stats = {"parse": {"labels": result.labels, "counts": result.counts(), "skipped": result.skipped}}
        settings = ImageSettings.from_dict(form.image_settings())
        for split in form.splits:
            entries = result.splits[split]
            bar = ProgressBar(len(entries), db_name(split))

            def show(fraction: float, bar: ProgressBar = bar, total: int = len(entries)) -> None:
                bar.update(int(fraction * total))

            db = build_db(
                entries,
                os.path.join(out, db_name(split)),
                settings,
                len(result.labels),
                with_mean=split == "train",
                progress=show,
            )
            bar.close(f"{db.entries:,} records, {len(db.skipped)} skipped")
            for item in db.skipped:
                print(f"  skipped {item['path']}: {item['reason']}", file=sys.stderr)
            if db.mean is not None:
                save_mean(out, db.mean)
            stats[split] = {
                "entries": db.entries,
                "per_class": db.per_class,
                "skipped": db.skipped,
                "sizes": db.sizes,
                "seconds": round(db.seconds, 3),
            }
        write_json_atomic(os.path.join(out, STATS), stats)
        with open(os.path.join(out, IMAGE_JSON), "w") as fh:
            json.dump(form.image_settings(), fh, indent=1)
    except TaskFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
