"""Pictures of what a network computes, as PNG data URLs: tiled channels and kernels, heat maps, statistics,
and the confusion matrix (matplotlib, Agg). Worker side, but torch-free: arrays in, PNG bytes out.
"""

from __future__ import annotations

import base64
import io
import math
import os

import numpy as np
from PIL import Image

MAX_TILES = 256  # channels or filters drawn per layer; the rest are counted, not drawn
MAX_KERNEL_ROWS = 64
MAX_KERNEL_COLS = 16
MAX_MATRIX_SIDE = 256
HISTOGRAM_BINS = 20


def _lut(anchors: list[tuple[int, int, int]]) -> np.ndarray:
    """A 256-entry color table through evenly spaced anchor colors."""
    points = np.linspace(0, 255, len(anchors))
    channels = [np.interp(np.arange(256), points, [a[c] for a in anchors]) for c in range(3)]
    return np.stack(channels, 1).round().astype(np.uint8)


VIRIDIS = _lut([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)])
JET_ANCHORS = [(0, 0, 143), (0, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 0), (128, 0, 0)]
JET = _lut(JET_ANCHORS)


def css_gradient(anchors: list[tuple[int, int, int]] = JET_ANCHORS) -> str:
    """A CSS linear-gradient through a color table's anchors, low to high (a heat map's legend)."""
    return "linear-gradient(to right, " + ", ".join(f"rgb({r}, {g}, {b})" for r, g, b in anchors) + ")"


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG of an H x W (gray), H x W x 1 or H x W x 3 uint8 array."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def data_url(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def thumbnail_file(pixels: np.ndarray, side: int) -> bytes:
    """An H x W x C uint8 image shrunk to fit side x side as file bytes: PNG for small or gray pictures (exact
    and tiny), JPEG for larger color ones (a tenth of the PNG's size)."""
    small = thumbnail(pixels, side)
    if small.ndim == 2 or small.shape[0] * small.shape[1] <= 32 * 32:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(small)).save(buf, "PNG", optimize=False, compress_level=6)
        return buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(small)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def thumbnail(pixels: np.ndarray, side: int) -> np.ndarray:
    """An H x W x C uint8 image shrunk to fit side x side (never enlarged)."""
    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    img.thumbnail((side, side), Image.Resampling.BILINEAR)
    return np.asarray(img)


def unit_range(values: np.ndarray) -> np.ndarray:
    """Values scaled to 0..1 over their own range (a constant array is all 0.5)."""
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if high - low < 1e-12:
        return np.full(values.shape, 0.5, dtype=np.float32)
    return (values - low) / (high - low)


def colorize(unit: np.ndarray, lut: np.ndarray = VIRIDIS) -> np.ndarray:
    """0..1 values (any shape) as uint8 RGB colors (shape + (3,))."""
    return lut[np.clip(np.round(unit * 255), 0, 255).astype(np.intp)]


def tile(images: np.ndarray, cols: int | None = None, pad: int = 1, background: int = 255) -> np.ndarray:
    """N x h x w (or N x h x w x 3) images in a grid, `pad` pixels of `background` (white) between them."""
    n, h, w = images.shape[:3]
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    shape = (rows * (h + pad) - pad, cols * (w + pad) - pad, *images.shape[3:])
    out = np.full(shape, background, dtype=images.dtype)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return out


def _as_grid(vector: np.ndarray) -> np.ndarray:
    """A vector as a near-square 2-D grid (padded with its minimum), so a fully connected layer can be seen."""
    n = vector.size
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.full(rows * cols, vector.min(initial=0.0), dtype=np.float32)
    grid[:n] = vector.ravel()
    return grid.reshape(rows, cols)


def _shrink(matrix: np.ndarray, side: int = MAX_MATRIX_SIDE) -> np.ndarray:
    """A 2-D array averaged down in blocks so neither side exceeds `side`."""
    fy, fx = math.ceil(matrix.shape[0] / side), math.ceil(matrix.shape[1] / side)
    if fy == 1 and fx == 1:
        return matrix
    h, w = math.ceil(matrix.shape[0] / fy) * fy, math.ceil(matrix.shape[1] / fx) * fx
    padded = np.pad(matrix, ((0, h - matrix.shape[0]), (0, w - matrix.shape[1])), mode="edge")
    return padded.reshape(h // fy, fy, w // fx, fx).mean(axis=(1, 3))


def activations_picture(act: np.ndarray) -> np.ndarray:
    """One image's layer output (C x H x W, or a vector) as a colored RGB mosaic, one tile per channel."""
    if act.ndim == 3 and act.shape[1] * act.shape[2] > 1:
        return tile(colorize(unit_range(act[:MAX_TILES])))
    return colorize(unit_range(_as_grid(act.ravel())))


def weights_picture(weights: np.ndarray) -> np.ndarray | None:
    """A layer's weights as a picture: conv kernels tiled (RGB when they read 3 channels), matrices as heat maps."""
    w = weights.astype(np.float32)
    if w.ndim == 4:
        out_ch, in_ch = w.shape[:2]
        if in_ch == 3:  # color filters, drawn in color
            kernels = unit_range(w[:MAX_TILES]).transpose(0, 2, 3, 1)
            return tile((kernels * 255).round().astype(np.uint8))
        if in_ch == 1:
            return tile(colorize(unit_range(w[:MAX_TILES, 0])))
        # one row per filter, one column per input channel it reads
        rows, cols = min(out_ch, MAX_KERNEL_ROWS), min(in_ch, MAX_KERNEL_COLS)
        kernels = unit_range(w[:rows, :cols]).reshape(rows * cols, *w.shape[2:])
        return tile(colorize(kernels), cols=cols)
    if w.ndim == 2:
        return colorize(unit_range(_shrink(w)))
    if w.ndim in (1, 3):
        return colorize(unit_range(_as_grid(w.ravel())))
    return None


def statistics(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict:
    """Mean, standard deviation, range and a histogram of an array's finite values."""
    flat = values.astype(np.float64).ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "histogram": {"counts": [], "edges": []}}
    counts, edges = np.histogram(flat, bins=bins)
    return {
        "mean": float(flat.mean()),
        "std": float(flat.std()),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]},
    }


def heat_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A 0..1 heat map (any size) resized onto an H x W x C uint8 image and blended over it, as RGB."""
    height, width = image.shape[:2]
    resized = heat.astype(np.float32)
    if resized.shape != (height, width):
        resized = np.asarray(Image.fromarray(resized, mode="F").resize((width, height), Image.Resampling.BILINEAR))
    colors = colorize(np.clip(resized, 0.0, 1.0), JET).astype(np.float32)
    base = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(height, width, 1), 3, 2)
    return np.clip(base.astype(np.float32) * (1 - alpha) + colors * alpha, 0, 255).round().astype(np.uint8)


def save_confusion_matrix(labels: list[str], matrix: np.ndarray, path: str) -> None:
    """The confusion matrix (rows: true class, columns: predicted) as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    k = len(labels)
    side = min(16.0, max(4.0, 0.45 * k + 2))
    fig = Figure(figsize=(side, side), dpi=100)
    ax = fig.add_subplot()
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=np.float64), where=totals > 0)
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    if k <= 40:
        ticks = np.arange(k)
        ax.set_xticks(ticks, labels=labels, rotation=90, fontsize=8)
        ax.set_yticks(ticks, labels=labels, fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                color = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8, color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    tmp = path + ".tmp"
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
