// The console follows room "home": statuses and progress change in place; added or deleted jobs reload the tables.
"use strict";
(function () {
  const container = document.getElementById("console-tables");
  const announce = document.getElementById("live-status");

  function row(jobId) { return container.querySelector(`tr[data-job-id="${CSS.escape(jobId)}"]`); }

  let refreshing = null;
  function refreshTables() {
    if (refreshing) return;
    refreshing = fetch(window.location.href, { headers: { Accept: "text/html" } })
      .then((r) => r.text())
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("console-tables");
        if (fresh) container.replaceChildren(...fresh.childNodes);
      })
      .finally(() => { refreshing = null; });
  }

  function tickElapsed() {
    const now = Date.now() / 1000;
    container.querySelectorAll('tr[data-status="Running"]').forEach((tr) => {
      const started = parseFloat(tr.dataset.started);
      if (!isNaN(started)) tr.querySelector(".elapsed").textContent = DIGITS.duration(now - started);
    });
  }
  setInterval(tickElapsed, 1000);

  DIGITS.live(["home"], {
    job_added: (ev) => { refreshTables(); announce.textContent = `New job ${ev.name}`; },
    job_deleted: () => refreshTables(),
    job_status: (ev) => {
      const tr = row(ev.job_id);
      if (!tr) return refreshTables();
      const previous = tr.dataset.status;
      tr.dataset.status = ev.status;
      if (ev.status === "Running" && !tr.dataset.started) tr.dataset.started = String(ev.time);
      DIGITS.setStatusBadge(tr.querySelector(".status-badge"), ev.status);
      DIGITS.setProgress(tr.querySelector(".progress-bar"), ev.progress);
      const bar = tr.querySelector(".progress-bar");
      bar.classList.toggle("progress-bar-animated", ev.status === "Running");
      bar.classList.toggle("progress-bar-striped", ev.status === "Running");
      if (previous !== ev.status && ["Done", "Error", "Aborted"].includes(ev.status)) {
        announce.textContent = `${tr.querySelector("a").textContent} ${ev.status}`;
        refreshTables();  // re-sort: finished jobs leave the top
      }
    },
    task_progress: (ev) => {
      const tr = row(ev.job_id);
      if (tr) DIGITS.setProgress(tr.querySelector(".progress-bar"), ev.job_progress);
    },
  });
})();
