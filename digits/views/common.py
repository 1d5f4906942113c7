"""What every blueprint needs: the workspace, the signed-in user, job lookup and permission checks."""

from __future__ import annotations

from flask import current_app, url_for

from digits.job import Job, is_job_id
from digits.views.errors import Forbidden, NotFound, Unauthorized
from digits.workspace import Workspace


def workspace() -> Workspace:
    return current_app.extensions["digits"]


def current_user() -> str | None:
    from digits.views.auth import current_username

    return current_username()


def job_or_404(job_id: str, category: str | None = None) -> Job:
    job = workspace().store.get(job_id) if is_job_id(job_id) else None
    if job is None or (category is not None and job.category != category):
        what = category or "job"
        raise NotFound(f"no {what} with id {job_id!r}")
    return job


def require_user() -> str:
    user = current_user()
    if not user:
        raise Unauthorized("sign in first (POST /login)")
    return user


def require_owner(job: Job) -> str:
    """The signed-in user, when they may change this job (abort, delete, rename)."""
    from digits.views.auth import is_admin

    user = require_user()
    if job.owner and job.owner != user and not is_admin():
        raise Forbidden(f"job {job.id} belongs to {job.owner}; only they or an admin may change it")
    return user


PAGES = {"dataset": "datasets.show", "model": "models.show"}


def job_url(job: Job) -> str:
    """The page of a job: its wing's page when that wing is installed, the generic job page otherwise."""
    endpoint = PAGES.get(job.category)
    if endpoint and endpoint in current_app.view_functions:
        return url_for(endpoint, job_id=job.id)
    return url_for("jobs.job_page", job_id=job.id)
