"""The scheduler: queues tasks, waits for their dependencies, reserves resources, runs and stops workers.

It runs in the web process on threads that gevent turns into greenlets, so it never blocks the event
loop; every job change is saved to job.json and published on the event bus. Its lock guards what is shared
by every job (the queue, the running tasks, the resource pools, the status changes that decide what runs
next); what a worker reports is handled by that task's own TaskRun, outside it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from digits import protocol
from digits.events import EventBus, JobAborting, JobDeleted, JobStatusChanged, TaskStatusChanged
from digits.job import Job, Task
from digits.resources import ResourcePools
from digits.runner import TaskProcess, describe_exit
from digits.sandbox import ConfinementError, Confiner
from digits.status import Status
from digits.store import JobStore
from digits.task_kinds import runs_outside, worker_module
from digits.task_run import TaskRun

log = logging.getLogger(__name__)


class JobInUse(Exception):
    """A job cannot be deleted while other jobs depend on it (DIGITS refused the same with 403): `users` names them."""

    def __init__(self, message: str, users: list[Job]):
        super().__init__(message)
        self.users = users


# confine(job, task) -> (the worker's whole environment, its private tmp folder); see Workspace.confine_task.
Confine = Callable[[Job, Task], tuple[dict[str, str], str]]


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        bus: EventBus,
        pools: ResourcePools,
        abort_grace_s: float = 10.0,
        confine: Confine | None = None,
    ):
        self.store = store
        self.bus = bus
        self.pools = pools
        self.abort_grace_s = abort_grace_s
        self.confine = confine
        self._lock = threading.RLock()
        self._queue: list[tuple[Job, Task]] = []
        self._running: dict[tuple[str, str], TaskRun] = {}
        self._stopping = False

    # ---- job lifecycle -------------------------------------------------------------------------------
    def recover(self) -> None:
        """After a restart: jobs that were running are marked Aborted (resumable); waiting ones queue again. A job
        whose tasks are worked outside the server (task_kinds.runs_outside) runs on."""
        for job in self.store.all():
            unfinished = [t for t in job.tasks if not t.status.is_final]
            if unfinished and all(runs_outside(t.kind) for t in unfinished):
                continue
            if job.status == Status.RUNNING or any(t.status == Status.RUNNING for t in job.tasks):
                for task in job.tasks:
                    if not task.status.is_final:
                        task.history.set(Status.ABORTED, "the server stopped while this task was running")
                job.history.set(Status.ABORTED, "the server stopped while this job was running")
                self.store.save(job)
            elif job.status == Status.WAITING:
                self.submit(job, message="queued again after a server restart")

    def submit(self, job: Job, message: str = "") -> None:
        """Queue every unfinished task of a job (in order) and try to start what can start."""
        with self._lock:
            for task in job.tasks:
                if task.status != Status.DONE:
                    task.history.set(Status.WAITING)
                    task.error = None
                    self._queue.append((job, task))
            self._set_job_status(job, Status.WAITING, message)
            self._schedule()

    def abort(self, job: Job, message: str = "aborted by the user") -> bool:
        """Stop a job: queued tasks end at once, running ones get SIGTERM, then SIGKILL after the grace period."""
        with self._lock:
            if job.status.is_final:
                return False
            for queued in [q for q in self._queue if q[0] is job]:
                self._queue.remove(queued)
                self._set_task_status(job, queued[1], Status.ABORTED, message)
            stopping = [run for run in self._running.values() if run.job is job]
            for run in stopping:
                run.aborting = True
                run.process.terminate(self.abort_grace_s)
            if stopping:
                self.bus.publish(JobAborting(job.id))
            if not any(r.job is job for r in self._running.values()):
                self._cancel_rest(job, message)
                self._set_job_status(job, Status.ABORTED, message)
            return True

    def aborting(self, job: Job) -> bool:
        """Whether the job was asked to stop and its workers have not ended yet."""
        with self._lock:
            return any(r.job is job and r.aborting for r in self._running.values())

    def running(self) -> list[tuple[Job, Task, int | None]]:
        """Each running task with its job and its worker's pid (None while it starts)."""
        with self._lock:
            runs = list(self._running.values())
        return [(r.job, r.task, r.pid) for r in runs]

    def dependents(self, job: Job) -> list[Job]:
        """The jobs that use this one (a model its dataset), whatever their status: a finished model still reads
        its dataset's labels, mean and images when it classifies, downloads or retrains."""
        return [j for j in self.store.all() if job.id in j.depends_on and j is not job]

    def delete(self, job: Job) -> None:
        """Abort the job, forget it at once, and remove its folder once its workers have stopped.

        Refused (JobInUse) while another job uses it, as DIGITS refused it: delete those first."""
        users = self.dependents(job)
        if users:
            names = ", ".join(f"{j.name} ({j.id})" for j in users)
            raise JobInUse(f"job {job.id} is used by {names}; delete those first", users)
        self.abort(job, "deleted")
        with self._lock:
            threads = [r.thread for r in self._running.values() if r.job is job]
        self.store.forget(job.id)
        self.bus.publish(JobDeleted(job.id))

        def remove_when_stopped() -> None:
            for t in threads:
                t.join(self.abort_grace_s + 30)
            self.store.remove_dir(job.id)

        threading.Thread(target=remove_when_stopped, daemon=True).start()

    @property
    def stopping(self) -> bool:
        """Whether shutdown() has begun: the server is closing."""
        return self._stopping

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every running task (they snapshot and end Aborted) and wait for them."""
        with self._lock:
            self._stopping = True
            runs = list(self._running.values())
            for run in runs:
                run.aborting = True
                run.process.terminate(self.abort_grace_s)
        for run in runs:
            run.thread.join(self.abort_grace_s + 5 if timeout is None else timeout)

    # ---- scheduling ----------------------------------------------------------------------------------
    def _dependency_problem(self, job: Job, task: Task) -> tuple[bool, str | None]:
        """(ready, failure): ready when every dependency is Done; failure names one that can never be."""
        for dep_id in job.depends_on:
            dep = self.store.get(dep_id)
            if dep is None:
                return False, f"it needs job {dep_id}, which no longer exists"
            if dep.status.is_final and dep.status != Status.DONE:
                return False, f"it needs job {dep.name} ({dep.id}), which ended {dep.status.value}"
            if dep.status != Status.DONE:
                return False, None
        for name in task.depends_on:
            if job.task(name).status != Status.DONE:
                return False, None
        return True, None

    def _schedule(self) -> None:
        """Start every queued task whose dependencies are met, first come first served within each pool."""
        if self._stopping:
            return
        blocked_pools: set[str] = set()
        for job, task in list(self._queue):
            if (job, task) not in self._queue:  # an earlier failure in this pass cancelled it
                continue
            ready, failure = self._dependency_problem(job, task)
            if failure:
                self._queue.remove((job, task))
                self._fail(job, task, f"Task {task.name} cannot run: {failure}")
                continue
            if not ready:
                continue
            problem = self.pools.check(task.resources)
            if problem:
                self._queue.remove((job, task))
                self._fail(job, task, f"Task {task.name} cannot run on this server: {problem}")
                continue
            pool = self.pools.pool_of(task.resources)
            if pool in blocked_pools:
                continue
            grant = self.pools.reserve(task.resources)
            if grant is None:
                blocked_pools.add(pool)
                continue
            self._queue.remove((job, task))
            self._start(job, task, grant)

    def _start(self, job: Job, task: Task, grant: dict) -> None:
        try:
            module = worker_module(task.kind)
        except KeyError as e:
            self.pools.release(grant)
            self._fail(job, task, str(e.args[0]))
            return
        job_dir = self.store.job_dir(job.id)
        env = {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in grant["gpu"]), "DIGITS_TASK": task.name}
        base_env, tmp = None, None
        if self.confine is not None:
            try:
                base_env, tmp = self.confine(job, task)
            except ConfinementError as e:
                self.pools.release(grant)
                self._fail(job, task, f"Task {task.name} cannot run: {e}")
                return
        task.reserved = {"gpus": grant["gpu"]}
        task.exit_code = None
        run = TaskRun(job, task, self.store, self.bus, grant, tmp=tmp)
        run.process = TaskProcess(
            module,
            job_dir,
            task.name,
            os.path.join(job_dir, task.log_file),
            env,
            on_message=run.handle,
            base_env=base_env,
            confined=base_env is not None,
        )
        run.thread = threading.Thread(target=self._run, args=(run,), daemon=True, name=f"task-{job.id}-{task.name}")
        self._running[run.key] = run
        self._set_task_status(job, task, Status.RUNNING)
        self._set_job_status(job, Status.RUNNING)
        run.thread.start()

    def _run(self, run: TaskRun) -> None:
        try:
            rc = run.process.run()  # the worker's messages go to run.handle on this thread, without the lock
        except OSError as e:
            rc = None
            run.error = protocol.Error(f"could not start the worker: {e}")
        finally:
            Confiner.remove_tmp(run.tmp)
        with self._lock:
            self._running.pop(run.key, None)
            self.pools.release(run.grant)
            self._finish(run, rc)
            self._schedule()

    def _finish(self, run: TaskRun, rc: int | None) -> None:
        job, task = run.job, run.task
        task.exit_code = rc
        if run.done_status == Status.DONE and rc == 0:
            task.progress = 1.0
            self._set_task_status(job, task, Status.DONE)
            self._set_job_status(job, self._derived_status(job))
            return
        if run.aborting or run.done_status == Status.ABORTED:
            message = "aborted by the user" if not self._stopping else "the server was stopped"
            self._set_task_status(job, task, Status.ABORTED, message)
            self._cancel_rest(job, message)
            self._set_job_status(job, Status.ABORTED, message)
            return
        if run.error is not None:
            message = run.error.message
        elif rc == 0:
            message = "worker ended without reporting that it was done"
        else:
            message = describe_exit(rc) if rc is not None else "worker did not start"
        task.error = {
            "message": message,
            "traceback": run.error.traceback if run.error else None,
            "log_tail": list(run.process.tail),
        }
        self._fail(job, task, f"Task {task.name} failed: {message}")

    def _fail(self, job: Job, task: Task, message: str) -> None:
        if task.error is None:
            task.error = {"message": message, "traceback": None, "log_tail": []}
        self._set_task_status(job, task, Status.ERROR, message)
        self._cancel_rest(job, f"not run: task {task.name} failed")
        self._set_job_status(job, Status.ERROR, message)
        log.warning("job %s (%s): %s", job.id, job.name, message)
        self._schedule()  # jobs waiting on this one can now fail too

    def _cancel_rest(self, job: Job, message: str) -> None:
        for queued in [q for q in self._queue if q[0] is job]:
            self._queue.remove(queued)
        for task in job.tasks:
            if not task.status.is_final and (job.id, task.name) not in self._running:
                self._set_task_status(job, task, Status.ABORTED, message)

    @staticmethod
    def _derived_status(job: Job) -> Status:
        statuses = {t.status for t in job.tasks}
        # A job that has started stays Running between its tasks.
        if Status.RUNNING in statuses or (Status.DONE in statuses and Status.WAITING in statuses):
            return Status.RUNNING
        if statuses <= {Status.DONE}:
            return Status.DONE
        for status in (Status.ERROR, Status.ABORTED, Status.WAITING):
            if status in statuses:
                return status
        return Status.INITIALIZED

    def _set_task_status(self, job: Job, task: Task, status: Status, message: str = "") -> None:
        """Change a task's status and tell the job's page (the caller saves job.json, with the job's status)."""
        if task.history.set(status, message):
            self.bus.publish(TaskStatusChanged(job.id, task.name, status, task.progress))

    def _set_job_status(self, job: Job, status: Status, message: str = "") -> None:
        changed = job.history.set(status, message) if status != job.status or message else False
        self.store.save(job)
        if changed:
            change = job.history.changes[-1]
            self.bus.publish(JobStatusChanged(job.id, status, message, job.progress, change.time))
