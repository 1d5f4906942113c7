// Shared by every page: the URL root (for --url-prefix), the live Socket.IO connection, small helpers.
"use strict";
window.DIGITS = (function () {
  const root = document.querySelector('meta[name="digits-root"]').content || "";

  function url(path) { return root + path; }

  // One connection to namespace /jobs, joined to the given rooms (again after each reconnect).
  function live(rooms, handlers) {
    if (typeof io === "undefined") return null;
    const socket = io("/jobs", { path: root + "/socket.io" });
    socket.on("connect", () => rooms.forEach((room) => socket.emit("join", { room: room })));
    Object.entries(handlers).forEach(([event, fn]) => socket.on(event, fn));
    return socket;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    seconds = Math.round(seconds);
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return `${h}h ${m}m ${s}s`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function setStatusBadge(el, status) {
    if (!el) return;
    el.textContent = status;
    el.className = el.className.replace(/status-\w+/g, "").trim() + " status-" + status.toLowerCase();
  }

  function setProgress(bar, fraction) {
    if (!bar) return;
    const pct = Math.max(0, Math.min(100, fraction * 100));
    bar.style.width = pct.toFixed(1) + "%";
    bar.textContent = Math.round(pct) + "%";
    const holder = bar.closest('[role="progressbar"]');
    if (holder) holder.setAttribute("aria-valuenow", String(Math.round(pct)));
  }

  // A number as the pages print them (Python's '%.4g'): 0.98333 -> "0.9833", 1234567 -> "1.235e+06".
  function significant(value) {
    if (!isFinite(value)) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-4 || abs >= 1e4)) {
      const [mantissa, exp] = value.toExponential(3).split("e");
      const e = parseInt(exp, 10);
      return `${parseFloat(mantissa)}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
    }
    return String(parseFloat(value.toPrecision(4)));
  }

  // A message about something this page just tried (Abort failed...), at the top of the page, read out.
  function showPageError(message) {
    let box = document.getElementById("page-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "page-error";
      box.className = "alert alert-danger alert-dismissible";
      box.setAttribute("role", "alert");
      box.innerHTML = '<span class="message"></span><button type="button" class="btn-close" data-bs-dismiss="alert" aria-label="Close"></button>';
      document.getElementById("main").prepend(box);
    }
    box.querySelector(".message").textContent = message;
  }

  // A button with data-reveal="ID" shows or hides that element at once and moves focus into it. No sliding
  // animation: a form that grows under the pointer moved its Save button between press and release, and the
  // click was lost (the model page's Rename / notes).
  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-reveal]");
    if (!button) return;
    const target = document.getElementById(button.dataset.reveal);
    if (!target) return;
    target.hidden = !target.hidden;
    button.setAttribute("aria-expanded", String(!target.hidden));
    if (!target.hidden) {
      const first = target.querySelector("input:not([type=hidden]), textarea, select");
      if (first) first.focus();
    }
  });

  // Forms with data-confirm ask first (Delete).
  document.addEventListener("submit", (ev) => {
    const msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  return { root, url, live, duration, setStatusBadge, setProgress, significant, showPageError };
})();
