"""The records of a dataset split a model gets wrong with the most confidence (the "hardest" request of the
inference worker): one pass over its LMDB or HDF5 records in batches, keeping the n worst in a heap."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from digits.engine.inference.model import LoadedModel
from digits.formats.split_io import SplitRecords


def most_confidently_wrong(
    model: LoadedModel, db: SplitRecords, split: str, paths: list[str] | None, n: int, done: Callable[[int], None]
) -> dict[str, Any]:
    """The n misclassified records of `db` (the split's records, listed by `paths`), surest first; `done(count)`
    after each batch."""
    heap: list[tuple[float, int, int, int, float]] = []
    total = wrong = 0
    batch: list[tuple[np.ndarray, int]] = []

    def flush() -> None:
        nonlocal total, wrong
        ranked, probs = model.predict([a for a, _ in batch])
        for j, (_, label) in enumerate(batch):
            index, predicted = total + j, int(ranked[j][0])
            if predicted != label:
                wrong += 1
                item = (float(probs[j, predicted]), -index, label, predicted, float(probs[j, label]))
                if len(heap) < n:
                    heapq.heappush(heap, item)
                else:
                    heapq.heappushpop(heap, item)
        total += len(batch)
        batch.clear()
        done(total)

    for record in db:
        batch.append(record)
        if len(batch) == model.batch_size:
            flush()
    if batch:
        flush()
    hardest = []
    for confidence, neg_index, label, predicted, true_prob in sorted(heap, reverse=True):
        index = -neg_index
        hardest.append(
            {
                "index": index,
                "path": paths[index] if paths and index < len(paths) else None,
                "true_label": model.labels[label] if 0 <= label < len(model.labels) else str(label),
                "predicted_label": model.labels[predicted],
                "confidence": round(confidence * 100.0, 2),
                "true_label_percent": round(true_prob * 100.0, 2),
            }
        )
    return {
        "split": split,
        "total": total,
        "misclassified": wrong,
        "accuracy": (total - wrong) / total if total else None,
        "hardest": hardest,
        "epoch": model.epoch,
    }
