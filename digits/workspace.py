"""Everything one server keeps for its jobs directory: the lock, the store, the event bus, the scheduler."""

from __future__ import annotations

import json
import logging

from digits import sandbox
from digits.config import Settings
from digits.events import EventBus, JobAdded
from digits.hardware import HardwareMonitor
from digits.job import Job, Task
from digits.lock import JobsDirLock
from digits.resources import ResourcePools, discover_gpus
from digits.scheduler import Scheduler
from digits.store import JobStore
from digits.task_kinds import task_kind

log = logging.getLogger(__name__)


class Workspace:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.lock = JobsDirLock(settings.jobs_path)
        self.store: JobStore | None = None
        self.bus = EventBus()
        self.gpus = settings.gpus if settings.gpus is not None else [g.index for g in discover_gpus()]
        self.pools = ResourcePools(settings.cpu_slots, self.gpus)
        self.scheduler: Scheduler | None = None
        self.accounts = None
        # The warm inference workers, when the app installs them (digits.inference.app.install); closed with it.
        self.inference = None
        self.hardware: HardwareMonitor | None = None  # samples running tasks' CPU, memory and GPUs
        self.confiner: sandbox.Confiner | None = None

    def open(self) -> None:
        """Take the jobs directory (JobsDirBusy if another server has it), load every job, requeue or mark them."""
        self.store = JobStore(self.settings.jobs_path)
        self.lock.acquire(self.settings.host, self.settings.port)
        if self.settings.auth == "password":
            from digits.accounts import AccountStore  # lazy: SQLAlchemy costs a single-user server's start

            self.accounts = AccountStore(self.settings.jobs_path)
        self.confiner = sandbox.Confiner(self.settings.jobs_path)
        log.info("%s", sandbox.describe())
        self.scheduler = Scheduler(
            self.store, self.bus, self.pools, self.settings.abort_grace_s, confine=self.confine_task
        )
        jobs = self.store.load_all()
        self.scheduler.recover()
        self.hardware = HardwareMonitor(self.store, self.bus, self.scheduler.running)
        self.hardware.start()
        log.info(
            "jobs directory %s: %d jobs; GPUs: %s",
            self.settings.jobs_path,
            len(jobs),
            ",".join(map(str, self.gpus)) or "none",
        )

    def close(self) -> None:
        # No sampler, worker or task outlives the jobs directory it writes into.
        if self.hardware:
            self.hardware.stop()
        if self.inference:
            self.inference.close()
        if self.scheduler:
            self.scheduler.shutdown()
        self.lock.release()

    def add_job(self, job: Job) -> None:
        """Save a new job, announce it, and queue its tasks."""
        self.store.add(job)
        self.bus.publish(JobAdded.of(job))
        self.scheduler.submit(job)

    def confine_task(self, job: Job, task: Task) -> tuple[dict[str, str], str]:
        """A task worker's environment, with the policy that confines it (digits/sandbox.py), and its private
        temporary folder. ConfinementError when what it needs is not the server's to give."""
        kind = task_kind(task.kind)
        access = kind.access(self, job, task) if kind.access else {}
        tmp = self.confiner.private_tmp()
        try:
            policy = self.confiner.policy(write=[self.store.job_dir(job.id)], tmp=tmp, **access)
        except BaseException:
            self.confiner.remove_tmp(tmp)
            raise
        return self.confiner.environment({sandbox.ENV_POLICY: json.dumps(policy)}, tmp), tmp
