"""The inference worker: `python -m digits.engine.inference.worker`, long-lived, one loaded model at a time.

Reads requests from stdin and answers on stdout (digits.inference.wire), one at a time; anything a library
prints goes to stderr. A request that fails is answered with an error and the worker carries on. It exits
when its stdin closes (the server stopped or let it go).
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import numpy as np
import torch
from PIL import Image

from digits import protocol, sandbox
from digits.config import Settings
from digits.datapaths import PathRefused
from digits.engine.inference import generic
from digits.engine.inference.hardest import most_confidently_wrong
from digits.engine.inference.model import TOP_K, LoadedModel, RequestFailed, percent
from digits.engine.inference.threads import threads_for_one, torch_threads
from digits.engine.inference.visualize import gradcam_for, visualize
from digits.folders.dataset import SPLITS, db_name, split_sources
from digits.formats.images import ImageError, set_max_pixels
from digits.formats.split_io import SplitRecords
from digits.inference import render
from digits.inference.evaluate import evaluate
from digits.inference.paths import PathChecker

PROGRESS_EVERY_S = 0.5
MAX_TOP_N = 100
THUMBNAIL_SIDE = 96  # top-N pictures are shrunk to fit this many pixels a side
LIST_THUMBNAIL_SIDE = 64  # classify-many keeps a thumbnail of each image this many pixels a side at most

Progress = Callable[[int, int], None]


def log(message: str) -> None:
    print(f"[inference {os.getpid()}] {message}", file=sys.stderr, flush=True)


class Throttle:
    """Calls progress(done, total) at most every PROGRESS_EVERY_S, and always at the end."""

    def __init__(self, progress: Progress, total: int):
        self.progress, self.total, self.last = progress, total, 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done >= self.total or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.progress(done, self.total)


class InferenceServer:
    """Holds the loaded model and answers requests."""

    def __init__(self, readers: int, threads: int = 0):
        # Chosen with the first model, once the worker is confined: CUDA and torch's thread pool start threads,
        # and a process is confined while it has one (digits/sandbox.py).
        self.device: torch.device | None = None
        self.threads = threads
        self.job: str | None = None  # the one model job a confined worker serves
        self.model: LoadedModel | None = None
        self.one_image_threads = 1
        self.paths = PathChecker(Settings())  # which server paths a request may read: its path_policy
        self.readers = ThreadPoolExecutor(max(1, readers))  # Pillow decodes with the GIL released

    def _start_serving(self, spec: dict[str, Any]) -> None:
        """Apply the model job's policy when the request brings one (the server's pool always does), then
        start torch: its threads and CUDA come after the confinement."""
        policy = spec.get("sandbox")
        if policy is not None:
            try:
                log(sandbox.apply(policy))
            except OSError as e:
                raise RequestFailed("failed", f"the model's worker could not be confined: {e}") from None
            self.job = spec.get("job_id")
        if self.threads:
            torch.set_num_threads(self.threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def load(self, spec: dict[str, Any] | None) -> LoadedModel:
        if not isinstance(spec, dict) or "key" not in spec:
            raise RequestFailed("bad_input", "the request names no model")
        if self.job is not None and spec.get("job_id") != self.job:
            raise RequestFailed("failed", f"this worker serves model {self.job} only")
        if self.device is None:
            self._start_serving(spec)
        if self.model is None or self.model.key != spec["key"]:
            self.model = None  # let the old one go before the new one takes memory
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            started = time.perf_counter()
            if spec.get("kind") == generic.LoadedGenericModel.kind:  # a model over generic (tabular) data
                self.model = generic.LoadedGenericModel(spec, self.device)
                self.one_image_threads = 1
            else:
                self.model = LoadedModel(spec, self.device)
                self.one_image_threads = threads_for_one(self.model)
            log(
                f"loaded {spec['key']} in {time.perf_counter() - started:.2f}s on {self.device} "
                f"({self.one_image_threads} thread(s) for one image)"
            )
        return self.model

    def handle(self, op: str, request: dict[str, Any], progress: Progress) -> dict[str, Any]:
        """Answer one request: `op` and its fields (digits.protocol's request lines)."""
        # What this request may read, as the web process decided (digits.inference.inputs.path_policy); a
        # request without one may read no server path. Its pixel limit applies to every image it decodes.
        policy = request.get("path_policy") or {}
        roots = [str(root) for root in policy.get("data_roots") or []]
        self.paths = PathChecker(
            Settings(
                host=str(policy.get("host", "127.0.0.1")),
                auth=str(policy.get("auth", "password")),
                data_roots=roots,
                jobs_dir=str(policy.get("jobs_dir") or os.devnull),
            )
        )
        set_max_pixels(policy.get("max_image_pixels"))
        if op == "ping":
            return {"pid": os.getpid(), "device": str(self.device), "model": self.model.key if self.model else None}
        if op == "predict":  # rows of a generic model's features
            model = self.load(request.get("model"))
            if not isinstance(model, generic.LoadedGenericModel):
                raise RequestFailed("bad_input", "predict answers models over generic data; classify images instead")
            return generic.predict(model, request)
        handler = {
            "classify_one": self.classify_one,
            "classify_many": self.classify_many,
            "top_n": self.top_n,
            "hardest": self.hardest,
            "gradcam": self.gradcam,
        }.get(op)
        if handler is None:
            raise RequestFailed("bad_input", f"unknown request {op!r}")
        return handler(self.load(request.get("model")), request, progress)

    # ---- reading images ----------------------------------------------------------------------------------
    def _source(self, item: dict[str, Any]) -> str | bytes:
        """An item's bytes, or its path. A server path ("check") is checked against the request's path policy
        here, just before it is read, on the reader threads (thousands of checks cost the web process time)."""
        if "data" in item:
            try:
                return base64.b64decode(item["data"], validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise RequestFailed("bad_input", "the image data is not base64") from None
        if isinstance(item.get("path"), str):
            if not item.get("check"):
                return item["path"]
            try:
                return self.paths.check(item["path"])
            except PathRefused as e:
                raise RequestFailed("bad_input", str(e)) from None
        raise RequestFailed("bad_input", "an image needs data or a path")

    def _read_ahead(self, model: LoadedModel, items: list[dict[str, Any]], thumbs: dict[int, bytes] | None = None):
        """(start, [array or the reason it could not be read]) per batch; the next batch is read while the
        caller scores this one. With `thumbs`, each image's thumbnail file goes there by item index (made on the
        reader threads too)."""

        def read(item: dict[str, Any], index: int) -> np.ndarray | str:
            try:
                array = model.read(self._source(item), seed=int(item.get("seed", 0)))
                if thumbs is not None:
                    thumbs[index] = render.thumbnail_file(array, LIST_THUMBNAIL_SIDE)
                return array
            except ImageError as e:
                return str(e)
            except RequestFailed as e:
                return e.message
            except OSError as e:
                return f"cannot read: {e.strerror or e}"

        def submit(start: int):
            end = min(len(items), start + model.batch_size)
            return [self.readers.submit(read, items[i], i) for i in range(start, end)]

        starts = range(0, len(items), model.batch_size)
        pending = None
        for start in starts:
            if pending is None:
                pending = submit(start)
            current = pending
            following = start + model.batch_size
            pending = submit(following) if following < len(items) else None
            yield start, [f.result() for f in current]

    def _score_items(self, model, items, progress: Progress, thumbs: dict[int, bytes] | None = None):
        """Batches of items through the network: (index list, ranked N x k, probs N x K, errors)."""
        done = Throttle(progress, len(items))
        indices, ranked, probs, errors = [], [], [], []
        for start, read in self._read_ahead(model, items, thumbs):
            chunk = items[start : start + model.batch_size]
            good = [(start + i, a) for i, a in enumerate(read) if not isinstance(a, str)]
            errors += [{"index": start + i, "message": a} for i, a in enumerate(read) if isinstance(a, str)]
            if good:
                r, p = model.predict([a for _, a in good])
                indices += [i for i, _ in good]
                ranked.append(r)
                probs.append(p)
            done(start + len(chunk))
        k, classes = min(TOP_K, len(model.labels)), len(model.labels)
        ranked_all = np.concatenate(ranked) if ranked else np.zeros((0, k), dtype=np.int64)
        probs_all = np.concatenate(probs) if probs else np.zeros((0, classes), dtype=np.float32)
        return indices, ranked_all, probs_all, errors

    # ---- requests ----------------------------------------------------------------------------------------
    def classify_one(self, model: LoadedModel, request: dict[str, Any], progress: Progress) -> dict[str, Any]:
        try:
            array = model.read(self._source(request.get("image") or {}))
        except (ImageError, OSError) as e:
            raise RequestFailed("bad_input", f"the image cannot be used: {e}") from None
        with torch_threads(self.one_image_threads):
            ranked, probs = model.predict([array])
        result = {
            "predictions": model.top(ranked[0], probs[0]),
            "image": render.data_url(model.seen(array)),
            "epoch": model.epoch,
        }
        if request.get("visualize"):
            result.update(visualize(model, array, int(ranked[0][0])))
        keep = request.get("keep_input")
        if isinstance(keep, str) and keep:  # the run's folder: Grad-CAM of another layer reads the image there
            with open(keep, "wb") as fh:
                fh.write(render.png_bytes(array))
        return result

    def gradcam(self, model: LoadedModel, request: dict[str, Any], progress: Progress) -> dict[str, Any]:
        """Grad-CAM of one layer (its name; none: the last convolution layer) for a class (its index; none:
        the top prediction) on an image a classify-one run kept (its input.png, the dataset's size)."""
        try:
            with Image.open(str(request.get("input") or "")) as img:
                array = np.asarray(img)
        except (OSError, ValueError) as e:
            raise RequestFailed("not_found", f"the image of this result is gone ({e})") from None
        array = array.reshape(*array.shape[:2], -1)
        channels, height, width = model.dataset.shape
        if array.shape != (height, width, channels):
            raise RequestFailed("bad_input", "the kept image does not fit this model's input")
        target = request.get("target")
        if target is None:
            target = int(model.predict([array])[0][0][0])
        elif not isinstance(target, int) or not 0 <= target < len(model.labels):
            raise RequestFailed("bad_input", f"class {target!r} is not one of this model's")
        layer = request.get("layer")
        try:
            answer = gradcam_for(model, array, target, layer if isinstance(layer, str) and layer else None)
        except KeyError:
            raise RequestFailed(
                "bad_input", f"{str(layer)[:80]!r} is not a convolution layer of this network"
            ) from None
        return {**answer, "target": model.labels[target], "epoch": model.epoch}

    def classify_many(self, model: LoadedModel, request: dict[str, Any], progress: Progress) -> dict[str, Any]:
        items = request.get("items") or []
        thumbs_path = request.get("thumbnails")
        thumbs: dict[int, bytes] | None = {} if isinstance(thumbs_path, str) and thumbs_path else None
        indices, ranked, probs, errors = self._score_items(model, items, progress, thumbs)
        result: dict[str, Any] = {
            "top": [[i, model.top(r, p)] for i, r, p in zip(indices, ranked, probs, strict=True)],
            "errors": errors,
            "epoch": model.epoch,
        }
        if thumbs is not None:
            # One file, the thumbnails one after another: [index, offset, length] of each says where.
            places, offset = [], 0
            with open(thumbs_path, "wb") as fh:
                for index in indices:
                    blob = thumbs.get(index)
                    if blob:
                        fh.write(blob)
                        places.append([index, offset, len(blob)])
                        offset += len(blob)
            result["thumbnails"] = places
        labeled = [n for n, i in enumerate(indices) if items[i].get("label") is not None]
        if labeled:
            truth = np.array([items[indices[n]]["label"] for n in labeled], dtype=np.int64)
            scores = evaluate(ranked[labeled], truth, model.labels)
            result["evaluation"] = scores
            picture = request.get("confusion_png")
            if picture and scores.get("confusion_matrix"):
                os.makedirs(os.path.dirname(picture), exist_ok=True)
                render.save_confusion_matrix(model.labels, np.array(scores["confusion_matrix"]["matrix"]), picture)
                result["confusion_png"] = os.path.basename(picture)
        return result

    def top_n(self, model: LoadedModel, request: dict[str, Any], progress: Progress) -> dict[str, Any]:
        items = request.get("items") or []
        n = max(1, min(MAX_TOP_N, int(request.get("n") or 9)))
        indices, _, probs, errors = self._score_items(model, items, progress)
        classes = []
        for c, label in enumerate(model.labels):
            order = np.argsort(-probs[:, c], kind="stable")[:n] if len(indices) else []
            picks = [(indices[int(j)], percent(probs[int(j), c])) for j in order]
            images = []
            for index, share in picks:
                entry: dict[str, Any] = {"index": index, "percent": share, "image": None}
                if request.get("images", True):
                    try:
                        array = model.read(self._source(items[index]), seed=int(items[index].get("seed", 0)))
                        entry["image"] = render.data_url(render.thumbnail(model.seen(array), THUMBNAIL_SIDE))
                    except (ImageError, OSError, RequestFailed):
                        pass
                images.append(entry)
            classes.append({"label": label, "images": images})
        return {"top_n": classes, "errors": errors, "epoch": model.epoch}

    def hardest(self, model: LoadedModel, request: dict[str, Any], progress: Progress) -> dict[str, Any]:
        """The misclassified records of a dataset split, most confidently wrong first."""
        split = str(request.get("split") or "val")
        n = max(1, min(1000, int(request.get("n") or 50)))
        # The split's records are in the dataset's own folder (the model keeps only labels, settings and mean).
        records = model.spec.get("records_dir") or model.dataset.path
        db_path = os.path.join(records, db_name(split)) if split in SPLITS else None
        if db_path is None or not os.path.isdir(db_path):
            raise RequestFailed("not_found", f"the model's dataset has no {split} split (or its folder is gone)")
        with SplitRecords(db_path) as db:
            done = Throttle(progress, len(db))
            return most_confidently_wrong(model, db, split, split_sources(records, split), n, done)


def serve(server: InferenceServer, requests: IO[str], replies: IO[str]) -> None:
    def send(message: protocol.Answer) -> None:
        replies.write(protocol.encode(message) + "\n")
        replies.flush()

    def failure(request_id: int, kind: str, message: str) -> protocol.Reply:
        return protocol.Reply(request_id, False, error={"type": kind, "message": message})

    send(protocol.Ready(os.getpid(), str(server.device) if server.device else None))
    for line in requests:
        decoded = protocol.decode_request(line)
        if decoded is None:
            log(f"not a request: {line[:200]!r}")
            continue
        request_id, op, fields = decoded

        def progress(done: int, total: int, request_id=request_id) -> None:
            send(protocol.RequestProgress(request_id, done, total))

        try:
            send(protocol.Reply(request_id, True, server.handle(op, fields, progress)))
        except RequestFailed as e:
            send(failure(request_id, e.kind, e.message))
        except torch.cuda.OutOfMemoryError:
            server.model = None
            torch.cuda.empty_cache()
            send(failure(request_id, "failed", "the GPU ran out of memory for this model"))
        except Exception as e:  # noqa: BLE001 - one bad request must not end the worker
            traceback.print_exc()
            send(failure(request_id, "failed", f"{type(e).__name__}: {e}"))


def main() -> None:
    # stdout carries protocol lines only: whatever a library prints goes to stderr.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    threads = int(os.environ.get("DIGITS_INFERENCE_THREADS") or 0)
    server = InferenceServer(readers=min(8, os.cpu_count() or 1), threads=threads)
    log("ready")
    serve(server, sys.stdin, replies)


if __name__ == "__main__":
    main()
