"""A model over generic data loaded for prediction (worker side): rows of features in, a class with its
probabilities or a predicted value out, normalized and fed to the network exactly as the training worker did
(digits.engine.generic_data)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from digits.engine.generic_data import as_input, build_generic_network
from digits.engine.inference.model import RequestFailed, percent, read_model_files
from digits.folders.generic import GenericFolderError, open_generic

BATCH_ROWS = 4096


class LoadedGenericModel:
    """One (generic model job, epoch) on a device."""

    kind = "generic"

    def __init__(self, spec: dict[str, Any], device: torch.device):
        self.spec = spec
        self.key = spec["key"]
        self.epoch = spec["epoch"]
        self.framework = spec["framework"]
        self.device = device
        try:
            self.dataset = open_generic(spec["dataset_dir"])
        except GenericFolderError as e:
            raise RequestFailed("not_found", f"the model's dataset cannot be read: {e}") from None
        text, state = read_model_files(spec)
        self.labels: list[str] = list(state.get("labels") or self.dataset.labels)
        self.regression = self.dataset.problem == "regression"
        self.built = build_generic_network(
            text,
            self.framework,
            num_features=self.dataset.num_features,
            num_outputs=self.dataset.num_outputs,
            options=spec.get("network_options") or {},
        )
        try:
            self.built.module.load_state_dict(state["model"])
        except RuntimeError as e:
            raise RequestFailed("failed", f"the snapshot does not fit the network: {str(e).splitlines()[0]}") from None
        self.module = self.built.module.to(device).eval()

    @torch.no_grad()
    def outputs(self, rows: np.ndarray) -> np.ndarray:
        """The network's outputs (N x outputs, float32) for raw feature rows (N x features)."""
        out = []
        for start in range(0, len(rows), BATCH_ROWS):
            x = torch.from_numpy(self.dataset.normalize(rows[start : start + BATCH_ROWS]))
            out.append(self.built.logits(as_input(x, self.framework).to(self.device)).float().reshape(len(x), -1))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.dataset.num_outputs), np.float32)

    def answers(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Per row: {"prediction": value} (regression) or {"class", "predictions": [[label, percent], ...] best
        first} (classification: DIGITS' classify answer)."""
        out = self.outputs(rows)
        if self.regression:
            return [{"prediction": float(v)} for v in out[:, 0]]
        probs = torch.softmax(torch.from_numpy(out), dim=1)[:, : len(self.labels)].numpy()
        answers = []
        for row in probs:
            order = np.argsort(-row, kind="stable")
            ranked = [[self.labels[int(i)], percent(row[int(i)])] for i in order]
            answers.append({"class": ranked[0][0], "predictions": ranked})
        return answers


def predict(model: LoadedGenericModel, request: dict[str, Any]) -> dict[str, Any]:
    """The `predict` request: {"rows": [[feature, ...], ...]} -> {"answers": [...], "epoch"}."""
    rows = request.get("rows")
    try:
        array = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise RequestFailed("bad_input", "rows must be lists of numbers") from None
    if array.ndim != 2 or array.shape[1] != model.dataset.num_features:
        raise RequestFailed("bad_input", f"each row must hold {model.dataset.num_features} numbers")
    if not np.isfinite(array).all():
        raise RequestFailed("bad_input", "every feature must be a finite number")
    return {
        "answers": model.answers(array),
        "epoch": model.epoch,
        "problem": model.dataset.problem,
        "target": model.dataset.target_name,
    }
