"""What every blueprint needs: the workspace, the signed-in user, job lookup, permission checks, the audit log."""

from __future__ import annotations

from flask import current_app, request, url_for
from flask_login import current_user as signed_in

from digits import audit as audit_log
from digits.errors import Forbidden, NotFound, Unauthorized
from digits.job import Job, is_job_id
from digits.workspace import Workspace


def workspace() -> Workspace:
    return current_app.extensions["digits"]


def current_user() -> str | None:
    """The signed-in person's name (session cookie or bearer token), or None."""
    return signed_in.get_id() if signed_in.is_authenticated else None


def is_admin() -> bool:
    return bool(signed_in.is_authenticated and getattr(signed_in, "is_admin", False))


def audit(action: str, *, user: str | None = None, job: Job | None = None, **details) -> None:
    """Append one line to the audit log: the time, who (the signed-in person unless `user` says), the action,
    the job's id and name, the client's address, and any details."""
    fields = {"user": user if user is not None else current_user(), "address": request.remote_addr}
    if job is not None:
        fields.update(job_id=job.id, job_name=job.name)
    audit_log.record(workspace().settings.jobs_path, action, **{**fields, **details})


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
    user = require_user()
    if job.owner and job.owner != user and not is_admin():
        raise Forbidden(f"job {job.id} belongs to {job.owner}; only they or an admin may change it")
    return user


PAGES = {"dataset": "datasets.show", "model": "models.show"}
# A job type with its own page (an external run's), before its category's.
TYPE_PAGES = {"external-run": "runs.show"}


def job_url(job: Job) -> str:
    """The page of a job: its wing's page when that wing is installed, the generic job page otherwise."""
    endpoint = TYPE_PAGES.get(job.type)
    if endpoint not in current_app.view_functions:
        endpoint = PAGES.get(job.category)
    if endpoint and endpoint in current_app.view_functions:
        return url_for(endpoint, job_id=job.id)
    return url_for("jobs.job_page", job_id=job.id)


# Never kept in job.json nor copied by a clone: the page's CSRF token belongs to one session; clone is no setting.
NOT_KEPT = ("csrf_token", "clone")


def posted_with_clone(category: str) -> dict[str, str]:
    """The submitted create form; with clone=<id> (form or query string, as DIGITS reads it) the cloned job's
    fields first and the posted ones over them. The cloned job is looked up as its page would be (NotFound,
    naming clone, when there is none to open); uploaded files are never copied."""
    posted = {k: v for k, v in request.form.items() if k not in NOT_KEPT}
    clone = (request.form.get("clone") or request.args.get("clone") or "").strip()
    if not clone:
        return posted
    try:
        cloned = job_or_404(clone, category)
    except NotFound:
        raise NotFound(f"clone: no {category} with id {clone!r} to copy the settings of") from None
    return {**{k: str(v) for k, v in cloned.form.items() if k not in NOT_KEPT}, **posted}
