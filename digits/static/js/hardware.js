// The hardware panel of the model page: CPU and memory of the training worker (and each reserved GPU) over time.
// History from GET /models/<id>/hardware/json, then live `hardware` events, which model-charts.js passes on as
// "digits:hardware" DOM events so the page keeps one Socket.IO connection. Charts come from DIGITS.charts.
"use strict";
(function () {
  const panel = document.getElementById("hardware-panel");
  if (!panel || !DIGITS.charts || typeof uPlot === "undefined") return;
  const { ChartGroup, LiveChart, fmt } = DIGITS.charts;
  const group = new ChartGroup();
  const readout = document.getElementById("hardware-readout");
  const gpuHolder = document.getElementById("hardware-gpus");

  function bytes(v) {
    if (v == null || !isFinite(v)) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  }
  const percent = (v) => (v == null ? "—" : Math.round(v) + "%");
  const status = () => panel.dataset.status;
  const ACTIVE = ["Running", "Waiting", "Initialized"];

  const main = new LiveChart(group, document.getElementById("chart-hardware"), {
    xTime: true, xLabel: "time", height: 200,
    series: [
      { key: "cpu", label: "CPU (100% = one core)", stroke: "#0d6efd", scale: "cpu", value: percent },
      { key: "memory", label: "memory (RSS)", stroke: "#198754", scale: "bytes", value: bytes },
    ],
    scales: {
      cpu: { auto: true, range: (u, min, max) => [0, Math.max(100, max * 1.1)] },
      bytes: { auto: true, range: (u, min, max) => [0, max * 1.15 || 1] },
    },
    axes: () => [
      { label: "time" },
      { scale: "cpu", label: "CPU", values: (u, t) => t.map(percent) },
      { scale: "bytes", side: 1, label: "memory", size: 70, grid: { show: false }, values: (u, t) => t.map(bytes) },
    ],
  });

  const gpus = new Map();  // index -> {chart, last}
  function gpuChart(index) {
    if (gpus.has(index)) return gpus.get(index).chart;
    const figure = document.createElement("figure");
    figure.className = "chart-figure col-xl-6 mb-0";
    figure.innerHTML = `<figcaption class="small fw-semibold">GPU ${index}</figcaption>
      <div class="live-chart" tabindex="0" role="img"
           aria-label="Chart of GPU ${index} utilization (left axis) and memory used (right axis) over time"></div>`;
    gpuHolder.append(figure);
    const chart = new LiveChart(group, figure.querySelector(".live-chart"), {
      xTime: true, xLabel: "time", height: 180,
      series: [
        { key: "util", label: "utilization", stroke: "#dc6b00", scale: "pct", value: percent },
        { key: "memory", label: "memory used", stroke: "#6f42c1", scale: "bytes", value: bytes },
      ],
      scales: {
        pct: { auto: false, range: [0, 100] },
        bytes: { auto: true, range: (u, min, max) => [0, gpus.get(index).total || max * 1.15 || 1] },
      },
      axes: () => [
        { label: "time" },
        { scale: "pct", label: "utilization", values: (u, t) => t.map(percent) },
        { scale: "bytes", side: 1, label: "memory", size: 70, grid: { show: false }, values: (u, t) => t.map(bytes) },
      ],
    });
    gpus.set(index, { chart, last: null, total: null });
    return chart;
  }

  let latest = null;
  function addSample(s) {
    if (!main.push("cpu", s.time, s.cpu_percent)) return;  // already drawn (history and stream overlap)
    main.push("memory", s.time, s.memory_bytes);
    for (const g of s.gpus || []) {
      const chart = gpuChart(g.index);
      chart.push("util", s.time, g.utilization);
      chart.push("memory", s.time, g.memory_used);
      Object.assign(gpus.get(g.index), { last: g, total: g.memory_total });
    }
    latest = s;
  }

  function showReadout() {
    if (!latest) {
      readout.textContent = ACTIVE.includes(status())
        ? "Waiting for the first sample…" : "No hardware samples were recorded for this job.";
      return;
    }
    const parts = [`CPU ${percent(latest.cpu_percent)}`, `memory ${bytes(latest.memory_bytes)}`];
    for (const [index, g] of gpus) {
      if (!g.last) continue;
      const temp = g.last.temperature == null ? "" : `, ${fmt(g.last.temperature)} °C`;
      const memory = `${bytes(g.last.memory_used)} of ${bytes(g.last.memory_total)}`;
      parts.push(`GPU ${index}: ${percent(g.last.utilization)} busy, ${memory}${temp}`);
    }
    const when = new Date(latest.time * 1000).toLocaleTimeString();
    readout.textContent = `Latest (${when}): ${parts.join(" · ")}`;
    panel.dataset.samples = String(main.series.get("cpu").length);
  }
  group.onRender = showReadout;
  group.bindControls(panel);

  let loads = 0, loading = false;
  const buffered = [];
  function load() {
    const generation = ++loads;
    loading = true;
    return fetch(panel.dataset.url, { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((body) => {
        if (generation !== loads) return;
        group.charts.forEach((c) => c.clear());
        body.samples.forEach(addSample);
      })
      .catch(() => {})  // the panel just starts from the live samples
      .finally(() => {
        if (generation !== loads) return;
        loading = false;
        buffered.splice(0).forEach(addSample);
        group.schedule();
      });
  }

  document.addEventListener("digits:hardware", (e) => {
    if (loading) buffered.push(e.detail);
    else { addSample(e.detail); group.schedule(); }
  });
  document.addEventListener("digits:joined", () => { if (!loads || ACTIVE.includes(status())) load(); });
  document.addEventListener("digits:status", (e) => { panel.dataset.status = e.detail.status; group.schedule(); });
  if (!DIGITS.jobSocket || !ACTIVE.includes(status())) load();
  DIGITS.hardwarePanel = { group, samples: () => main.series.get("cpu").length };
})();
