"""How many CPU threads an inference worker gives torch: all of them for a batch, and for one image what is
fastest for the loaded network (worker side)."""

from __future__ import annotations

import contextlib
import time

import torch

from digits.engine.inference.model import LoadedModel


@contextlib.contextmanager
def torch_threads(count: int):
    threads = torch.get_num_threads()
    if count != threads:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != threads:
            torch.set_num_threads(threads)


def threads_for_one(model: LoadedModel) -> int:
    """How many CPU threads score one image fastest: one for a small network (waking a thread pool costs more
    than it saves, far more when training keeps the cores busy), all of them for a large one. Timed once."""
    threads = torch.get_num_threads()
    if model.device.type != "cpu" or threads == 1:
        return threads
    x = torch.zeros((1, *model.dataset.shape), dtype=torch.uint8)
    best = {}
    for count in (1, threads):
        with torch_threads(count):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                model.logits(model.transform(x))
                times.append(time.perf_counter() - started)
        best[count] = min(times)
    return min(best, key=best.get)
