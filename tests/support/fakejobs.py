"""Build jobs whose tasks run the fake worker."""

from __future__ import annotations

from digits.job import Job, Task, new_job_id
from digits.task_kinds import register_task_kind
from tests.support.waiting import record

FAKE_KIND = "fake"
register_task_kind(FAKE_KIND, "tests.workers.fake_worker")
# Tries what a hostile member's code would (tests/test_sandbox.py).
register_task_kind("probe", "tests.workers.probe_worker")


def fake_job(
    name: str = "fake",
    tasks: list[dict] | None = None,
    category: str = "dataset",
    depends_on: list[str] | None = None,
    owner: str | None = "tester",
) -> Job:
    """A job with one fake task per dict in `tasks` (its worker args); each task waits for the previous one."""
    specs = tasks if tasks is not None else [{}]
    job_tasks = []
    for i, spec in enumerate(specs):
        spec = dict(spec)
        resources = spec.pop("resources", {"cpu": 1})
        job_tasks.append(
            Task(
                name=f"step{i}",
                kind=spec.pop("kind", FAKE_KIND),
                args=spec,
                resources=resources,
                depends_on=[f"step{i - 1}"] if i else [],
            )
        )
    return Job(
        id=new_job_id(),
        type=f"fake-{category}",
        category=category,
        name=name,
        owner=owner,
        tasks=job_tasks,
        depends_on=list(depends_on or []),
    )


def run_fake_job(workspace, **kwargs) -> Job:
    """A fake job (fake_job's arguments) added to the workspace and run to its end."""
    recorder = record(workspace)
    job = fake_job(**kwargs)
    workspace.add_job(job)
    recorder.wait_status(job.id)
    recorder.unsubscribe()
    return job
