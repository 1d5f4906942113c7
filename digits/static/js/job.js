// A job's page follows its room; a status change reloads the page so tasks, history and errors are current.
"use strict";
(function () {
  const job = document.getElementById("job");
  const jobId = job.dataset.jobId;
  DIGITS.live([jobId], {
    task_progress: (ev) => {
      DIGITS.setProgress(document.getElementById("job-progress"), ev.job_progress);
      const cell = document.querySelector(`tr[data-task="${CSS.escape(ev.task)}"] .task-progress`);
      if (cell) cell.textContent = Math.round(ev.progress * 100) + "%";
    },
    job_status: (ev) => {
      DIGITS.setStatusBadge(document.getElementById("job-status"), ev.status);
      if (ev.status !== job.dataset.status) window.location.reload();
    },
    job_deleted: () => { window.location.href = DIGITS.url("/"); },
  });
})();
