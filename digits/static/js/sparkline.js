// Tiny inline trends in the console's model rows: a [data-sparkline] element holds its numbers in data-values
// (JSON) and its metric in data-name ("accuracy" or "loss"); this draws each as an 80x20 SVG line.
// Live: room "home" does not carry per-point metrics (they would flood every console), so this joins the room
// of each running model in view, and leaves it when the row stops running or disappears.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const KEEP = 40, W = 80, H = 20;
  const container = document.getElementById("console-tables") || document.body;
  const drawn = new WeakSet();
  const dirty = new Set();
  let frame = 0;

  function values(el) {
    try {
      const v = JSON.parse(el.dataset.values || "[]");
      return Array.isArray(v) ? v.filter((x) => typeof x === "number" && isFinite(x)) : [];
    } catch (e) {
      return [];
    }
  }

  function show(name, v) {
    if (name === "accuracy") return (v * 100).toFixed(1) + "%";
    return "loss " + Number(v.toPrecision(3));
  }

  function draw(el) {
    drawn.add(el);
    const v = values(el), name = el.dataset.name;
    const what = name === "accuracy" ? "validation accuracy" : "training loss";
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", v.length
      ? `Trend of ${what} over the last ${v.length} reports, latest ${show(name, v[v.length - 1])}` : `No ${what} yet`);
    if (!v.length) { el.replaceChildren(); return; }
    const min = Math.min(...v), span = Math.max(...v) - min || 1;
    const pts = v.map((y, i) => [
      v.length === 1 ? W : (i * W) / (v.length - 1),
      H - 1.5 - ((y - min) / span) * (H - 3),
    ]);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", W);
    svg.setAttribute("height", H);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("aria-hidden", "true");
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
    const dot = document.createElementNS(SVG, "circle");
    const [lx, ly] = pts[pts.length - 1];
    dot.setAttribute("cx", lx.toFixed(1));
    dot.setAttribute("cy", ly.toFixed(1));
    dot.setAttribute("r", "1.8");
    svg.append(line, dot);
    el.replaceChildren(svg);
  }

  function schedule(el) {
    dirty.add(el);
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; dirty.forEach(draw); dirty.clear(); });
  }

  // A val accuracy extends (or, the first time, replaces) the trend; a train loss only while there is no accuracy.
  function onMetric(ev) {
    const tr = container.querySelector(`tr[data-job-id="${CSS.escape(ev.job_id)}"]`);
    const el = tr && tr.querySelector("[data-sparkline]");
    if (!el || typeof ev.value !== "number" || !isFinite(ev.value)) return;
    let name;
    if (ev.phase === "val" && ev.name === "accuracy") name = "accuracy";
    else if (ev.phase === "train" && ev.name === "loss" && el.dataset.name !== "accuracy") name = "loss";
    else return;
    const v = el.dataset.name === name ? values(el) : [];
    v.push(ev.value);
    el.dataset.name = name;
    el.dataset.values = JSON.stringify(v.slice(-KEEP));
    const latest = tr.querySelector(".metric-latest");
    if (latest) latest.textContent = show(name, ev.value);
    schedule(el);
  }

  // ---- rooms of the running models in view ----
  const joined = new Set();
  let socket = null;
  function syncRooms() {
    if (!socket || !socket.connected) return;
    const rows = container.querySelectorAll('tr[data-status="Running"][data-job-id]');
    const want = new Set([...rows].filter((tr) => tr.querySelector("[data-sparkline]")).map((tr) => tr.dataset.jobId));
    want.forEach((id) => { if (!joined.has(id)) { socket.emit("join", { room: id }); joined.add(id); } });
    joined.forEach((id) => { if (!want.has(id)) { socket.emit("leave", { room: id }); joined.delete(id); } });
  }

  function drawNew() {
    container.querySelectorAll("[data-sparkline]").forEach((el) => { if (!drawn.has(el)) draw(el); });
  }

  // console.js re-renders the tables and flips data-status as jobs change: follow both.
  new MutationObserver(() => { drawNew(); syncRooms(); })
    .observe(container, { childList: true, subtree: true, attributes: true, attributeFilter: ["data-status"] });
  drawNew();
  socket = DIGITS.live([], { connect: () => { joined.clear(); syncRooms(); }, metric: onMetric });

  DIGITS.sparklines = { onMetric, draw, syncRooms };
})();
