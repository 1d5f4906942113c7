"""A whole LMDB split of Datum records decoded into one array (N x H x W x C) and its labels.

Decoding starts on threads in the calling process (Pillow's decoders and LMDB release the GIL, and a small
split is done before a process could have started). When the part already decoded says the rest would take
longer than starting processes costs, the rest is shared with child processes that import only these formats
(`python -m digits.formats.datum_batch`, never torch): small images are mostly Python work, which threads do
not spread over cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from digits.formats.caffe_pb import datum_to_array
from digits.formats.lmdb_io import LmdbReader

DECODE_CHUNK = 256
# Decoding left that would take longer than this on threads goes to processes too: a child costs about 0.2 s of
# CPU to start (numpy, Pillow, protobuf, lmdb), and the split's records are read again from its LMDB there.
PROCESS_PAYOFF_S = 1.0
RECORD_ERROR_EXIT = 3  # a child's exit status when a record is at fault (its message on stderr)


class RecordError(ValueError):
    """A record that cannot join the split: undecodable, or not of the first record's size; the message says which."""


def describe(arr: np.ndarray) -> str:
    height, width, channels = arr.shape
    return f"{width}x{height} with {channels} channel{'s' if channels != 1 else ''}" + (
        f" ({arr.dtype})" if arr.dtype != np.uint8 else ""
    )


def decode_into(raws: list[bytes], images: np.ndarray, labels: np.ndarray, first_index: int = 0) -> None:
    """Decode raws[i] into images[i] and labels[i]; `first_index` is raws[0]'s index in the split (for messages)."""
    for i, raw in enumerate(raws):
        try:
            arr, label = datum_to_array(raw)
        except Exception as e:  # noqa: BLE001 - protobuf, Pillow and numpy each raise their own
            raise RecordError(f"record {first_index + i} cannot be decoded: {e}") from None
        if arr.shape != images.shape[1:] or arr.dtype != images.dtype:
            raise RecordError(
                f"record {first_index + i} is {describe(arr)}, but the split's first record is {describe(images[0])}"
            )
        images[i] = arr
        labels[i] = label


def _on_threads(raws: list[bytes], images: np.ndarray, labels: np.ndarray, lo: int, hi: int, threads: int) -> None:
    spans = [(a, min(a + DECODE_CHUNK, hi)) for a in range(lo, hi, DECODE_CHUNK)]
    if len(spans) <= 1 or threads <= 1:
        for a, b in spans:
            decode_into(raws[a:b], images[a:b], labels[a:b], a)
        return
    with ThreadPoolExecutor(min(threads, len(spans))) as pool:
        list(pool.map(lambda s: decode_into(raws[s[0] : s[1]], images[s[0] : s[1]], labels[s[0] : s[1]], s[0]), spans))


def _read_exactly(stream, out: np.ndarray) -> bool:
    view = memoryview(out).cast("B")
    while view:
        n = stream.readinto(view)
        if not n:
            return False
        view = view[n:]
    return True


def _in_processes(
    db_path: str, keys: list[bytes], raws: list[bytes], images: np.ndarray, labels: np.ndarray, lo: int, parts: int
) -> None:
    """Decode records lo.. on `parts` cores: this process takes the first share, one child each of the others."""
    n = len(raws)
    parts = max(1, min(parts, n - lo))
    bounds = [lo + (n - lo) * k // parts for k in range(parts + 1)]
    children = []
    try:
        for a, b in zip(bounds[1:-1], bounds[2:], strict=True):
            spec = {"db": db_path, "key": keys[a].hex(), "count": b - a, "index": a}
            spec |= {"shape": list(images.shape[1:]), "dtype": images.dtype.str}
            argv = [sys.executable, "-m", "digits.formats.datum_batch", json.dumps(spec)]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            children.append((proc, a, b))
        decode_into(raws[bounds[0] : bounds[1]], images[bounds[0] : bounds[1]], labels[bounds[0] : bounds[1]], lo)
        for proc, a, b in children:
            if not (_read_exactly(proc.stdout, images[a:b]) and _read_exactly(proc.stdout, labels[a:b])):
                proc.wait()
                message = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
                if proc.returncode == RECORD_ERROR_EXIT and message:
                    raise RecordError(message[-1])
                raise RecordError(
                    f"the process decoding records {a} to {b - 1} stopped (exit {proc.returncode})"
                    + (f": {message[-1]}" if message else "")
                )
    finally:
        for proc, _, _ in children:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()


def decode_records(
    db_path: str, keys: list[bytes], raws: list[bytes], cores: int | None = None, payoff_s: float = PROCESS_PAYOFF_S
) -> tuple[np.ndarray, np.ndarray]:
    """The records (`keys`, `raws`: all of the LMDB at db_path, in order) as (N x H x W x C images, int64 labels),
    on `cores` (default: all); processes join in when what is left would take longer than `payoff_s` on threads."""
    if not raws:
        raise RecordError("there are no records")
    cores = cores or os.cpu_count() or 1
    try:
        first, _ = datum_to_array(raws[0])
    except Exception as e:  # noqa: BLE001 - as in decode_into
        raise RecordError(f"record 0 cannot be decoded: {e}") from None
    images = np.empty((len(raws), *first.shape), first.dtype)
    labels = np.empty(len(raws), np.int64)
    probe = min(len(raws), DECODE_CHUNK * cores)
    started = time.perf_counter()
    _on_threads(raws, images, labels, 0, probe, cores)
    left_s = (time.perf_counter() - started) / probe * (len(raws) - probe)
    if cores > 1 and left_s > payoff_s:
        _in_processes(db_path, keys, raws, images, labels, probe, cores)
    else:
        _on_threads(raws, images, labels, probe, len(raws), cores)
    return images, labels


def main(argv: list[str] | None = None) -> int:
    """A child's part: {"db", "key" (hex), "count", "index", "shape", "dtype"} in; images then labels, raw, out."""
    # The worker's process group gets its abort signal; the worker stops at its next step, after the data is in.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    spec = json.loads((argv or sys.argv[1:])[0])
    with LmdbReader(spec["db"]) as db:
        raws = [raw for _, raw in db.items(start=bytes.fromhex(spec["key"]), limit=spec["count"])]
    images = np.empty((len(raws), *spec["shape"]), np.dtype(spec["dtype"]))
    labels = np.empty(len(raws), np.int64)
    try:
        if len(raws) != spec["count"]:
            raise RecordError(f"the database ends before record {spec['index'] + spec['count'] - 1}")
        decode_into(raws, images, labels, spec["index"])
    except RecordError as e:
        print(e, file=sys.stderr)
        return RECORD_ERROR_EXIT
    out = sys.stdout.buffer
    out.write(memoryview(images).cast("B"))
    out.write(memoryview(labels).cast("B"))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
