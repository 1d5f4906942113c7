// The home page's model list: tick models (their checkboxes belong to #compare-form), then Compare opens
// /models/compare?job_id=A&job_id=B. The ticks outlive console.js's refresh of the tables, and Compare with fewer
// than two ticked says so instead of leaving the page.
"use strict";
(function () {
  const container = document.getElementById("console-tables");
  if (!container) return;
  const ticked = new Set();
  const boxes = () => container.querySelectorAll('input[type=checkbox][form="compare-form"]');

  container.addEventListener("change", (ev) => {
    const box = ev.target;
    if (!box.matches || !box.matches('input[type=checkbox][form="compare-form"]')) return;
    if (box.checked) ticked.add(box.value); else ticked.delete(box.value);
    const message = document.getElementById("compare-message");
    if (message && ticked.size >= 2) message.remove();
  });

  // console.js swaps the tables for fresh copies when a job is added, deleted or finishes: tick them again.
  new MutationObserver(() => {
    const present = new Set();
    boxes().forEach((box) => {
      present.add(box.value);
      if (ticked.has(box.value)) box.checked = true;
    });
    ticked.forEach((id) => { if (!present.has(id)) ticked.delete(id); });
  }).observe(container, { childList: true });

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.id !== "compare-form") return;
    const chosen = [...boxes()].filter((box) => box.checked).length;
    if (chosen >= 2) return;
    ev.preventDefault();
    let message = document.getElementById("compare-message");
    if (!message) {
      message = document.createElement("span");
      message.id = "compare-message";
      message.className = "small text-danger ms-2";
      message.setAttribute("role", "alert");
      form.appendChild(message);
    }
    message.textContent = chosen ? "Tick one more model to compare." : "Tick two or more models to compare.";
  });
})();
