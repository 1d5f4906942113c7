// The classify-one page: any picture (the image, Grad-CAM, a layer's activations or weights) enlarges in a
// dialog on click or Enter; Grad-CAM is drawn again for the convolution layer a person picks.
"use strict";
(function () {
  const modal = document.getElementById("tile-modal");
  if (modal) {
    const big = document.getElementById("tile-modal-image");
    const title = document.getElementById("tile-modal-title");
    // Bootstrap opens the dialog from the button (data-bs-toggle) and gives focus back to it on close.
    modal.addEventListener("show.bs.modal", (ev) => {
      const button = ev.relatedTarget;
      const img = button && button.querySelector("img");
      if (!img) return;
      big.src = img.src;
      big.alt = img.alt;
      title.textContent = button.dataset.zoomTitle || img.alt;
      // Small maps are drawn at a whole multiple of their size, pixels kept square and sharp.
      const room = Math.min(window.innerWidth * 0.85, 1100), tall = window.innerHeight * 0.7;
      const scale = Math.max(1, Math.floor(Math.min(room / img.naturalWidth, tall / img.naturalHeight)));
      big.style.width = img.naturalWidth ? `${img.naturalWidth * scale}px` : "";
    });
    modal.addEventListener("hidden.bs.modal", () => { big.removeAttribute("src"); });
  }

  const select = document.getElementById("gradcam-layer");
  const figure = document.getElementById("gradcam");
  if (!select || !figure || !figure.dataset.url) return;
  const image = document.getElementById("gradcam-image");
  const status = document.getElementById("gradcam-status");
  let asked = 0;
  select.addEventListener("change", async () => {
    const mine = ++asked;
    const layer = select.value;
    status.textContent = `Computing Grad-CAM for layer ${layer}…`;
    figure.setAttribute("aria-busy", "true");
    try {
      const r = await fetch(`${figure.dataset.url}?layer=${encodeURIComponent(layer)}`, {
        headers: { Accept: "application/json" },
      });
      const js = await r.json().catch(() => ({}));
      if (mine !== asked) return; // a later choice wins
      if (!r.ok || !js.gradcam) {
        status.textContent = (js.error && js.error.message) || `Grad-CAM failed (${r.status})`;
        return;
      }
      image.src = js.gradcam;
      image.alt = `Grad-CAM heat map of where the network looked for ${js.target} (layer ${js.gradcam_layer})`;
      figure.dataset.layer = js.gradcam_layer;
      status.textContent = `Grad-CAM of layer ${js.gradcam_layer}.`;
    } catch (e) {
      if (mine === asked) status.textContent = "The server could not be reached; try again.";
    } finally {
      if (mine === asked) figure.removeAttribute("aria-busy");
    }
  });
})();
