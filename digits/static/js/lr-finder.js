// New Model's LR finder: posts the form as it stands to /models/lr_finder/json, follows the ramp
// (GET /models/lr_finder/<id>/json) and draws the smoothed loss against the learning rate (log x axis) with the
// suggestion marked; "Use this rate" puts the suggestion in Base learning rate. Errors show in place, by field.
"use strict";
(function () {
  const form = document.getElementById("model-form");
  const start = document.getElementById("lr-finder-start");
  if (!form || !start) return;
  const status = document.getElementById("lr-finder-status");
  const errorBox = document.getElementById("lr-finder-error");
  const figure = document.getElementById("lr-finder-figure");
  const chartBox = document.getElementById("lr-finder-chart");
  const suggestionText = document.getElementById("lr-finder-suggestion");
  const use = document.getElementById("lr-finder-use");
  const POLL_MS = 500;
  let plot = null;
  let suggestion = null;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    status.textContent = "";
    start.disabled = false;
  }

  // The suggestion as a vertical line, drawn over the plot.
  const marker = {
    hooks: {
      draw: (u) => {
        if (suggestion == null) return;
        const x = Math.round(u.valToPos(suggestion, "x", true));
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = "#dc3545";
        ctx.setLineDash([5, 4]);
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.restore();
      },
    },
  };

  function draw(points) {
    const data = [points.map((p) => p[0]), points.map((p) => p[1])];
    figure.hidden = false;
    if (!plot) {
      const width = Math.max(240, chartBox.clientWidth || figure.clientWidth || 300);
      plot = new uPlot({
        width, height: 200,
        scales: { x: { time: false, distr: 3 }, y: { auto: true } },
        axes: [
          { label: "learning rate", values: (u, ticks) => ticks.map((v) => (v == null ? "" : v.toExponential(0))) },
          { label: "loss", size: 56, values: (u, ticks) => ticks.map((v) => (v == null ? "" : DIGITS.significant(v))) },
        ],
        series: [
          { label: "learning rate", value: (u, v) => (v == null ? "—" : v.toExponential(2)) },
          { label: "smoothed loss", stroke: "#0d6efd", width: 2, value: (u, v) => (v == null ? "—" : DIGITS.significant(v)) },
        ],
        plugins: [marker],
      }, data, chartBox);
    } else {
      plot.setData(data);
    }
  }

  function follow(url) {
    fetch(DIGITS.url(url), { headers: { Accept: "application/json" } })
      .then((r) => r.json().then((js) => ({ ok: r.ok, js })))
      .then(({ ok, js }) => {
        if (!ok) return showError(js.error ? js.error.message : "The LR finder stopped answering.");
        if (js.points.length) draw(js.points);
        if (js.status === "Error" || js.status === "Aborted") {
          return showError(`The LR finder ended ${js.status.toLowerCase()}${js.error ? ": " + js.error : ""}.`);
        }
        if (js.status !== "Done") {
          status.textContent = `Finding a learning rate… ${Math.round(js.progress * 100)}% (${js.status.toLowerCase()})`;
          window.setTimeout(() => follow(url), POLL_MS);
          return;
        }
        suggestion = js.suggestion;
        start.disabled = false;
        const stopped = js.stopped ? ` Stopped after ${js.points.length} of ${js.steps} steps: ${js.stopped}.` : "";
        status.textContent = `Done in ${js.seconds != null ? js.seconds.toFixed(1) + " s" : "a moment"}.${stopped}`;
        if (suggestion == null) {
          suggestionText.textContent = "No rate to suggest: the loss never fell.";
          use.hidden = true;
        } else {
          suggestionText.textContent = `Suggested learning rate: ${suggestion} (dashed line)`;
          use.hidden = false;
        }
        if (plot) plot.redraw();
      })
      .catch(() => showError("The server did not answer; try again."));
  }

  start.addEventListener("click", () => {
    const data = new FormData(form);
    if (data.get("method") !== "custom") data.delete("custom_network");
    errorBox.hidden = true;
    use.hidden = true;
    suggestion = null;
    suggestionText.textContent = "";
    start.disabled = true;
    status.textContent = "Starting the LR finder…";
    fetch(DIGITS.url("/models/lr_finder/json"), { method: "POST", body: data, headers: { Accept: "application/json" } })
      .then((r) => r.json().then((js) => ({ ok: r.ok, js })))
      .then(({ ok, js }) => {
        if (!ok) {
          // Field errors name each field by its label, as the form's own message does.
          return showError(js.error ? js.error.message : "The LR finder could not start.");
        }
        follow(js.url);
      })
      .catch(() => showError("The server did not answer; try again."));
  });

  use.addEventListener("click", () => {
    if (suggestion == null) return;
    const field = form.elements.learning_rate;
    field.value = String(suggestion);
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.dispatchEvent(new Event("change", { bubbles: true }));
    field.focus();
    status.textContent = `Base learning rate set to ${suggestion}.`;
  });
})();
