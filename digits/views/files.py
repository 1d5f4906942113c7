"""Files of a job, served from inside its folder only: /files/<job id>/<path>."""

from __future__ import annotations

import os

from flask import Blueprint, send_file

from digits.datapaths import inside
from digits.errors import NotFound
from digits.views.common import job_or_404, workspace

bp = Blueprint("files", __name__)


@bp.route("/files/<path:path>")
def job_file(path: str):
    """A file inside a job's folder; '..', absolute paths, hidden files and links leading out are refused."""
    parts = path.replace("\\", "/").split("/")
    if len(parts) < 2 or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise NotFound("no such file")
    job = job_or_404(parts[0])
    folder = os.path.realpath(workspace().store.job_dir(job.id))
    target = os.path.realpath(os.path.join(folder, *parts[1:]))
    if not inside(target, folder) or target == folder or not os.path.isfile(target):
        raise NotFound("no such file")
    return send_file(target, max_age=0, as_attachment=not target.endswith((".png", ".jpg", ".txt", ".log", ".json")))
