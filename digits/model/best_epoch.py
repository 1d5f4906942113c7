"""Best epoch and early stopping (torch-free): which validation value is watched, how "better" is judged, when a
run stops early, and the New Model form's "Best epoch" fieldset that sets them.

A validation improves on the best so far when the monitored value is better by more than the min delta (lower
for val loss, higher for val accuracy), as in Lightning's EarlyStopping: a value better by less does not count
and does not move the best. With "Stop early" on, a run ends (Done) once `patience` validations in a row did not
improve. The trainer keeps a snapshot at each new best (digits/engine/trainer.py) and records it in the model
folder's best_epoch.json (digits/folders/model.py BEST_RECORD); classify and downloads default to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from digits.forms import FormReader

# monitor id -> (validation metric name, "min" or "max", how people read it)
MONITORS = {
    "val_loss": ("loss", "min", "val loss"),
    "val_accuracy": ("accuracy", "max", "val accuracy"),
}
MONITOR_CHOICES = ("none", *MONITORS)
LABELS = {
    "best_monitor": "Monitor",
    "early_stopping": "Stop early",
    "early_stopping_patience": "Patience (validations)",
    "early_stopping_min_delta": "Min delta",
}
DEFAULT_PATIENCE = 5


def read_best_epoch(r: FormReader) -> dict[str, Any]:
    """The Best epoch fieldset's TrainSettings fields: best_monitor ("" when off), early_stopping, patience,
    min_delta. Stopping early needs a monitored value: asked for without one, val loss is watched."""
    r.errors.labels.update(LABELS)
    monitor = r.choice("best_monitor", MONITOR_CHOICES, "none")
    stop = r.boolean("early_stopping", False)
    patience = r.integer("early_stopping_patience", DEFAULT_PATIENCE, minimum=1, maximum=100_000)
    min_delta = r.number("early_stopping_min_delta", 0.0, minimum=0.0)
    if stop and monitor == "none":
        monitor = "val_loss"
    return {
        "best_monitor": "" if monitor == "none" else monitor,
        "early_stopping": stop,
        "patience": patience or DEFAULT_PATIENCE,
        "min_delta": min_delta or 0.0,
    }


def value_text(value: float) -> str:
    return f"{value:.4g}"


def epoch_text(epoch: float) -> str:
    return str(int(epoch)) if float(epoch).is_integer() else f"{epoch:.2f}".rstrip("0").rstrip(".")


@dataclass
class BestTracker:
    """The best monitored value so far and the validations since it; round-trips through a snapshot (resume)."""

    monitor: str
    early_stopping: bool = False
    patience: int = DEFAULT_PATIENCE
    min_delta: float = 0.0
    value: float | None = None
    epoch: float | None = None
    snapshot: str | None = None
    # The best snapshot was written only because it was the best (not at a snapshot interval): it is removed
    # when a later best supersedes it.
    snapshot_extra: bool = False
    since: int = 0  # validations in a row without improvement
    stopped: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.monitor not in MONITORS:
            raise ValueError(f"unknown monitor {self.monitor!r} (known: {', '.join(MONITORS)})")

    @property
    def metric(self) -> str:
        return MONITORS[self.monitor][0]

    @property
    def mode(self) -> str:
        return MONITORS[self.monitor][1]

    @property
    def title(self) -> str:
        return MONITORS[self.monitor][2]

    def improves(self, value: float) -> bool:
        if self.value is None:
            return True
        if self.mode == "min":
            return value < self.value - self.min_delta
        return value > self.value + self.min_delta

    def update(self, metrics: dict[str, float], epoch: float) -> bool | None:
        """Take one validation's values; True when it is the new best, False when not, None when it has no
        monitored value (an aborted validation, or accuracy on a regression)."""
        value = metrics.get(self.metric)
        if value is None:
            return None
        if self.improves(value):
            self.value, self.epoch, self.since = float(value), float(epoch), 0
            return True
        self.since += 1
        return False

    def should_stop(self) -> bool:
        return self.early_stopping and self.since >= self.patience

    def stop_reason(self, epoch: float) -> str:
        """Why the run stopped early, as the log and the model page say it."""
        noun = "validation" if self.patience == 1 else "validations"
        return (
            f"stopped early at epoch {epoch_text(epoch)}: {self.title} did not improve by {self.min_delta:g} "
            f"for {self.patience} {noun}; best {value_text(self.value)} at epoch {epoch_text(self.epoch)}"
        )

    def record(self) -> dict[str, Any]:
        """What best_epoch.json holds."""
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "value": self.value,
            "epoch": self.epoch,
            "snapshot": self.snapshot,
            "early_stopping": self.early_stopping,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "stopped": self.stopped,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BestTracker:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def tracker_for(settings: Any) -> BestTracker | None:
    """The tracker a run with these TrainSettings keeps; None when no value is monitored."""
    if not settings.best_monitor:
        return None
    return BestTracker(
        settings.best_monitor,
        early_stopping=settings.early_stopping,
        patience=settings.patience,
        min_delta=settings.min_delta,
    )
