"""Wiring inference into an app: the warm worker pool in the workspace, and the blueprint (web process)."""

from __future__ import annotations

from digits.inference.pool import InferencePool
from digits.inference.result_views import bp as results_bp
from digits.inference.views import bp


def install(app, **pool_options) -> InferencePool | None:
    """Give the app's workspace a started inference pool (none when the setting inference_workers is 0) and
    register the blueprint, unless they are there already. Returns the pool."""
    workspace = app.extensions["digits"]
    pool = getattr(workspace, "inference", None)
    if pool is None and getattr(workspace.settings, "inference_workers", 2) > 0:
        pool = InferencePool.for_workspace(workspace, **pool_options)
        workspace.inference = pool
        pool.start()
    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
    if results_bp.name not in app.blueprints:
        app.register_blueprint(results_bp)
    return pool
