// The model page, live: loss/accuracy and learning-rate charts, progress with time left, and the job's status.
// History comes from GET /models/<id>/metrics/json (decimated to the charts' width, so a run of 100,000 points
// draws at once; a zoom fetches the detail of its range), then the `metric` stream over Socket.IO (no polling).
// Smoothing and the log scale are remembered by the browser. The charts themselves (decimation, zoom, pan,
// smoothing) are js/charts.js, shared with the hardware panel.
"use strict";
(function () {
  const { ChartGroup, LiveChart, fmt, pct } = DIGITS.charts;

  // ---- the model page ----------------------------------------------------------------------------------------
  const section = document.getElementById("model-charts");
  if (!section || typeof uPlot === "undefined") return;
  const jobId = section.dataset.jobId;
  const ACTIVE = ["Initialized", "Waiting", "Running"];
  const group = new ChartGroup();
  const decade = (v) => v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
  const percentAxis = (u, ticks) => ticks.map((v) => Math.round(v * 100) + "%");
  const loss = new LiveChart(group, document.getElementById("chart-loss"), {
    xLabel: "epoch",
    smooth: true,
    logScale: "loss",
    xValue: (u, v) => (v == null ? "—" : v.toFixed(2)),
    series: [
      { key: "train/loss", label: "train loss", stroke: "#0d6efd", scale: "loss", value: (v) => fmt(v) },
      { key: "val/loss", label: "val loss", stroke: "#198754", scale: "loss", value: (v) => fmt(v) },
      { key: "val/accuracy", label: "val accuracy", stroke: "#dc6b00", scale: "acc", value: pct },
      { key: "val/top5", label: "val top-5", stroke: "#dc6b00", scale: "acc", dash: [6, 4], value: pct },
    ],
    scales: { loss: { auto: true }, acc: { auto: false, range: [0, 1] } },
    // The best epoch (show.html's #best-epoch, kept true by js/job.js's live region) as a marker line.
    markers: () => {
      const best = document.getElementById("best-epoch");
      const x = best ? parseFloat(best.dataset.epoch) : NaN;
      return isFinite(x) ? [{ x, label: "best", stroke: "#6f42c1" }] : [];
    },
    axes: (keys, { log }) => [
      { label: "epoch" },
      // On a log axis uPlot ticks 1 to 9 of each decade: only the decades are labelled.
      { scale: "loss", label: "loss", values: (u, ticks) => ticks.map((v) => (log && !decade(v) ? "" : fmt(v, 3))) },
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

  // ---- smoothing and log scale, remembered by this browser ----
  const STORE = { smoothing: "digits.charts.smoothing", log: "digits.charts.logScale" };
  const stored = (key) => { try { return window.localStorage.getItem(key); } catch (e) { return null; } };
  const store = (key, value) => { try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ } };
  const smoothing = document.getElementById("chart-smoothing");
  const smoothingShown = document.getElementById("chart-smoothing-value");
  const logScale = document.getElementById("chart-log-scale");

  function applyOptions() {
    const w = Math.min(0.99, Math.max(0, parseFloat(smoothing.value) || 0));
    smoothingShown.textContent = w.toFixed(2);
    group.setOptions({ smoothing: w, log: logScale.checked });
  }
  if (smoothing && logScale) {
    const w = parseFloat(stored(STORE.smoothing));
    if (isFinite(w)) smoothing.value = String(Math.min(0.99, Math.max(0, w)));
    logScale.checked = stored(STORE.log) === "true";
    smoothing.addEventListener("input", () => { applyOptions(); store(STORE.smoothing, smoothing.value); });
    logScale.addEventListener("change", () => { applyOptions(); store(STORE.log, String(logScale.checked)); });
    applyOptions();
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
    run.progress = ev.progress;  // the progress bar and the tasks table are js/job.js's
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
    const points = [...loss.series.values(), ...lr.series.values()].reduce((n, s) => n + s.total, 0);
    readout.textContent = parts.length
      ? `Latest: ${parts.join(" · ")} (${points.toLocaleString()} points)` : "No metrics yet.";
    if (detail.error) readout.textContent += " " + detail.error;
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
  // A batch of points (an external run's log call): [[phase, name, epoch, value, iteration], ...], one redraw.
  function onMetrics(ev) {
    let added = false;
    for (const [phase, name, epoch, value] of ev.points) {
      if (loading) buffered.push({ phase, name, epoch, value });
      else added = addPoint(phase, name, epoch, value) || added;
    }
    if (added) group.schedule();
  }

  // The points to ask for: about two a pixel column. The history's request (2,000 points a series) is the
  // page's own preload, started with the page.
  const wantPoints = (columns) => Math.min(20000, Math.max(200, 2 * Math.ceil(columns)));
  const metricsUrl = (params) => `${section.dataset.metricsUrl}?${new URLSearchParams(params)}`;
  const getJson = (url) => fetch(url, { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))));
  const seriesOf = (s) => {
    const key = s.phase + "/" + s.name;
    return CHART_OF[key] ? CHART_OF[key].series.get(key) : null;
  };

  // The history replaces what is drawn; events that arrive meanwhile wait and are added after it (the ones it
  // already holds are dropped by Series.push). Called again after each reconnect, to fill what was missed.
  function loadHistory() {
    const generation = ++loads;
    loading = true;
    detail.generation++;
    return getJson(section.dataset.historyUrl)
      .then((info) => {
        if (generation !== loads) return;
        [loss, lr].forEach((c) => c.clear());
        for (const s of info.series) {
          const series = seriesOf(s);
          if (series) series.load(s.points, s.count, s.decimated);
        }
        run.status = info.status;
        run.progress = info.progress || 0;
        if (info.epoch != null) run.epoch = info.epoch;
        if (info.epochs) run.epochs = info.epochs;
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

  // ---- detail on zoom: the zoomed range and half its width on each side (for panning), every point when they
  // fit, else two a pixel column. One request at a time; the view is checked again when it answers.
  const detail = { busy: false, timer: 0, generation: 0, loads: 0, error: "" };
  group.onNeedDetail = (x0, x1, buckets) => {
    if (detail.busy || detail.timer) return;
    detail.timer = setTimeout(() => {  // a drag or a held key changes the view many times a second
      detail.timer = 0;
      const view = group.view;
      if (!view) return;
      const half = (view.max - view.min) / 2, from = view.min - half, to = view.max + half;
      const points = wantPoints(4 * buckets), generation = detail.generation;
      detail.busy = true;
      getJson(metricsUrl({ from, to, points }))
        .then((info) => {
          if (generation !== detail.generation) return;
          for (const s of info.series) {
            const series = seriesOf(s);
            if (!series || series.coarseTo === null) continue;
            const x = s.points.map((p) => p[0]), y = s.points.map((p) => p[1]);
            series.detail = { from, to, points, complete: !s.decimated, x, y };
          }
          detail.loads++;
          detail.error = "";
        })
        .catch((err) => { detail.error = `Could not load the detail of these epochs (${err.message}).`; })
        .finally(() => { detail.busy = false; group.schedule(); });
    }, 120);
  };

  // ---- status: the charts follow it; js/job.js keeps the rest of the page (status, tasks, snapshots, the Test
  // section) true in place, so the charts (and their zoom) and the forms a person may be filling in stay as they are.
  function onStatus(ev) {
    DIGITS.setStatusBadge(document.getElementById("job-status"), ev.status);
    const changed = ev.status !== run.status;
    run.status = ev.status;
    section.dataset.status = ev.status;
    document.dispatchEvent(new CustomEvent("digits:status", { detail: ev }));
    if (changed) run.samples = [];
    group.schedule();
  }

  const socket = DIGITS.live([jobId], {
    // Each (re)connect: a running job may have reported points while the socket was down; a finished one has not.
    joined: () => {
      if (!loads || ACTIVE.includes(run.status)) loadHistory();
      document.dispatchEvent(new CustomEvent("digits:joined", { detail: { status: run.status } }));
    },
    metric: onMetric,
    metrics: onMetrics,
    task_progress: onProgress,
    job_status: onStatus,
    // job_deleted: js/job.js takes the page home.
    hardware: (ev) => document.dispatchEvent(new CustomEvent("digits:hardware", { detail: ev })),
  });
  DIGITS.jobSocket = socket;  // hardware.js listens through the events above instead of a second connection
  // Draw at once, from the request the page preloaded; a running job loads again once joined, so the points
  // reported in between are drawn too.
  loadHistory();
  setInterval(() => { if (run.status === "Running") showProgress(); }, 1000);

  // For tests and benchmarks: point counts per series, and a synchronous full redraw.
  DIGITS.modelCharts = {
    group,
    counts: () => Object.fromEntries([loss, lr].flatMap((c) => [...c.series].map(([k, s]) => [k, s.total]))),
    held: (key) => { const s = CHART_OF[key].series.get(key); return { x: s.x.slice(), y: s.y.slice() }; },
    detailLoads: () => detail.loads,
    detailPending: () => detail.busy || detail.timer !== 0,
    redrawNow: () => group.render(),
    controls,
  };
})();
