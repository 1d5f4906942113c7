// A job's page follows its room and stays true without a reload. Small changes are applied from the events
// themselves (progress, a task's status, the latest metrics, a new snapshot in the Test selectors); for the rest the
// page fetches itself again and swaps each live region (an element with data-live-region and an id) for its fresh
// copy: status, tasks and error, the Abort and Resume buttons, snapshots and downloads, a dataset's tables.
// Elapsed and ETA tick in between. #job's data-status changes once the regions show that status.
"use strict";
(function () {
  const job = document.getElementById("job");
  if (!job) return;
  const jobId = job.dataset.jobId;

  // ---- live regions ---------------------------------------------------------------------------------------
  let inFlight = null;
  let again = false;
  let timer = null;

  async function fetchAndSwap() {
    const r = await fetch(window.location.href, {
      headers: { Accept: "text/html" }, credentials: "same-origin", cache: "no-store",
    });
    if (!r.ok) return; // deleted (job_deleted follows) or signed out: keep what is shown
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    doc.querySelectorAll("[data-live-region][id]").forEach((fresh) => {
      if (fresh.parentElement && fresh.parentElement.closest("[data-live-region]")) return; // its outer region brings it
      const current = document.getElementById(fresh.id);
      // A region that reads the same stays: nothing under a person's pointer moves for nothing.
      if (current && !current.isEqualNode(fresh)) current.replaceWith(document.importNode(fresh, true));
    });
    const freshJob = doc.getElementById("job");
    if (freshJob) job.dataset.status = freshJob.dataset.status;
    startClock();
    document.dispatchEvent(new CustomEvent("digits:regions-refreshed", { detail: { jobId } }));
  }

  // One refresh at a time; a request made meanwhile runs once more after it.
  function refresh() {
    if (inFlight) { again = true; return inFlight; }
    inFlight = fetchAndSwap()
      .catch(() => {}) // the server is restarting: the next event or reconnect brings the page up to date
      .finally(() => {
        inFlight = null;
        if (again) { again = false; refresh(); }
      });
    return inFlight;
  }

  // Bursts of events (a dataset's tasks, snapshots every few iterations) refresh once.
  function refreshSoon(delayMs = 300) {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refresh(); }, delayMs);
  }

  // ---- Elapsed and ETA --------------------------------------------------------------------------------------
  let clock = null;

  function progressFraction() {
    const bar = document.getElementById("job-progress");
    return bar ? parseFloat(bar.dataset.fraction) : NaN;
  }

  function showEta(elapsed) {
    const eta = document.getElementById("job-eta");
    if (!eta) return;
    const p = progressFraction();
    // The rate so far, once there is enough of it to mean something.
    eta.textContent = elapsed > 0 && p > 0.005 && p < 1 ? DIGITS.duration(elapsed * (1 - p) / p) : "—";
  }

  function startClock() {
    if (clock) clearInterval(clock);
    clock = null;
    const el = document.getElementById("job-elapsed");
    if (!el || el.dataset.ticking !== "true" || el.dataset.elapsed === "") return;
    const base = parseFloat(el.dataset.elapsed);
    const t0 = Date.now();
    const tick = () => {
      const elapsed = base + (Date.now() - t0) / 1000;
      el.textContent = DIGITS.duration(elapsed);
      showEta(elapsed);
    };
    tick();
    clock = setInterval(tick, 1000);
  }

  // ---- small changes from the events -----------------------------------------------------------------------
  function showAborting() {
    const badge = document.getElementById("job-status");
    if (badge && !["Aborted", "Done", "Error"].includes(badge.textContent)) {
      DIGITS.setStatusBadge(badge, "Aborting");
      badge.textContent = "Aborting…";
    }
    document.querySelectorAll("#abort-form button").forEach((b) => { b.disabled = true; });
  }

  function showLatestMetric(ev) {
    const table = document.getElementById("latest-metrics");
    if (!table || typeof ev.value !== "number") return;
    const key = `${ev.phase} ${ev.name}`;
    const body = table.tBodies[0];
    let row = Array.from(body.rows).find((r) => r.dataset.metric === key);
    if (!row) {
      row = body.insertRow();
      row.dataset.metric = key;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = key;
      row.appendChild(th);
      row.insertCell();
    }
    row.cells[1].textContent = DIGITS.significant(ev.value);
    table.hidden = false;
    const none = document.getElementById("no-metrics");
    if (none) none.remove();
  }

  // A new snapshot joins every snapshot selector as "(latest)"; it is chosen unless the person chose another.
  function addSnapshot(ev) {
    const section = document.getElementById("test-model");
    if (!section) return;
    section.querySelectorAll('select[name="snapshot_epoch"]').forEach((select) => {
      if (Array.from(select.options).some((o) => parseFloat(o.value) === ev.epoch)) return;
      const previous = select.querySelector("option[data-latest]");
      const followLatest = !previous || previous.selected;
      if (previous) {
        delete previous.dataset.latest;
        previous.textContent = previous.textContent.replace(" (latest)", "");
      }
      const option = new Option(`Epoch ${ev.label} (latest)`, String(ev.epoch));
      option.dataset.latest = "";
      select.insertBefore(option, select.firstChild);
      if (followLatest) select.value = option.value;
    });
    section.hidden = false;
  }

  // The best snapshot (#best-epoch, in the model page's live region, refreshed after each snapshot) is marked
  // "(best)" in every snapshot selector, and chosen when the person had left the selector on the previous best
  // (or, before there was one, on the latest).
  function markBest() {
    const section = document.getElementById("test-model");
    const best = document.getElementById("best-epoch");
    const epoch = best ? parseFloat(best.dataset.epoch) : NaN;
    if (!section || !isFinite(epoch)) return;
    section.querySelectorAll('select[name="snapshot_epoch"]').forEach((select) => {
      const option = Array.from(select.options).find((o) => Math.abs(parseFloat(o.value) - epoch) < 1e-3);
      const old = select.querySelector("option[data-best]");
      if (!option || option === old) return;
      const follow = old ? old.selected : select.selectedOptions[0] && "latest" in select.selectedOptions[0].dataset;
      if (old) {
        delete old.dataset.best;
        old.textContent = old.textContent.replace(" (best)", "");
      }
      option.dataset.best = "";
      option.textContent += " (best)";
      if (follow) select.value = option.value;
    });
  }
  document.addEventListener("digits:regions-refreshed", markBest);

  DIGITS.live([jobId], {
    task_progress: (ev) => {
      const bar = document.getElementById("job-progress");
      DIGITS.setProgress(bar, ev.job_progress);
      if (bar) bar.dataset.fraction = String(ev.job_progress);
      const cell = document.querySelector(`tr[data-task="${CSS.escape(ev.task)}"] .task-progress`);
      if (cell) cell.textContent = Math.round(ev.progress * 100) + "%";
    },
    task_status: (ev) => {
      const badge = document.querySelector(`tr[data-task="${CSS.escape(ev.task)}"] .task-status`);
      DIGITS.setStatusBadge(badge, ev.status);
      refreshSoon();
    },
    job_status: (ev) => {
      if (ev.status !== job.dataset.status) {
        DIGITS.setStatusBadge(document.getElementById("job-status"), ev.status);
        refresh();
      } else if (ev.name) {
        refresh(); // renamed by its owner
      }
    },
    job_aborting: showAborting,
    metric: showLatestMetric,
    snapshot: (ev) => { addSnapshot(ev); refreshSoon(); },
    // Deleted by someone else: go home. Deleted from this page: its own form is already taking the browser there.
    job_deleted: () => { if (!leaving) window.location.href = DIGITS.url("/"); },
  });
  let leaving = false;
  window.addEventListener("beforeunload", () => { leaving = true; });

  // Abort answers at once: the page says "Aborting…" while the worker finishes its step and writes a snapshot.
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.id !== "abort-form" || ev.defaultPrevented) return;
    ev.preventDefault();
    showAborting();
    fetch(form.action, {
      method: "POST", body: new FormData(form), headers: { Accept: "application/json" }, credentials: "same-origin",
    }).then(async (r) => {
      if (r.ok) return;
      const body = await r.json().catch(() => ({}));
      DIGITS.showPageError((body.error && body.error.message) || `Abort failed (HTTP ${r.status})`);
      refresh();
    }).catch(() => {
      DIGITS.showPageError("Abort failed: the server did not answer. Try again.");
      refresh();
    });
  });

  startClock();
})();
