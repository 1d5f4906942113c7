// "Test a model" on a model's page: each form is sent from here, so a refusal (a broken image, a list with no
// image in it) is shown in place under its form, while a result takes the browser to its page; a long
// classification's progress is followed meanwhile.
"use strict";
(function () {
  const section = document.getElementById("test-model");
  if (!section) return;
  const jobId = section.dataset.jobId;

  // The server's message for a refused request: its JSON error, each field's messages, or the status.
  function problem(js, response) {
    const error = js && js.error;
    if (!error) return `The server answered ${response.status} ${response.statusText || ""}`.trim();
    const fields = js.errors ? Object.values(js.errors).flat() : [];
    return fields.length ? fields.join(" ") : error.message;
  }

  function showError(box, message) {
    box.replaceChildren();
    if (!message) return;
    const alert = document.createElement("div");
    alert.className = "alert alert-danger py-2 mt-2 mb-0";
    alert.textContent = message;
    box.appendChild(alert);
  }

  // POST a form and go to the result's page (Prefer: return=minimal answers its address), or say why not.
  async function send(form, action, box) {
    let response;
    try {
      response = await fetch(action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json", Prefer: "return=minimal" },
      });
    } catch (e) {
      showError(box, "The server could not be reached; try again.");
      return false;
    }
    const js = await response.json().catch(() => null);
    if (response.ok && js && js.results_url) {
      window.location.assign(js.results_url);
      return true;
    }
    showError(box, problem(js, response));
    return false;
  }

  function setBusy(form, busy) {
    form.querySelectorAll('button[type="submit"]').forEach((b) => { b.disabled = busy; });
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // Classify one: a file and a URL are alternatives; choosing one clears the other.
  const oneForm = document.getElementById("classify-one-form");
  const file = document.getElementById("classify-one-file");
  const url = document.getElementById("classify-one-url");
  const oneError = document.getElementById("classify-one-error");
  if (file && url) {
    file.addEventListener("change", () => { if (file.value) url.value = ""; });
    url.addEventListener("input", () => { if (url.value) file.value = ""; });
  }
  if (oneForm && oneError) {
    oneForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      showError(oneError, "");
      if (!file.value && !url.value.trim()) {
        showError(oneError, "Choose an image file or type an image URL first.");
        file.focus();
        return;
      }
      setBusy(oneForm, true);
      const going = await send(oneForm, oneForm.action, oneError);
      if (!going) setBusy(oneForm, false);
    });
  }

  // Classify many: the browser keeps this page until the result arrives, so show the worker's progress here.
  const form = document.getElementById("classify-many-form");
  if (!form) return;
  const progress = document.getElementById("classify-many-progress");
  const status = document.getElementById("classify-many-status");
  const manyError = document.getElementById("classify-many-error");
  let socket = null;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError(manyError, "");
    const list = document.getElementById("classify-many-list");
    const zip = document.getElementById("classify-many-zip");
    if (!list.value && !zip.value) {
      status.textContent = "";
      showError(manyError, "Choose an image list or a zip of images first.");
      list.focus();
      return;
    }
    // The route is the button's own formaction when it has one (Top-N), else the form's action (Classify many).
    // Read the attribute: a button without one reports the page's own URL as its formAction.
    const submitter = ev.submitter;
    const action = submitter && submitter.hasAttribute("formaction") ? submitter.formAction : form.dataset.action;
    setBusy(form, true);
    DIGITS.setProgress(progress.querySelector(".progress-bar"), 0);
    progress.classList.remove("d-none");
    status.textContent = "Uploading and classifying…";
    if (!socket) {
      socket = DIGITS.live([jobId], {
        inference_progress: (msg) => {
          if (!msg.total) return;
          DIGITS.setProgress(progress.querySelector(".progress-bar"), msg.done / msg.total);
          status.textContent = `${msg.done} of ${msg.total} images`;
        },
      });
    }
    const going = await send(form, action, manyError);
    if (going) {
      status.textContent = "Done; opening the results…";
      return;
    }
    progress.classList.add("d-none");
    status.textContent = "";
    setBusy(form, false);
  });
  // Coming back with the browser's Back button shows the forms ready again.
  window.addEventListener("pageshow", () => {
    setBusy(form, false);
    if (oneForm) setBusy(oneForm, false);
  });
})();
