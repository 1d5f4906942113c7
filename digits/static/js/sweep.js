// A sweep's page: the table of its models sorts by any column, and one chart overlays every model's validation loss
// (solid, left axis) and accuracy (dashed, right axis), one colour per model, named by its swept values. The curves
// come decimated from GET /models/sweeps/<group>/json, then follow each model's room live (`metric`); a model's
// new status, progress or result refreshes the table from the page itself (its #sweep-rows), keeping the sort.
"use strict";
(function () {
  const section = document.getElementById("sweep");
  if (!section || typeof uPlot === "undefined") return;
  const { ChartGroup, LiveChart, fmt, pct } = DIGITS.charts;
  const members = JSON.parse(section.dataset.members);
  const CURVES = ["val/loss", "val/accuracy"];
  const PALETTE = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#d63384", "#795548",
    "#0dcaf0", "#6c757d"];
  const colour = (i) => (i < PALETTE.length ? PALETTE[i] : `hsl(${Math.round((i * 137.5) % 360)} 60% 40%)`);

  // ---- the table: sorted by any column, refreshed from the page when a model's status, progress or results change
  const { refreshSoon } = DIGITS.liveTable(document.getElementById("sweep-table"), "sweep-rows", section);

  // ---- the chart -----------------------------------------------------------------------------------------
  const group = new ChartGroup();
  let chart = null;
  let pending = [];  // live points that arrived before the history: added once it is drawn
  const readout = document.getElementById("sweep-readout");

  function label(model) {
    const parts = Object.entries(model.sweep || {}).map(([field, value]) => `${field} ${value}`);
    return parts.length ? parts.join(" · ") : model.name;
  }

  function build(models) {
    const series = [];
    models.forEach((m, i) => {
      series.push({ key: `${m.id}/val/loss`, label: `${label(m)} loss`, stroke: colour(i), scale: "loss", value: (v) => fmt(v) });
      series.push({
        key: `${m.id}/val/accuracy`, label: `${label(m)} accuracy`, stroke: colour(i), scale: "acc", dash: [6, 4], value: pct,
      });
    });
    return new LiveChart(group, document.getElementById("sweep-chart"), {
      xLabel: "epoch",
      logScale: "loss",
      height: 360,
      xValue: (u, v) => (v == null ? "—" : v.toFixed(2)),
      series,
      scales: { loss: { auto: true }, acc: { auto: false, range: [0, 1] } },
      axes: (keys) => [
        { label: "epoch" },
        { scale: "loss", label: "val loss", values: (u, ticks) => ticks.map((v) => fmt(v, 3)) },
        ...(keys.some((k) => k.endsWith("/val/accuracy"))
          ? [{ scale: "acc", side: 1, label: "val accuracy", grid: { show: false },
            values: (u, ticks) => ticks.map((v) => Math.round(v * 100) + "%") }] : []),
      ],
    });
  }

  function showReadout() {
    if (!chart) return;
    let points = 0, drawn = 0;
    chart.series.forEach((s) => { points += s.total; if (s.length) drawn++; });
    readout.textContent = drawn
      ? `${drawn} curves of ${members.length} models (${points.toLocaleString()} points).`
      : "No validation results reported yet.";
    section.dataset.points = String(points);
    section.dataset.curves = String(drawn);
  }
  group.onRender = showReadout;

  function add(ev) {
    const key = `${ev.job_id}/${ev.phase}/${ev.name}`;
    if (!CURVES.includes(`${ev.phase}/${ev.name}`)) return;
    if (!chart) { pending.push(ev); return; }
    if (chart.series.has(key) && chart.push(key, ev.epoch, ev.value)) group.schedule();
  }

  fetch(section.dataset.jsonUrl + "?points=2000", { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((js) => {
      chart = build(js.models);
      js.models.forEach((m) => {
        CURVES.forEach((curve) => {
          const c = m.curves[curve];
          if (c) chart.series.get(`${m.id}/${curve}`).load(c.points, c.count, c.decimated);
        });
      });
      const early = pending;
      pending = [];
      early.forEach(add);
      section.dataset.loaded = "true";
      group.schedule();
      showReadout();
    })
    .catch((err) => { readout.textContent = `Could not load the curves (${err.message}).`; });

  group.bindControls(section);
  const logScale = document.getElementById("sweep-log-scale");
  logScale.addEventListener("change", () => group.setOptions({ log: logScale.checked }));

  DIGITS.live(members, {
    metric: (ev) => { add(ev); if (ev.phase === "val") refreshSoon(1000); },
    task_progress: () => refreshSoon(2000),
    job_status: () => refreshSoon(200),
    snapshot: () => refreshSoon(1000),
  });
})();
