"""Routes the test harness adds to a real server: create fake jobs, report what the process imported."""

from __future__ import annotations

import sys

from flask import Blueprint, jsonify, request

from digits.views.common import workspace
from tests.support.fakejobs import fake_job

bp = Blueprint("test_harness", __name__, url_prefix="/test")


@bp.route("/jobs", methods=["POST"])
def create_fake_job():
    body = request.get_json(force=True)
    job = fake_job(
        name=body.get("name", "fake"),
        tasks=body.get("tasks"),
        category=body.get("category", "dataset"),
        depends_on=body.get("depends_on"),
        owner=body.get("owner", "tester"),
    )
    workspace().add_job(job)
    return jsonify({"id": job.id, "name": job.name, "status": job.status.value})


@bp.route("/modules")
def modules():
    return jsonify({"torch": "torch" in sys.modules, "count": len(sys.modules)})


@bp.route("/inference")
def inference():
    """Which inference worker (pid) holds which model key."""
    pool = workspace().inference
    return jsonify({"loaded": pool.loaded() if pool else {}})
