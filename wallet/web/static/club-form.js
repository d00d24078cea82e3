/* The club form's live card preview and its program sections.
   As the brand types, the form (files included) is posted to the preview
   endpoint named in data-preview; a 200 answer is the card's HTML, a 422
   answer says what keeps the card from being drawn (the last card stays).
   Only the newest answer is shown. A section's fields hide while its box
   is unticked. Without this script the form works the same, with the
   preview drawn when the page is. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-preview]");
  if (!form) { return; }
  var card = document.getElementById("card-preview");
  var status = document.getElementById("preview-status");
  var timer = null;
  var latest = 0;

  function refresh() {
    var mine = ++latest;
    fetch(form.getAttribute("data-preview"), {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.text().then(function (html) { return { code: response.status, html: html }; });
    }).then(function (answer) {
      if (mine !== latest) { return; }
      if (answer.code === 200) {
        card.innerHTML = answer.html;
        status.innerHTML = "";
      } else if (answer.code === 422) {
        status.innerHTML = answer.html;
      }
    }).catch(function () { /* offline: the last card stays */ });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 350);
  }

  function showSection(box) {
    var body = box.closest("[data-section]").querySelector(".section-body");
    if (body) { body.hidden = !box.checked; }
  }

  form.querySelectorAll("[data-section-toggle]").forEach(function (box) {
    showSection(box);
    box.addEventListener("change", function () { showSection(box); });
  });
  /* Rows (levels, shops): the filled ones and one empty row show; a
     button brings in the next empty row. */
  function empty(row) {
    return Array.prototype.every.call(row.querySelectorAll("input"), function (input) { return !input.value; });
  }

  form.querySelectorAll("[data-rows]").forEach(function (list) {
    var rows = Array.prototype.slice.call(list.querySelectorAll(".row-set"));
    var shownEmpty = false;
    rows.forEach(function (row) {
      var invalid = row.querySelector("[aria-invalid]");
      if (empty(row) && !invalid) {
        row.hidden = shownEmpty;
        shownEmpty = true;
      }
    });
    var add = document.createElement("button");
    add.type = "button";
    add.className = "btn btn-secondary btn-small";
    add.textContent = list.getAttribute("data-add-label");
    add.addEventListener("click", function () {
      var next = rows.filter(function (row) { return row.hidden; })[0];
      if (next) {
        next.hidden = false;
        next.querySelector("input").focus();
      }
      add.hidden = !rows.some(function (row) { return row.hidden; });
    });
    add.hidden = !rows.some(function (row) { return row.hidden; });
    list.appendChild(add);
  });

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  if (form.hasAttribute("data-refresh")) { refresh(); }
}());
