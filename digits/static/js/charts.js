// Live charts shared by the model page and the hardware panel: the points held in memory (a long history comes
// decimated from the server, with full detail fetched for a zoomed range), about two points per pixel column
// handed to uPlot (min and max of each column), at most one redraw per animation frame, zoom and pan kept in
// step across a group of charts, optional smoothing (TensorBoard's debiased moving average, the raw line kept
// faint behind) and a log-scale axis. Exposed as DIGITS.charts.
"use strict";
(function () {
  // ---- every point of one series, x strictly increasing ------------------------------------------------------
  // `total` counts the points the series stands for: those held, plus the ones a decimated history left out
  // (`coarseTo`: the last epoch of that history, null when it held every point). `detail`: every point (or
  // enough for the pixels) of a stretch of the coarse part, fetched when a person zooms into it.
  class Series {
    constructor() { this.x = []; this.y = []; this.total = 0; this.coarseTo = null; this.detail = null; }
    get length() { return this.x.length; }
    clear() { this.x.length = 0; this.y.length = 0; this.total = 0; this.coarseTo = null; this.detail = null; }
    last() { const n = this.x.length; return n ? [this.x[n - 1], this.y[n - 1]] : null; }

    // A history from the server: `points` [[x, y], ...], standing for `total` points (fewer held when decimated).
    load(points, total, decimated) {
      this.clear();
      for (const [x, y] of points) this.push(x, y);
      this.total = Math.max(total || 0, this.length);
      this.coarseTo = decimated && this.length ? this.x[this.length - 1] : null;
    }

    // A point at or before the last one is already drawn: the history and the live stream overlap while a page
    // loads, and a resumed run reports again the stretch after its snapshot. Either way it is dropped.
    push(x, y) {
      if (typeof x !== "number" || typeof y !== "number" || !isFinite(x) || !isFinite(y)) return false;
      const n = this.x.length;
      if (n && x <= this.x[n - 1]) return false;
      this.x.push(x);
      this.y.push(y);
      this.total++;
      return true;
    }

    // Whether drawing [x0, x1] across `buckets` columns needs more than is held: the window reaches into the
    // decimated history and no detail covers it at two points a column.
    needsDetail(x0, x1, buckets) {
      if (this.coarseTo === null || !(x1 > x0) || x0 >= this.coarseTo) return false;
      const d = this.detail, end = Math.min(x1, this.coarseTo);
      if (!d || d.from > x0 || d.to < end) return true;
      return !d.complete && d.points / (d.to - d.from) < (1.8 * buckets) / (x1 - x0);
    }

    // The points to draw from: the detail's stretch in place of the held (coarse) points of that stretch.
    withDetail() {
      const d = this.detail;
      if (!d || !d.x.length) return this;
      const a = this.lowerBound(d.x[0]), b = this.lowerBound(d.x[d.x.length - 1], true);
      return {
        x: this.x.slice(0, a).concat(d.x, this.x.slice(b)), y: this.y.slice(0, a).concat(d.y, this.y.slice(b)),
        get length() { return this.x.length; }, lowerBound: Series.prototype.lowerBound,
      };
    }

    // The first index whose x is >= v (or > v, when `after`).
    lowerBound(v, after = false) {
      let lo = 0, hi = this.x.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.x[mid] < v || (after && this.x[mid] === v)) lo = mid + 1; else hi = mid;
      }
      return lo;
    }
  }

  // The points of [x0, x1] to draw across `buckets` pixel columns: all of them when they fit, else the min and
  // the max of each column (in x order), which keeps every spike a full-resolution line would show. One point on
  // each side of the window is kept so lines run to the edges.
  function decimate(s, x0, x1, buckets) {
    const i0 = Math.max(0, s.lowerBound(x0) - 1);
    const i1 = Math.min(s.length, s.lowerBound(x1, true) + 1);  // exclusive
    if (i1 - i0 <= 2 * buckets || !(x1 > x0)) return { x: s.x.slice(i0, i1), y: s.y.slice(i0, i1) };
    const xs = [], ys = [], scale = buckets / (x1 - x0);
    let bucket = null, lo = -1, hi = -1;
    const flush = () => {
      if (lo < 0) return;
      const a = Math.min(lo, hi), b = Math.max(lo, hi);
      xs.push(s.x[a]); ys.push(s.y[a]);
      if (b !== a) { xs.push(s.x[b]); ys.push(s.y[b]); }
    };
    for (let i = i0; i < i1; i++) {
      const b = Math.floor((s.x[i] - x0) * scale);
      if (b !== bucket) { flush(); bucket = b; lo = hi = i; continue; }
      if (s.y[i] < s.y[lo]) lo = i;
      if (s.y[i] > s.y[hi]) hi = i;
    }
    flush();
    return { x: xs, y: ys };
  }

  // TensorBoard's smoothing: an exponential moving average with weight w in [0, 1), debiased so the first points
  // are not pulled towards zero. Non-finite values pass through without entering the average.
  function ema(ys, w) {
    const out = new Array(ys.length);
    let last = 0, wn = 1;  // wn: w to the power of the points averaged so far
    for (let i = 0; i < ys.length; i++) {
      const v = ys[i];
      if (v == null || !isFinite(v)) { out[i] = v; continue; }
      last = last * w + (1 - w) * v;
      wn *= w;
      out[i] = last / (1 - wn);
    }
    return out;
  }

  // uPlot draws series against one shared x array: merge the (sorted) parts, null where a series has no point.
  function align(parts) {
    if (parts.length === 1) return [parts[0].x, parts[0].y];
    const k = parts.length, at = new Array(k).fill(0), xs = [], ys = parts.map(() => []);
    for (;;) {
      let min = Infinity;
      for (let j = 0; j < k; j++) if (at[j] < parts[j].x.length && parts[j].x[at[j]] < min) min = parts[j].x[at[j]];
      if (min === Infinity) break;
      xs.push(min);
      for (let j = 0; j < k; j++) {
        if (at[j] < parts[j].x.length && parts[j].x[at[j]] === min) ys[j].push(parts[j].y[at[j]++]);
        else ys[j].push(null);
      }
    }
    return [xs, ...ys];
  }

  // ---- charts that share an x range (zoom and pan move them together) -----------------------------------------
  class ChartGroup {
    // options: {smoothing: 0..0.99, log: bool}, applied by charts whose spec allows them. onNeedDetail(x0, x1,
    // buckets) is called after a render whose zoomed window reaches into a decimated history.
    constructor() {
      this.charts = []; this.view = null; this.frame = 0; this.onRender = null; this.onNeedDetail = null;
      this.options = { smoothing: 0, log: false };
    }

    setOptions(options) { Object.assign(this.options, options); this.schedule(); }

    schedule() {
      if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
    }

    render() {
      const extent = this.extent();
      this.charts.forEach((c) => c.render(extent));
      if (this.onRender) this.onRender();
      if (this.view && this.onNeedDetail) {
        const wanted = this.charts.filter((c) => c.u).map((c) => c.buckets());
        const { min, max } = this.view, buckets = Math.max(0, ...wanted);
        const needed = this.charts.some((c) => [...c.series.values()].some((s) => s.needsDetail(min, max, buckets)));
        if (needed) this.onNeedDetail(min, max, buckets);
      }
    }

    extent() {
      let min = Infinity, max = -Infinity;
      for (const chart of this.charts) {
        for (const s of chart.series.values()) {
          if (!s.length) continue;
          min = Math.min(min, s.x[0]);
          max = Math.max(max, s.x[s.length - 1]);
        }
      }
      return min <= max ? [min, max] : null;
    }

    range() {
      const r = this.view ? [this.view.min, this.view.max] : this.extent();
      // A single point: a small window around it (uPlot would otherwise pick one years wide on a time axis).
      return r && r[0] === r[1] ? [r[0] - 1, r[1] + 1] : r;
    }

    // Show [min, max], kept inside the data; the whole extent means "follow the data" (view null).
    setView(min, max) {
      const extent = this.extent();
      if (!extent || !(max > min)) return;
      const [e0, e1] = extent, width = max - min;
      if (width >= (e1 - e0) * 0.999) this.view = null;
      else {
        if (min < e0) { min = e0; max = e0 + width; }
        if (max > e1) { max = e1; min = e1 - width; }
        this.view = { min, max };
      }
      this.schedule();
    }

    zoom(factor) {
      const r = this.range();
      if (!r) return;
      const mid = (r[0] + r[1]) / 2, half = ((r[1] - r[0]) / 2) * factor;
      this.setView(mid - half, mid + half);
    }

    pan(fraction) {
      const r = this.range();
      if (!r) return;
      const shift = (r[1] - r[0]) * fraction;
      this.setView(r[0] + shift, r[1] + shift);
    }

    reset() { this.view = null; this.schedule(); }

    // Buttons with data-chart-action (zoom-in, zoom-out, pan-left, pan-right, reset) inside `root`.
    bindControls(root) {
      const actions = {
        "zoom-in": () => this.zoom(0.5), "zoom-out": () => this.zoom(2),
        "pan-left": () => this.pan(-0.25), "pan-right": () => this.pan(0.25), reset: () => this.reset(),
      };
      root.querySelectorAll("[data-chart-action]").forEach((button) => {
        button.addEventListener("click", () => actions[button.dataset.chartAction]());
      });
      return actions;
    }
  }

  // One uPlot chart of named series. spec: {series: [{key, label, stroke, scale, dash, value}], scales,
  // axes(keys, {log: the scale made logarithmic or null}),
  // xTime, xLabel, height, smooth (the group's smoothing applies), logScale (the scale the group's log option
  // turns logarithmic)}. Only series with data are drawn; the plot is rebuilt when a new one starts, and when
  // smoothing starts or stops or the log option changes.
  class LiveChart {
    constructor(group, el, spec) {
      this.group = group;
      this.el = el;
      this.spec = spec;
      this.series = new Map(spec.series.map((s) => [s.key, new Series()]));
      this.shown = [];
      this.u = null;
      this.applying = false;
      this.empty = el.querySelector(".chart-empty");
      group.charts.push(this);
      if (window.ResizeObserver) {
        new ResizeObserver(() => {
          if (!this.u) return;
          const width = this.width();
          if (width !== this.u.width) {
            this.applying = true;
            this.u.setSize({ width, height: this.height() });
            this.applying = false;
          }
          group.schedule();
        }).observe(el);
      }
      this.bindKeys();
    }

    push(key, x, y) { return this.series.get(key).push(x, y); }

    // Vertical marker lines at x values the spec names ({x, label, stroke}; a model's best epoch), labelled.
    drawMarkers(u) {
      const marks = this.spec.markers ? this.spec.markers() : [];
      const ctx = u.ctx;
      for (const m of marks) {
        if (m.x == null || m.x < u.scales.x.min || m.x > u.scales.x.max) continue;
        const x = Math.round(u.valToPos(m.x, "x", true));
        ctx.save();
        ctx.strokeStyle = m.stroke || "#6c757d";
        ctx.fillStyle = m.stroke || "#6c757d";
        ctx.lineWidth = uPlot.pxRatio;
        ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.font = `${11 * uPlot.pxRatio}px sans-serif`;
        ctx.fillText(m.label, x + 3 * uPlot.pxRatio, u.bbox.top + 12 * uPlot.pxRatio);
        ctx.restore();
      }
    }
    clear() { this.series.forEach((s) => s.clear()); }
    width() { return Math.max(200, Math.floor(this.el.clientWidth)); }
    height() { return this.spec.height || 240; }

    smoothing() { return this.spec.smooth ? this.group.options.smoothing : 0; }
    logScale() { return this.spec.logScale && this.group.options.log ? this.spec.logScale : null; }
    buckets() { return this.u ? Math.max(16, Math.round(this.u.bbox.width / uPlot.pxRatio)) : 0; }
    // What the plot is built for: the series shown, whether each has a faint raw line behind, the log scale.
    layout() { return [this.shown.join(), this.smoothing() > 0, this.logScale()].join("|"); }

    build() {
      if (this.u) this.u.destroy();
      const specs = this.spec.series.filter((s) => this.shown.includes(s.key));
      const group = this.group, smooth = this.smoothing() > 0, log = this.logScale();
      const scales = { x: { time: !!this.spec.xTime }, ...this.spec.scales };
      if (log) scales[log] = { ...scales[log], distr: 3, log: 10 };
      const value = (s) => (s.value ? (u, v) => (v == null ? "—" : s.value(v)) : undefined);
      const uSeries = [];
      for (const s of specs) {
        if (smooth) {  // the raw points, faint; the legend names only the smoothed line
          uSeries.push({
            label: s.label + " (raw)", scale: s.scale, stroke: fade(s.stroke), width: 1, dash: s.dash,
            spanGaps: true, value: value(s), class: "chart-raw",
          });
        }
        uSeries.push({
          label: s.label, scale: s.scale, stroke: s.stroke, width: 1.5, dash: s.dash, spanGaps: true, value: value(s),
        });
      }
      this.builtFor = this.layout();
      const opts = {
        width: this.width(),
        height: this.height(),
        scales,
        axes: this.spec.axes(this.shown, { log }),
        series: [{ label: this.spec.xLabel, value: this.spec.xValue }, ...uSeries],
        cursor: {
          drag: { x: true, y: false, setScale: true },
          // Double-click shows everything (uPlot's own reset would only know the decimated window).
          bind: { dblclick: () => () => { group.reset(); return null; } },
        },
        legend: { live: true },
        hooks: {
          setScale: [(u, key) => {
            if (key === "x" && !this.applying) group.setView(u.scales.x.min, u.scales.x.max);  // a drag-select zoom
          }],
          draw: [(u) => this.drawMarkers(u)],
        },
      };
      this.applying = true;
      this.u = new uPlot(opts, [[], ...uSeries.map(() => [])], this.el);
      this.applying = false;
      // The raw lines' legend entries would only repeat the smoothed ones' names.
      this.u.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
        if (i > 0 && uSeries[i - 1].class === "chart-raw") row.classList.add("chart-raw");
      });
      this.bindPan();
    }

    render(extent) {
      const keys = this.spec.series.map((s) => s.key).filter((k) => this.series.get(k).length);
      if (this.empty) this.empty.hidden = keys.length > 0;
      if (!keys.length) {
        if (this.u) { this.u.destroy(); this.u = null; this.shown = []; }
        return;
      }
      this.shown = keys;
      if (!this.u || this.layout() !== this.builtFor) this.build();
      const view = this.group.view;
      const [x0, x1] = view ? [view.min, view.max] : extent;
      const buckets = this.buckets(), w = this.smoothing(), log = this.logScale();
      const parts = [];
      for (const k of this.shown) {
        const source = view ? this.series.get(k).withDetail() : this.series.get(k);
        const spec = this.spec.series.find((s) => s.key === k);
        if (w > 0) parts.push(decimate(source, x0, x1, buckets));
        // The average runs over every point held from the first, so zooming in does not restart it.
        const drawn = w > 0
          ? { x: source.x, y: ema(source.y, w), length: source.x.length, lowerBound: Series.prototype.lowerBound }
          : source;
        parts.push(decimate(drawn, x0, x1, buckets));
        if (log && spec.scale === log) parts.slice(w > 0 ? -2 : -1).forEach(positiveOnly);
      }
      const data = align(parts);
      const fixed = x1 > x0;
      this.applying = true;
      // batch() draws now instead of in a microtask, so a forced redraw can be timed.
      this.u.batch(() => {
        this.u.setData(data, !fixed);
        if (fixed) this.u.setScale("x", { min: x0, max: x1 });
      });
      this.applying = false;
    }

    // Shift+drag pans (a plain drag selects a range to zoom into).
    bindPan() {
      const u = this.u, group = this.group;
      u.root.addEventListener("mousedown", (e) => {
        if (!e.shiftKey || e.button !== 0 || !u.over.contains(e.target)) return;
        e.stopPropagation();
        e.preventDefault();
        const r = group.range();
        if (!r) return;
        const startX = e.clientX, perPx = (r[1] - r[0]) / u.over.clientWidth;
        const move = (m) => group.setView(r[0] - (m.clientX - startX) * perPx, r[1] - (m.clientX - startX) * perPx);
        document.addEventListener("mousemove", move);
        document.addEventListener("mouseup", () => document.removeEventListener("mousemove", move), { once: true });
      }, true);
    }

    // The chart itself is focusable: arrows pan, + and - zoom, 0 or Escape shows everything.
    bindKeys() {
      const group = this.group;
      this.el.addEventListener("keydown", (e) => {
        const act = {
          ArrowLeft: () => group.pan(-0.25), ArrowRight: () => group.pan(0.25), "+": () => group.zoom(0.5),
          "=": () => group.zoom(0.5), "-": () => group.zoom(2), 0: () => group.reset(), Escape: () => group.reset(),
        }[e.key];
        if (act) { act(); e.preventDefault(); }
      });
    }
  }

  // A log axis cannot place zero or less: such points become gaps.
  function positiveOnly(part) { part.y = part.y.map((v) => (v > 0 ? v : null)); }

  // A stroke colour at a quarter of its opacity (#rrggbb), for the raw line behind a smoothed one.
  function fade(color) { return /^#[0-9a-f]{6}$/i.test(color) ? color + "40" : color; }

  function fmt(v, digits) {
    if (v == null || !isFinite(v)) return "—";
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : Number(v.toPrecision(digits || 4)).toString();
  }
  const pct = (v) => (v == null ? "—" : (v * 100).toFixed(1) + "%");

  DIGITS.charts = { Series, decimate, ema, align, ChartGroup, LiveChart, fmt, pct };
})();
