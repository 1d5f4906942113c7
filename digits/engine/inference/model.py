"""A model job's snapshot loaded for inference, with exactly the preprocessing its validation used (worker side).

Nothing here is a copy of the training pipeline: images are read by digits.formats.images.load_for_network (as
create-db read them), transformed by digits.engine.augment.BatchTransform with the training worker's validation
arguments, and fed to the network digits.engine.networks builds, with the snapshot's weights.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from digits.engine.augment import BatchTransform
from digits.engine.data import load_mean
from digits.engine.networks import BuiltNetwork, build_network, network_crop
from digits.folders.dataset import DatasetFolderError, open_dataset
from digits.formats.images import load_for_network
from digits.model.settings import input_shape
from digits.worker_runtime import TaskFailed

TOP_K = 5


class RequestFailed(Exception):
    """A request that cannot be answered; `kind` is one of digits.protocol.ERROR_KINDS."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def read_model_files(spec: dict[str, Any]) -> tuple[str, dict]:
    """(the network's text, the snapshot's state) of a model spec; RequestFailed says which is missing or broken."""
    try:
        with open(spec["network_file"], encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        raise RequestFailed("not_found", f"the model's network file cannot be read ({e.strerror})") from None
    try:
        state = torch.load(spec["snapshot"], map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RequestFailed("not_found", f"snapshot {os.path.basename(spec['snapshot'])} is gone") from None
    except Exception as e:  # noqa: BLE001 - a damaged file is reported, whatever torch raises
        name = os.path.basename(spec["snapshot"])
        raise RequestFailed("failed", f"snapshot {name} cannot be read: {e}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise RequestFailed("failed", "the snapshot holds no model weights")
    return text, state


class LoadedModel:
    """One (model job, epoch) on a device: read images, score them, and know what the network saw."""

    def __init__(self, spec: dict[str, Any], device: torch.device):
        self.spec = spec
        self.key = spec["key"]
        self.epoch = spec["epoch"]
        self.framework = spec["framework"]
        self.device = device
        try:
            self.dataset = open_dataset(spec["dataset_dir"])
        except DatasetFolderError as e:
            raise RequestFailed("not_found", f"the model's dataset cannot be read: {e}") from None
        text, state = read_model_files(spec)
        self.labels: list[str] = list(state.get("labels") or self.dataset.labels)
        # As the training worker does: the form's crop, else the network's own, used only when it crops.
        channels, height, width = self.dataset.shape
        crop = spec.get("crop_size") or network_crop(text, self.framework)
        self.input_shape = input_shape(self.dataset.image, crop if crop and (crop < height or crop < width) else None)
        self.built: BuiltNetwork = build_network(
            text, self.framework, input_shape=self.input_shape, num_classes=len(self.labels)
        )
        try:
            self.built.module.load_state_dict(state["model"])
        except RuntimeError as e:
            raise RequestFailed("failed", f"the snapshot does not fit the network: {str(e).splitlines()[0]}") from None
        self.module = self.built.module.to(device, memory_format=torch.channels_last).eval()
        cropped = self.input_shape[1] if self.input_shape != self.dataset.shape else None
        try:
            mean = load_mean(self.dataset, spec.get("use_mean") or "none")
        except TaskFailed as e:
            raise RequestFailed("not_found", str(e)) from None
        common = dict(in_shape=self.dataset.shape, crop=cropped, mirror=False, aug=None, train=False)
        self.transform = BatchTransform(mean=mean, scale=self.built.input_scale, **common).to(device)
        # The same crop without mean or scale: the pixels the network looks at, for people to see.
        self.view = BatchTransform(mean=None, scale=1.0, **common)
        self.batch_size = self.built.val_batch_size or self.built.batch_size or 64
        self.resize_mode = self.dataset.image.get("resize_mode") or "squash"

    # ---- images ------------------------------------------------------------------------------------------
    def read(self, source: str | bytes, seed: int = 0) -> np.ndarray:
        """An image file (path or bytes) as the dataset stores it: H x W x C uint8 (raises ImageError)."""
        channels, height, width = self.dataset.shape
        return load_for_network(source, channels, height, width, self.resize_mode, seed=seed)[0]

    def batch(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """uint8 N x C x H x W on the device."""
        stacked = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
        return torch.from_numpy(stacked).to(self.device)

    def inputs(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """The network's input for these images: mean subtracted, center-cropped, scaled."""
        return self.transform(self.batch(arrays))

    def seen(self, array: np.ndarray) -> np.ndarray:
        """H x W x C uint8: the image after resize and crop, as the network sees it (before mean and scale)."""
        x = self.view(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None])
        return x[0].clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    # ---- scores ------------------------------------------------------------------------------------------
    def _autocast(self):
        # Validation ran in bfloat16 autocast on a GPU; scoring the same way gives the same answers.
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.built.logits(x).float()

    @torch.no_grad()
    def predict(self, arrays: list[np.ndarray], k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
        """(N x min(k, classes) class indices ranked by score, N x classes probabilities) for uint8 images.

        A network may have more outputs than the dataset has classes (DIGITS' tests train `num_output: 1000` on
        3 classes): the probabilities are the network's softmax over all its outputs, and only the outputs that
        have a label (the first len(labels)) are ranked and returned, as DIGITS ignored the others."""
        logits = self.logits(self.inputs(arrays))
        probs = torch.softmax(logits, dim=1)[:, : len(self.labels)]
        labelled = logits[:, : len(self.labels)]
        ranked = labelled.topk(min(k, labelled.shape[1]), dim=1).indices
        return ranked.cpu().numpy(), probs.cpu().numpy()

    def top(self, ranked_row: np.ndarray, probs_row: np.ndarray) -> list[list]:
        """[[label, percent], ...] best first (percent: see `percent`)."""
        return [[self.labels[int(i)], percent(probs_row[int(i)])] for i in ranked_row]


def percent(probability: float) -> float:
    """A probability as the percentage DIGITS' API answered: 0 to 100, 2 decimals (every answer, page and export
    of a result shows these same numbers)."""
    return round(float(probability) * 100.0, 2)
