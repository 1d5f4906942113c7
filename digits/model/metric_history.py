"""A model's metrics.jsonl held in memory as arrays, read incrementally and off the event loop, and decimated for
charts (torch-free).

A long run's file holds hundreds of thousands of lines; parsing it takes about a second, so each file is parsed
once and then only what was appended since (the file is append-only). The history answers two questions: every
point as reported (the JSON twin's `metrics`, exactly as `folders.model.read_metrics` gives it), and the points a
chart draws, decimated to a pixel width while keeping each column's minimum and maximum.

A long history is also kept beside the file (metrics.cache.npz: arrays, no pickles), so the first look after a
server restart reads arrays and only the lines appended since, instead of parsing the whole file again. The cache
names the file (inode) and the offset it covers; anything that does not match, or does not load as plain arrays
of the right shapes, is ignored and the file is parsed. A worker can write its own folder's cache, as it can write
its own metrics: it can only change its own charts.
"""

from __future__ import annotations

import json
import math
import os
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digits.folders.model import METRICS_CACHE
from digits.offload import off_loop
from digits.store import METRICS_FILE

# How many model folders stay parsed in memory (each costs 16 bytes a point, and about as much again once
# charted): the pages people have open, not the whole jobs folder.
CACHED_FOLDERS = 8
# A history is kept on disk once a parse took this many bytes of the file (about 20,000 lines).
PERSIST_BYTES = 2 << 20
Key = tuple[Any, Any]


def _number(v: Any) -> float:
    """v as a float for the arrays (NaN when it is not a number a chart can draw)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return math.nan
    try:
        return float(v)
    except OverflowError:
        return math.nan


@dataclass
class _Chunk:
    """Lines parsed from one stretch of the file: per series, epochs, values and the points a float cannot hold
    exactly (an int epoch, a null value), by their index in the chunk."""

    epochs: dict[Key, list[float]] = field(default_factory=dict)
    values: dict[Key, list[float]] = field(default_factory=dict)
    odd: dict[Key, dict[int, list[Any]]] = field(default_factory=dict)


def _parse(data: bytes) -> _Chunk:
    chunk = _Chunk()
    lines = [line for line in data.split(b"\n") if line.strip()]
    try:  # one call for the whole stretch is twice as fast as one a line
        objects = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:  # a line that is not JSON (a crash mid-write): skipped, like read_metrics does
        objects = []
        for line in lines:
            try:
                objects.append(json.loads(line))
            except ValueError:
                continue
    # One pass over up to millions of lines: the common case (float epoch and value) kept to a few operations.
    series: dict[Key, tuple[list[float], list[float]]] = {}
    for m in objects:
        if type(m) is not dict:
            continue
        key = (m.get("phase", "train"), m.get("name", "?"))
        try:
            pair = series.get(key)
        except TypeError:  # a phase or name that cannot be a key (a list): not a point of any series
            continue
        if pair is None:
            pair = series[key] = ([], [])
        epochs, values = pair
        epoch, value = m.get("epoch"), m.get("value")
        if type(epoch) is float and type(value) is float:
            epochs.append(epoch)
            values.append(value)
        else:
            chunk.odd.setdefault(key, {})[len(epochs)] = [epoch, value]
            epochs.append(_number(epoch))
            values.append(_number(value))
    for key, (epochs, values) in series.items():
        chunk.epochs[key], chunk.values[key] = epochs, values
    return chunk


def _read(path: str, offset: int, inode: int | None) -> tuple[int, int, bool, _Chunk] | None:
    """The lines of `path` after `offset` (all of them when the file was replaced or shrank): (inode, new
    offset, whether it started over, parsed lines); None when there is no file. Runs off the event loop."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            restart = st.st_ino != inode or st.st_size < offset
            start = 0 if restart else offset
            fh.seek(start)
            data = fh.read()
    except OSError:
        return None
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    if tail.strip():
        # A last line without its newline: a line still being written, unless it is whole (a file made by hand).
        try:
            whole = isinstance(json.loads(tail), dict)
        except ValueError:
            whole = False
        if whole:
            end = len(data)
    return st.st_ino, start + end, restart, _parse(data[:end])


def _save(cache_path: str, inode: int, offset: int, series: dict[Key, SeriesHistory]) -> None:
    """Write the parsed history (written aside and renamed: a reader sees the old cache or the new one). Runs off
    the event loop; a folder that cannot take it (full disk, gone) keeps no cache."""
    keys = list(series)
    meta = {
        "inode": inode,
        "offset": offset,
        "series": [[list(k), {str(i): pair for i, pair in series[k].odd.items()}] for k in keys],
    }
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for i, k in enumerate(keys):
        arrays[f"e{i}"], arrays[f"v{i}"] = series[k].epochs, series[k].values
    partial = f"{cache_path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(partial, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(partial, cache_path)
    except OSError:
        try:
            os.unlink(partial)
        except OSError:
            pass


def _load(cache_path: str, inode: int, size: int) -> tuple[int, dict[Key, SeriesHistory]] | None:
    """(offset, series) from the cache when it covers the start of this very file; None otherwise. Runs off the
    event loop."""
    try:
        if os.path.getsize(cache_path) > 2 * size + (1 << 20):  # more than the file could ever make: not ours
            return None
        with open(cache_path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            if meta["inode"] != inode or not 0 < meta["offset"] <= size:
                return None
            series: dict[Key, SeriesHistory] = {}
            for i, (key, odd) in enumerate(meta["series"]):
                s = SeriesHistory()
                s.epochs, s.values = z[f"e{i}"].astype(np.float64), z[f"v{i}"].astype(np.float64)
                if s.epochs.shape != s.values.shape or s.epochs.ndim != 1:
                    return None
                s.odd = {int(j): list(pair) for j, pair in odd.items()}
                if any(not 0 <= j < len(s.epochs) for j in s.odd):
                    return None
                series[(key[0], key[1])] = s
            return int(meta["offset"]), series
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, zipfile.BadZipFile):
        return None


class SeriesHistory:
    """One series' points, every one as reported, in the order reported."""

    def __init__(self) -> None:
        self.epochs = np.empty(0)
        self.values = np.empty(0)
        self.odd: dict[int, list[Any]] = {}
        self._chart: tuple[int, np.ndarray, np.ndarray] | None = None

    def extend(self, epochs: list[float], values: list[float], odd: dict[int, list[Any]]) -> None:
        n = len(self.epochs)
        self.odd.update({n + i: pair for i, pair in odd.items()})
        self.epochs = np.concatenate([self.epochs, np.asarray(epochs, dtype=np.float64)])
        self.values = np.concatenate([self.values, np.asarray(values, dtype=np.float64)])

    def __len__(self) -> int:
        return len(self.epochs)

    def last(self) -> list[Any]:
        """The last [epoch, value] as reported."""
        n = len(self.epochs) - 1
        return list(self.odd[n]) if n in self.odd else [float(self.epochs[n]), float(self.values[n])]

    def as_lists(self) -> list[list[Any]]:
        """[[epoch, value], ...] as the file has them (read_metrics' shape)."""
        out = np.column_stack([self.epochs, self.values]).tolist()
        for i, pair in self.odd.items():
            out[i] = list(pair)
        return out

    def chart(self) -> tuple[np.ndarray, np.ndarray]:
        """The points a chart draws: finite ones whose epoch is past every earlier one (a resumed run reports again
        the stretch after its snapshot; the first report stays), as the page's own Series keeps them."""
        n = len(self.epochs)
        if self._chart is None or self._chart[0] != n:
            x, y = self.epochs, self.values
            finite = np.isfinite(x) & np.isfinite(y)
            x, y = x[finite], y[finite]
            if len(x):
                before = np.maximum.accumulate(x)
                keep = np.empty(len(x), dtype=bool)
                keep[0] = True
                keep[1:] = x[1:] > before[:-1]
                x, y = x[keep], y[keep]
            self._chart = (n, x, y)
        return self._chart[1], self._chart[2]


class MetricHistory:
    """Every series of one metrics.jsonl, brought up to date by `refresh`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cache_path = os.path.join(os.path.dirname(path), METRICS_CACHE)
        self.inode: int | None = None
        self.offset = 0
        self.series: dict[Key, SeriesHistory] = {}
        # One reader at a time: the page and its charts' request arrive together, and a long file is parsed once.
        # Under gevent both are cooperative; neither is held by the parse itself (on a native thread).
        self._lock = threading.Lock()
        self._reading: threading.Event | None = None

    def refresh(self) -> MetricHistory:
        while True:
            try:
                st = os.stat(self.path)
            except OSError:
                self.inode, self.offset, self.series = None, 0, {}
                return self
            if st.st_ino == self.inode and st.st_size == self.offset:
                return self
            with self._lock:
                reading = self._reading
                if reading is None:
                    reading = self._reading = threading.Event()
                    break
            reading.wait()  # then look again: the file may have grown meanwhile
        try:
            if self.inode is None and st.st_size >= PERSIST_BYTES:
                cached = off_loop(_load, self.cache_path, st.st_ino, st.st_size)
                if cached is not None:
                    self.offset, self.series = cached
                    self.inode = st.st_ino
            before = self.offset
            read = off_loop(_read, self.path, self.offset, self.inode)
            if read is None:
                self.inode, self.offset, self.series = None, 0, {}
                return self
            inode, offset, restart, chunk = read
            series = {} if restart else dict(self.series)
            for key, epochs in chunk.epochs.items():
                s = series.get(key)
                if s is None:
                    s = series[key] = SeriesHistory()
                s.extend(epochs, chunk.values[key], chunk.odd.get(key, {}))
            self.series, self.inode, self.offset = series, inode, offset
            if offset - (0 if restart else before) >= PERSIST_BYTES:
                off_loop(_save, self.cache_path, inode, offset, series)
        finally:
            with self._lock:
                self._reading = None
            reading.set()
        return self

    def as_dict(self) -> dict[Any, dict[Any, list[list[Any]]]]:
        """{phase: {name: [[epoch, value], ...]}}, in the order reported: what read_metrics returns."""
        out: dict[Any, dict[Any, list[list[Any]]]] = {}
        for (phase, name), s in self.series.items():
            out.setdefault(phase, {})[name] = s.as_lists()
        return out


_CACHE: OrderedDict[str, MetricHistory] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def metric_history(job_dir: str) -> MetricHistory:
    """The metrics of a model folder, up to date (parsed off the event loop, only what was appended since)."""
    path = os.path.join(job_dir, METRICS_FILE)
    with _CACHE_LOCK:
        history = _CACHE.get(path)
        if history is None:
            history = _CACHE[path] = MetricHistory(path)
        _CACHE.move_to_end(path)
        while len(_CACHE) > CACHED_FOLDERS:
            _CACHE.popitem(last=False)
    return history.refresh()


def decimate(x: np.ndarray, y: np.ndarray, x0: float, x1: float, buckets: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The points of [x0, x1] to draw across `buckets` pixel columns (x strictly increasing): all of them when
    they fit in two a column, else the first and last, and the minimum and maximum of each column in x order
    (so every spike a full-resolution line would show stays). One point on each side of the window is kept so
    lines run to the edges. Returns (x, y, whether points were left out)."""
    i0 = max(0, int(np.searchsorted(x, x0, "left")) - 1)
    i1 = min(len(x), int(np.searchsorted(x, x1, "right")) + 1)
    xs, ys = x[i0:i1], y[i0:i1]
    n = len(xs)
    if n <= 2 * buckets + 2 or not x1 > x0:
        return xs, ys, False
    column = np.floor((xs - x0) * (buckets / (x1 - x0))).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    segment = np.cumsum(np.r_[True, column[1:] != column[:-1]]) - 1
    index = np.arange(n)
    # The first index of each column's minimum and of its maximum.
    lows = np.minimum.reduceat(np.where(ys == np.minimum.reduceat(ys, starts)[segment], index, n), starts)
    highs = np.minimum.reduceat(np.where(ys == np.maximum.reduceat(ys, starts)[segment], index, n), starts)
    keep = np.unique(np.concatenate([[0, n - 1], lows, highs]))
    return xs[keep], ys[keep], True


def in_range(x: np.ndarray, x0: float, x1: float) -> int:
    """How many of the (increasing) x lie in [x0, x1]."""
    return int(np.searchsorted(x, x1, "right") - np.searchsorted(x, x0, "left"))
