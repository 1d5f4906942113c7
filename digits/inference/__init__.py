"""Classifying images with trained models: warm worker processes (torch) behind a pool and views (torch-free).

Production wiring: the Workspace owns the pool (`InferencePool.for_workspace(self)`, started in `open()` unless
the setting inference_workers is 0, closed in `close()`) and create_app registers `digits.inference.views.bp`.
`install(app)` does both for an app built without them (tests, benchmarks) and nothing where they are wired.
"""

from __future__ import annotations


def install(app, **pool_options):
    """Give the app's workspace a started inference pool (none when the setting inference_workers is 0) and
    register the blueprint, unless they are there already. Returns the pool."""
    from digits.inference.pool import InferencePool
    from digits.inference.views import bp

    workspace = app.extensions["digits"]
    pool = getattr(workspace, "inference", None)
    if pool is None and getattr(workspace.settings, "inference_workers", 2) > 0:
        pool = InferencePool.for_workspace(workspace, **pool_options)
        workspace.inference = pool
        pool.start()
    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
    return pool
