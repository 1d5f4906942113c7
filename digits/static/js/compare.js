// The comparison page: its table sorts by any column; two charts (loss: validation solid, training dashed; and
// validation accuracy) overlay every model in its own colour, zoomed and panned together. The curves come decimated
// from GET /models/compare/json, then follow each model's room live (`metric`); a model's new status, progress or
// results refresh the table from the page itself (its #compare-rows), keeping the sort. "Shown on the charts"
// hides or shows a model's lines on both charts.
"use strict";
(function () {
  const section = document.getElementById("compare");
  if (!section || typeof uPlot === "undefined") return;
  const { ChartGroup, LiveChart, fmt, pct } = DIGITS.charts;
  const members = JSON.parse(section.dataset.members);
  const CURVES = ["train/loss", "val/loss", "val/accuracy"];

  // ---- the table: sorted by any column, refreshed from the page when a model's status, progress or results change
  const { refreshSoon } = DIGITS.liveTable(document.getElementById("compare-table"), "compare-rows", section);

  // ---- the charts -----------------------------------------------------------------------------------------------
  const group = new ChartGroup();
  let loss = null, accuracy = null, models = [];
  let pending = [];  // live points that arrived before the history: added once it is drawn
  const hidden = new Set();  // models whose lines are hidden
  const readout = document.getElementById("compare-readout");
  const logScale = document.getElementById("compare-log-scale");

  function build(list) {
    const lossSeries = [], accSeries = [];
    list.forEach((m) => {
      lossSeries.push({ key: `${m.id}/val/loss`, label: `${m.label} val loss`, stroke: m.colour, scale: "loss", value: (v) => fmt(v) });
      lossSeries.push({
        key: `${m.id}/train/loss`, label: `${m.label} train loss`, stroke: m.colour, scale: "loss", dash: [6, 4], value: (v) => fmt(v),
      });
      accSeries.push({ key: `${m.id}/val/accuracy`, label: `${m.label} val accuracy`, stroke: m.colour, scale: "acc", value: pct });
    });
    const xValue = (u, v) => (v == null ? "—" : v.toFixed(2));
    loss = new LiveChart(group, document.getElementById("compare-loss-chart"), {
      xLabel: "epoch", logScale: "loss", height: 320, xValue, series: lossSeries, scales: { loss: { auto: true } },
      axes: () => [{ label: "epoch" }, { scale: "loss", label: "loss", values: (u, ticks) => ticks.map((v) => fmt(v, 3)) }],
    });
    accuracy = new LiveChart(group, document.getElementById("compare-accuracy-chart"), {
      xLabel: "epoch", height: 260, xValue, series: accSeries, scales: { acc: { auto: false, range: [0, 1] } },
      axes: () => [{ label: "epoch" }, { scale: "acc", label: "val accuracy", values: (u, ticks) => ticks.map((v) => Math.round(v * 100) + "%") }],
    });
    loss.allSeries = lossSeries;
    accuracy.allSeries = accSeries;
  }

  // A chart draws only the series its spec lists: hiding a model takes its series out of both specs.
  function applyHidden() {
    [loss, accuracy].forEach((chart) => {
      if (chart) chart.spec.series = chart.allSeries.filter((s) => !hidden.has(s.key.split("/")[0]));
    });
    group.schedule();
  }

  function showReadout() {
    if (!loss) return;
    let points = 0, drawn = 0;
    [loss, accuracy].forEach((chart) => chart.series.forEach((s) => { points += s.total; if (s.length) drawn++; }));
    const shown = members.length - hidden.size;
    readout.textContent = drawn
      ? `${drawn} curves of ${members.length} models, ${shown} shown (${points.toLocaleString()} points).`
      : "No results reported yet.";
    section.dataset.points = String(points);
    section.dataset.curves = String(drawn);
  }
  group.onRender = showReadout;

  function chartOf(curve) { return curve === "val/accuracy" ? accuracy : loss; }

  function add(ev) {
    const curve = `${ev.phase}/${ev.name}`;
    if (!CURVES.includes(curve)) return;
    if (!loss) { pending.push(ev); return; }
    const chart = chartOf(curve), key = `${ev.job_id}/${curve}`;
    if (chart.series.has(key) && chart.push(key, ev.epoch, ev.value)) group.schedule();
  }

  fetch(section.dataset.jsonUrl + "&points=2000", { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((js) => {
      models = js.models;
      build(models);
      models.forEach((m) => {
        CURVES.forEach((curve) => {
          const c = m.curves[curve];
          if (c) chartOf(curve).series.get(`${m.id}/${curve}`).load(c.points, c.count, c.decimated);
        });
      });
      const early = pending;
      pending = [];
      early.forEach(add);
      applyHidden();
      section.dataset.loaded = "true";
      showReadout();
    })
    .catch((err) => { readout.textContent = `Could not load the curves (${err.message}).`; });

  document.querySelectorAll("#compare-shown input[type=checkbox]").forEach((box) => {
    box.addEventListener("change", () => {
      if (box.checked) hidden.delete(box.dataset.jobId); else hidden.add(box.dataset.jobId);
      applyHidden();
      showReadout();
    });
  });

  group.bindControls(section);
  logScale.addEventListener("change", () => group.setOptions({ log: logScale.checked }));

  // A batch of points (an external run's log call): [[phase, name, epoch, value, iteration], ...].
  function addBatch(ev) {
    let val = false;
    for (const [phase, name, epoch, value] of ev.points || []) {
      add({ job_id: ev.job_id, phase, name, epoch, value });
      val = val || phase === "val";
    }
    if (val) refreshSoon(1000);
  }

  DIGITS.live(members, {
    metric: (ev) => { add(ev); if (ev.phase === "val") refreshSoon(1000); },
    metrics: addBatch,
    task_progress: () => refreshSoon(2000),
    job_status: () => refreshSoon(200),
    snapshot: () => refreshSoon(1000),
  });
})();
