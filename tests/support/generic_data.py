"""Generated generic (tabular) data for tests: two Gaussian blobs, a linear target, written as CSV or NumPy."""

from __future__ import annotations

import numpy as np


def blobs(n: int = 200, features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated Gaussian blobs: (float32 rows x features, labels 'left'/'right')."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    centers = np.where(y[:, None] == 1, 3.0, -3.0)
    x = (rng.normal(size=(n, features)) + centers).astype(np.float32)
    return x, np.array(["left", "right"])[y]


def linear(n: int = 300, features: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noiseless linear target: (x, y = x @ w + 1, w); features on different scales, to need normalizing."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, features)) * np.arange(1, features + 1) * 10).astype(np.float32)
    w = np.linspace(0.5, -0.25, features).astype(np.float32)
    return x, (x @ w + 1.0).astype(np.float32), w


def write_csv(path, x: np.ndarray, y, names: list[str] | None = None, target: str = "label") -> str:
    names = names or [f"x{i}" for i in range(x.shape[1])]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(",".join([*names, target]) + "\n")
        for row, t in zip(x, y, strict=True):
            fh.write(",".join([*(repr(float(v)) for v in row), str(t)]) + "\n")
    return str(path)
