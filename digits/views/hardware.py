"""The hardware history of a model (digits.hardware samples it) and the model page's panel (web process)."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request

from digits.hardware import SAMPLE_INTERVAL_S, HardwareMonitor, read_history
from digits.views.common import job_or_404, workspace

bp = Blueprint("hardware", __name__)


@bp.route("/models/<job_id>/hardware/json")
def history(job_id: str):
    """The samples recorded for a model: {"job_id", "samples": [...], "gpus": [reserved indices]}."""
    job = job_or_404(job_id, "model")
    since = request.args.get("since", type=float)
    samples = read_history(workspace().store.job_dir(job.id), since=since)
    gpus = sorted({g for task in job.tasks for g in (task.reserved.get("gpus") or [])})
    return jsonify({"job_id": job.id, "samples": samples, "gpus": gpus, "interval_s": SAMPLE_INTERVAL_S})


def init_app(app: Flask, interval_s: float | None = None) -> HardwareMonitor:
    """Serve the history and show the panel; the workspace's monitor samples (every interval_s when given)."""
    monitor = app.extensions["digits"].hardware
    if interval_s is not None:
        monitor.interval_s = interval_s
    if bp.name not in app.blueprints:  # the devserver's extend hook and create_app may both ask
        app.register_blueprint(bp)
        app.add_template_global(True, "hardware_panel")  # the model page shows the panel only when this is set
    return monitor
