// Draws a network (nodes = layers with output shapes and parameter counts, edges = blobs) as an SVG.
// Layers are placed in rows by depth (longest path from an input), branches side by side.
"use strict";
window.NetworkGraph = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 190, H = 54, GAP_X = 24, GAP_Y = 26;

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function shapeText(node) {
    const shapes = Object.values(node.output_shapes || {});
    return shapes.length ? shapes.map((s) => s.join("×")).join(", ") : "?";
  }

  // Caffe allows two layers of one name; the server gives the later ones an id that edges use.
  const key = (n) => n.id || n.name;

  function layout(graph) {
    const depth = {};
    graph.nodes.forEach((n) => { depth[key(n)] = 0; });
    // Nodes arrive in network order, so one pass in order settles every depth.
    graph.nodes.forEach((n) => {
      graph.edges.filter((e) => e.to === key(n) && e.from !== key(n)).forEach((e) => {
        depth[key(n)] = Math.max(depth[key(n)], (depth[e.from] || 0) + 1);
      });
    });
    const rows = {};
    graph.nodes.forEach((n) => { (rows[depth[key(n)]] = rows[depth[key(n)]] || []).push(n); });
    const widest = Math.max(...Object.values(rows).map((r) => r.length));
    const pos = {};
    Object.entries(rows).forEach(([d, row]) => {
      const offset = ((widest - row.length) * (W + GAP_X)) / 2;
      row.forEach((n, i) => { pos[key(n)] = { x: 10 + offset + i * (W + GAP_X), y: 10 + d * (H + GAP_Y) }; });
    });
    return { pos, width: 20 + widest * (W + GAP_X), height: 20 + Object.keys(rows).length * (H + GAP_Y) };
  }

  // `options.errorAction()`, when given, makes a control for the error's message (the editor's "Go to line N").
  function draw(container, graph, options = {}) {
    container.replaceChildren();
    if (graph.error) {
      const alert = document.createElement("div");
      alert.className = "alert alert-danger py-2";
      alert.setAttribute("role", "alert");
      const where = (graph.error.layer ? `Layer ${graph.error.layer}` : "The network")
        + (graph.error.line ? ` (line ${graph.error.line})` : "");
      alert.textContent = `${where}: ${graph.error.message}`;
      if (options.errorAction) alert.appendChild(options.errorAction());
      container.appendChild(alert);
    }
    (graph.warnings || []).forEach((text) => {
      const note = document.createElement("div");
      note.className = "alert alert-info py-2";
      note.setAttribute("role", "status");
      note.textContent = text;
      container.appendChild(note);
    });
    if (!graph.nodes.length) return; // a text that does not parse has no layers to draw
    const { pos, width, height } = layout(graph);
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `Network ${graph.name || ""}: ${graph.nodes.length} layers` });
    graph.edges.forEach((e) => {
      const a = pos[e.from], b = pos[e.to];
      if (!a || !b || e.from === e.to) return;
      svg.appendChild(el("line", { x1: a.x + W / 2, y1: a.y + H, x2: b.x + W / 2, y2: b.y, class: "net-edge" }));
    });
    graph.nodes.forEach((n) => {
      const p = pos[key(n)];
      const g = el("g", { class: "net-node" + (n.error ? " net-node-error" : ""), transform: `translate(${p.x},${p.y})` });
      g.appendChild(el("title", {}, `${n.name} (${n.type})${n.line ? ", line " + n.line : ""}`));
      g.appendChild(el("rect", { width: W, height: H, rx: 6 }));
      g.appendChild(el("text", { x: 8, y: 16, class: "net-name" }, `${n.name}`));
      g.appendChild(el("text", { x: W - 8, y: 16, class: "net-type", "text-anchor": "end" }, n.type));
      g.appendChild(el("text", { x: 8, y: 33 }, n.error ? "shape cannot work" : shapeText(n)));
      if (n.param_count) g.appendChild(el("text", { x: 8, y: 48, class: "net-params" }, `${n.param_count.toLocaleString()} params`));
      svg.appendChild(g);
    });
    const total = graph.nodes.reduce((s, n) => s + (n.param_count || 0), 0);
    const summary = document.createElement("p");
    summary.className = "small text-muted mb-1";
    summary.textContent = `${graph.nodes.length} layers, ${total.toLocaleString()} parameters (${graph.stage} stage)`;
    container.appendChild(summary);
    const scroller = document.createElement("div");
    scroller.className = "net-graph-scroll";
    scroller.appendChild(svg);
    container.appendChild(scroller);
  }

  return { draw };
})();
