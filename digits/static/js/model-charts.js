// The model page, live: loss/accuracy and learning-rate charts, progress with time left, and the job's status.
// History comes from the JSON twin, then the `metric` stream over Socket.IO (no polling). The charts themselves
// (decimation, zoom, pan) are js/charts.js, shared with the hardware panel.
"use strict";
(function () {
  const { ChartGroup, LiveChart, fmt, pct } = DIGITS.charts;

  // ---- the model page ----------------------------------------------------------------------------------------
  const section = document.getElementById("model-charts");
  if (!section || typeof uPlot === "undefined") return;
  const jobId = section.dataset.jobId;
  const ACTIVE = ["Initialized", "Waiting", "Running"];
  const group = new ChartGroup();
  const percentAxis = (u, ticks) => ticks.map((v) => Math.round(v * 100) + "%");
  const loss = new LiveChart(group, document.getElementById("chart-loss"), {
    xLabel: "epoch",
    xValue: (u, v) => (v == null ? "—" : v.toFixed(2)),
    series: [
      { key: "train/loss", label: "train loss", stroke: "#0d6efd", scale: "loss", value: (v) => fmt(v) },
      { key: "val/loss", label: "val loss", stroke: "#198754", scale: "loss", value: (v) => fmt(v) },
      { key: "val/accuracy", label: "val accuracy", stroke: "#dc6b00", scale: "acc", value: pct },
      { key: "val/top5", label: "val top-5", stroke: "#dc6b00", scale: "acc", dash: [6, 4], value: pct },
    ],
    scales: { loss: { auto: true }, acc: { auto: false, range: [0, 1] } },
    axes: (keys) => [
      { label: "epoch" },
      { scale: "loss", label: "loss", values: (u, ticks) => ticks.map((v) => fmt(v, 3)) },
      ...(keys.some((k) => k.startsWith("val/acc") || k === "val/top5")
        ? [{ scale: "acc", side: 1, label: "accuracy", grid: { show: false }, values: percentAxis }] : []),
    ],
  });
  const lr = new LiveChart(group, document.getElementById("chart-lr"), {
    xLabel: "epoch",
    xValue: (u, v) => (v == null ? "—" : v.toFixed(2)),
    series: [
      { key: "train/learning_rate", label: "learning rate", stroke: "#6f42c1", scale: "lr", value: (v) => fmt(v) },
    ],
    scales: { lr: { auto: true } },
    axes: () => [
      { label: "epoch" },
      { scale: "lr", label: "learning rate", size: 64, values: (u, t) => t.map((v) => fmt(v, 3)) },
    ],
  });
  const CHART_OF = {};
  [loss, lr].forEach((c) => c.series.forEach((_, key) => { CHART_OF[key] = c; }));
  const controls = group.bindControls(section);

  function addPoint(phase, name, epoch, value) {
    const chart = CHART_OF[phase + "/" + name];
    return chart ? chart.push(phase + "/" + name, epoch, value) : false;
  }

  // ---- progress and time left ----
  const progressText = document.getElementById("train-progress");
  const run = {
    status: section.dataset.status, progress: 0, epoch: null, epochs: parseFloat(section.dataset.epochs) || null,
    samples: [], freshRun: true, elapsed: null, elapsedAt: 0,
  };

  function remaining() {
    if (run.status !== "Running" || run.progress <= 0 || run.progress >= 1) return null;
    const s = run.samples;  // [ms, progress] seen on this page, last two minutes
    if (s.length >= 2 && s[s.length - 1][0] - s[0][0] >= 3000 && s[s.length - 1][1] > s[0][1]) {
      const rate = (s[s.length - 1][1] - s[0][1]) / (s[s.length - 1][0] - s[0][0]);
      return (1 - run.progress) / rate / 1000;
    }
    // Until this page has seen enough progress: the run's own pace, when it did not resume part way (and is
    // past the first percents, which the worker's start-up would make look slow).
    if (run.freshRun && run.elapsed != null && run.progress >= 0.02) {
      const elapsed = run.elapsed + (performance.now() - run.elapsedAt) / 1000;
      return (elapsed * (1 - run.progress)) / run.progress;
    }
    return null;
  }

  function showProgress() {
    const parts = [];
    if (run.epoch != null) parts.push(`Epoch ${run.epoch.toFixed(2)}${run.epochs ? " of " + run.epochs : ""}`);
    parts.push(Math.round(run.progress * 100) + "%");
    const left = remaining();
    if (run.status !== "Running") parts.push(run.status.toLowerCase());
    else parts.push(left == null ? "estimating time left…" : `about ${DIGITS.duration(left)} left`);
    progressText.textContent = parts.join(" · ");
  }

  function onProgress(ev) {
    DIGITS.setProgress(document.getElementById("job-progress"), ev.job_progress);
    const cell = document.querySelector(`tr[data-task="${CSS.escape(ev.task)}"] .task-progress`);
    if (cell) cell.textContent = Math.round(ev.progress * 100) + "%";
    run.progress = ev.progress;
    if (ev.epoch != null) run.epoch = ev.epoch;
    const now = performance.now();
    run.samples.push([now, ev.progress]);
    while (run.samples.length > 2 && now - run.samples[0][0] > 120000) run.samples.shift();
    group.schedule();
  }

  // ---- the latest values, as text ----
  const readout = document.getElementById("chart-readout");
  function showReadout() {
    const parts = [];
    const add = (chart, key, label, show) => {
      const last = chart.series.get(key).last();
      if (last) parts.push(`${label} ${show(last[1])}`);
    };
    add(loss, "train/loss", "train loss", fmt);
    add(loss, "val/loss", "val loss", fmt);
    add(loss, "val/accuracy", "val accuracy", pct);
    add(loss, "val/top5", "val top-5", pct);
    add(lr, "train/learning_rate", "learning rate", fmt);
    const points = [...loss.series.values(), ...lr.series.values()].reduce((n, s) => n + s.length, 0);
    readout.textContent = parts.length
      ? `Latest: ${parts.join(" · ")} (${points.toLocaleString()} points)` : "No metrics yet.";
    section.dataset.points = String(points);
  }
  group.onRender = () => { showReadout(); showProgress(); };

  // ---- history first, then the stream ----
  let loads = 0, loading = false;
  const buffered = [];

  function onMetric(ev) {
    if (loading) buffered.push(ev);
    else if (addPoint(ev.phase, ev.name, ev.epoch, ev.value)) group.schedule();
  }

  // The JSON twin replaces what is drawn; events that arrive meanwhile wait and are added after it (the ones it
  // already holds are dropped by Series.push). Called again after each reconnect, to fill what was missed.
  function loadHistory() {
    const generation = ++loads;
    loading = true;
    return fetch(section.dataset.jsonUrl, { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((info) => {
        if (generation !== loads) return;
        [loss, lr].forEach((c) => c.clear());
        for (const [phase, names] of Object.entries(info.metrics || {})) {
          for (const [name, points] of Object.entries(names)) {
            for (const [epoch, value] of points) addPoint(phase, name, epoch, value);
          }
        }
        run.status = info.status;
        run.progress = info.progress || 0;
        if (info.epoch != null) run.epoch = info.epoch;
        if (info.solver && info.solver.epochs) run.epochs = info.solver.epochs;
        run.freshRun = (info.history || []).filter((h) => h.status === "Running").length <= 1;
        run.elapsed = info.elapsed;
        run.elapsedAt = performance.now();
        section.dataset.history = "loaded";
      })
      .catch((err) => {
        if (generation === loads) readout.textContent = `Could not load the metrics history (${err.message}).`;
      })
      .finally(() => {
        if (generation !== loads) return;
        loading = false;
        buffered.splice(0).forEach((ev) => addPoint(ev.phase, ev.name, ev.epoch, ev.value));
        group.schedule();
      });
  }

  // ---- status: the part of the page above the charts is refreshed in place ----
  // A status change alters the header, the tasks, the error and the snapshots, all above the charts. The charts
  // (and their zoom), the hardware panel and whatever follows (forms a person may be filling in) stay as they are.
  let refreshing = null;
  function refreshPage() {
    if (refreshing) return refreshing;
    refreshing = fetch(window.location.href, { headers: { Accept: "text/html" } })
      .then((r) => r.text())
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        const main = document.getElementById("main");
        const theirs = fresh && fresh.querySelector(":scope > #model-charts");
        if (!theirs || section.parentNode !== main) return;
        while (main.firstChild && main.firstChild !== section) main.firstChild.remove();
        while (fresh.firstChild && fresh.firstChild !== theirs) main.insertBefore(fresh.firstChild, section);
      })
      .finally(() => { refreshing = null; });
    return refreshing;
  }

  function onStatus(ev) {
    DIGITS.setStatusBadge(document.getElementById("job-status"), ev.status);
    const changed = ev.status !== run.status;
    run.status = ev.status;
    section.dataset.status = ev.status;
    document.dispatchEvent(new CustomEvent("digits:status", { detail: ev }));
    if (changed) { run.samples = []; refreshPage(); }
    group.schedule();
  }

  const active = ACTIVE.includes(section.dataset.status);
  const socket = DIGITS.live([jobId], {
    // Each (re)connect: a running job may have reported points while the socket was down; a finished one has not.
    joined: () => {
      if (!loads || ACTIVE.includes(run.status)) loadHistory();
      document.dispatchEvent(new CustomEvent("digits:joined", { detail: { status: run.status } }));
    },
    metric: onMetric,
    task_progress: onProgress,
    job_status: onStatus,
    job_deleted: () => { window.location.href = DIGITS.url("/"); },
    hardware: (ev) => document.dispatchEvent(new CustomEvent("digits:hardware", { detail: ev })),
  });
  DIGITS.jobSocket = socket;  // hardware.js listens through the events above instead of a second connection
  // A finished job gets nothing new: draw at once. A running one loads once joined, so nothing falls in between;
  // if joining is slow (or there is no socket), load anyway.
  if (!active || !socket) loadHistory();
  else setTimeout(() => { if (!loads) loadHistory(); }, 3000);
  setInterval(() => { if (run.status === "Running") showProgress(); }, 1000);

  // For tests and benchmarks: point counts per series, and a synchronous full redraw.
  DIGITS.modelCharts = {
    group,
    counts: () => Object.fromEntries([loss, lr].flatMap((c) => [...c.series].map(([k, s]) => [k, s.length]))),
    redrawNow: () => group.render(),
    controls,
  };
})();
