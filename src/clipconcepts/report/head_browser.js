/* The report's head browser (clipconcepts.report.head_browser): sorts and filters the head index,
   and shows one head card at a time. A card's HTML waits in a <template> (inert: its images are
   not decoded) until the card is opened; its thumbnails come from the page's one JSON map
   (#head-thumbs, each image once), parsed on the first opening. No network, works from file://. */
(function () {
  "use strict";
  var table = document.getElementById("head-index");
  if (!table) { return; }
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  rows.forEach(function (row, i) { row.setAttribute("data-order", String(i)); });
  var thumbs = null;
  var current = null;

  function thumbMap() {
    if (thumbs === null) {
      var blob = document.getElementById("head-thumbs");
      thumbs = blob ? JSON.parse(blob.textContent) : {};
    }
    return thumbs;
  }

  /* ---- sorting: a header's button sorts by its column; again reverses. Empty cells last. */
  function sortValue(row, col, numeric) {
    var value = row.cells[col].getAttribute("data-sort");
    if (value === null || value === "") { return null; }
    return numeric ? Number(value) : value.toLowerCase();
  }

  function sortBy(th, col) {
    var numeric = th.getAttribute("data-type") === "number";
    var state = th.getAttribute("aria-sort");
    var first = th.getAttribute("data-first") || "ascending";
    var dir = state === first ? (first === "ascending" ? "descending" : "ascending") : first;
    var sign = dir === "ascending" ? 1 : -1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
      if (other.querySelector("button")) { other.setAttribute("aria-sort", "none"); }
    });
    th.setAttribute("aria-sort", dir);
    rows.sort(function (a, b) {
      var x = sortValue(a, col, numeric), y = sortValue(b, col, numeric);
      if (x === null || y === null) {
        if (x === y) { return Number(a.getAttribute("data-order")) - Number(b.getAttribute("data-order")); }
        return x === null ? 1 : -1;
      }
      if (x < y) { return -sign; }
      if (x > y) { return sign; }
      return Number(a.getAttribute("data-order")) - Number(b.getAttribute("data-order"));
    });
    rows.forEach(function (row) { tbody.appendChild(row); });
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    var button = th.querySelector("button");
    if (button) { button.addEventListener("click", function () { sortBy(th, col); }); }
  });

  /* ---- filtering: label substring, group, model and true family, all at once. */
  function control(id) { return document.getElementById(id); }
  var filters = ["head-filter-label", "head-filter-group", "head-filter-model", "head-filter-family"]
    .map(control).filter(function (el) { return el !== null; });
  var count = control("head-count");

  function applyFilters() {
    var text = (control("head-filter-label") || { value: "" }).value.trim().toLowerCase();
    var group = (control("head-filter-group") || { value: "" }).value;
    var model = (control("head-filter-model") || { value: "" }).value;
    var family = (control("head-filter-family") || { value: "" }).value;
    var shown = 0;
    rows.forEach(function (row) {
      var groups = (row.getAttribute("data-groups") || "").split(" ");
      var keep = (!text || (row.getAttribute("data-label") || "").indexOf(text) !== -1) &&
        (!group || groups.indexOf(group) !== -1) &&
        (!model || row.getAttribute("data-model") === model) &&
        (!family || row.getAttribute("data-family") === family);
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    if (count) { count.textContent = shown + " of " + rows.length + " heads"; }
  }
  filters.forEach(function (el) {
    el.addEventListener("input", applyFilters);
    el.addEventListener("change", applyFilters);
  });

  /* ---- cards: one shown at a time, rendered from its template on first opening. */
  function render(card) {
    var template = card.querySelector("template");
    if (!template) { return; }
    card.appendChild(template.content.cloneNode(true));
    card.removeChild(template);
    var map = null;
    Array.prototype.forEach.call(card.querySelectorAll("img[data-thumb]"), function (img) {
      map = map || thumbMap();
      var src = map[img.getAttribute("data-thumb")];
      if (src) { img.src = src; }
    });
    card.setAttribute("data-rendered", "true");
  }

  function show(id, scroll) {
    var card = document.getElementById(id);
    if (!card || !card.classList.contains("head-card")) { return false; }
    if (!card.hasAttribute("data-rendered")) { render(card); }
    if (current && current !== card) { current.hidden = true; }
    card.hidden = false;
    current = card;
    rows.forEach(function (row) {
      row.classList.toggle("current", row.getAttribute("data-anchor") === id);
    });
    if (scroll !== false) { card.scrollIntoView(); }
    return true;
  }

  function fromHash() {
    var id = location.hash ? decodeURIComponent(location.hash.slice(1)) : "";
    if (id) { show(id); }
  }
  window.addEventListener("hashchange", fromHash);
  /* a link to the card already named in the address changes no hash: show it all the same */
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.head-link") : null;
    if (!link) { return; }
    var href = link.getAttribute("href") || "";
    var id = decodeURIComponent(href.slice(href.indexOf("#") + 1));
    if (href.charAt(0) === "#" && location.hash && decodeURIComponent(location.hash.slice(1)) === id) {
      show(id);
    }
  });
  applyFilters();
  fromHash();
}());
