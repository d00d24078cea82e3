// The portal's few scripts. Every page works without them: they add the
// camera at the till and live progress to an import.
"use strict";

// A member import's progress: its figures are fetched again each second
// until it is done; then the page reloads once to list the refused rows.
(function importProgress() {
  const panel = document.querySelector("[data-poll]");
  if (!panel) return;
  const current = () => panel.querySelector("#import-progress");
  if (current().dataset.done === "true") return;
  const poll = async () => {
    try {
      const answer = await fetch(panel.dataset.poll, { headers: { Accept: "text/html" }, cache: "no-store" });
      if (answer.ok) {
        current().outerHTML = await answer.text();
        if (current().dataset.done === "true") {
          window.location.reload();
          return;
        }
      }
    } catch (_error) {
      // A network blip: the next poll tries again.
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 1000);
})();

// A booking form sends once: the button is disabled after the first tap.
// (The server books once anyway: the form carries a key of its own.)
document.querySelectorAll("form[data-once]").forEach((form) => {
  form.addEventListener("submit", () => {
    form.querySelectorAll("button[type=submit]").forEach((button) => { button.disabled = true; });
  });
});

// The till's camera: where the browser has BarcodeDetector, a button opens
// the camera and the first card number seen is looked up. The typed field
// is always there.
(function tillCamera() {
  const scan = document.querySelector("[data-scan]");
  if (!scan || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  const form = scan.closest("form");
  const box = form.querySelector("[data-camera]");
  const video = box.querySelector("video");
  const input = form.querySelector("input[name=card]");
  let stream = null;
  const stop = () => {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    box.hidden = true;
  };
  scan.hidden = false;
  scan.addEventListener("click", async () => {
    try {
      const detector = new window.BarcodeDetector();
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      box.hidden = false;
      await video.play();
      const look = async () => {
        if (!stream) return;
        const found = await detector.detect(video).catch(() => []);
        const number = found.map((code) => code.rawValue.replace(/\D/g, "")).find((text) => text.length > 0);
        if (number) {
          stop();
          input.value = number;
          form.submit();
          return;
        }
        window.setTimeout(look, 250);
      };
      look();
    } catch (_error) {
      stop();
      input.focus();  // no camera, or it was refused: the number is typed
    }
  });
  box.querySelector("[data-scan-stop]").addEventListener("click", stop);
})();
