"""Which weights a new model starts from, read from the New Model form: a server path to weights
(`custom_network_snapshot`) or, for "previous network", DIGITS' `<id>-snapshot` field (torch-free)."""

from __future__ import annotations

import os

from digits.datapaths import PathRefused, check_server_path
from digits.folders.model import epochs_text, pick_snapshot, snapshots
from digits.forms import FormReader
from digits.model.settings import model_settings

SNAPSHOT_LABEL = "Start from its snapshot"


def read_pretrained(r: FormReader, settings) -> str | None:
    """A server path to weights to start from, inside what this server may read."""
    path = r.text("custom_network_snapshot")
    if not path:
        return None
    try:
        return check_server_path(path, settings, want_dir=False)
    except PathRefused as e:
        r.error("custom_network_snapshot", str(e))
        return None


def read_previous_weights(r: FormReader, store, prev) -> str | None:
    """The weights a model started from `prev` begins with, by DIGITS' field `<id>-snapshot`: an epoch of one of
    its snapshots; 0, none (from scratch); -1, the weights `prev` itself started from (none if it had none);
    no value, its latest snapshot. A path relative to the new job's folder (a sibling of prev's), or a server path."""
    field_name = f"{prev.id}-snapshot"
    r.errors.labels[field_name] = SNAPSHOT_LABEL
    wanted = r.text(field_name)
    snaps = snapshots(prev, store.job_dir(prev.id))
    if wanted:
        try:
            epoch = float(wanted)
        except ValueError:
            r.error(field_name, f"Expected an epoch of model {prev.name}, 0 (none) or -1 (its pretrained weights).")
            return None
        if epoch == 0:
            return None
        if epoch == -1:
            own = model_settings(prev).pretrained
            if own and not os.path.isabs(own):
                own = os.path.normpath(os.path.join("..", prev.id, own))
            return own or None
        snap = pick_snapshot(snaps, wanted)
        if snap is None:
            have = f"it has snapshots at epochs {epochs_text(snaps)}" if snaps else "it has no snapshots"
            r.error(field_name, f"Model {prev.name} has no snapshot at epoch {wanted} ({field_name}); {have}.")
            return None
    else:
        snap = snaps[-1] if snaps else None
    return os.path.join("..", prev.id, snap.name) if snap else None
