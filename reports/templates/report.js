// Sortable tables, the per-query filters and the chart's view selector; no library, nothing loaded.
(function () {
  "use strict";
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    var n = raw === "" ? NaN : Number(raw);
    return isNaN(n) ? { text: raw.toLowerCase() } : { num: n };
  }
  function compare(a, b) {
    if (a.num !== undefined && b.num !== undefined) return a.num - b.num;
    if (a.num !== undefined) return -1;  // numbers before blanks and text
    if (b.num !== undefined) return 1;
    return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, column) {
      th.setAttribute("tabindex", "0");
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(key(r1.cells[column]), key(r2.cells[column]));
          return ascending ? c : -c;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  });
  // Per-query filters: a row stays when its text holds every word typed (case-insensitive).
  document.querySelectorAll("input.query-filter").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var count = document.querySelector('.filter-count[data-for="' + table.id + '"]');
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row, i) {
        var keep = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
        row.hidden = !keep;
        if (keep) shown += 1;
      });
      count.textContent = shown + " of " + rows.length;
    });
  });
  // Per-query model columns: a ticked model's column is shown.
  document.querySelectorAll("fieldset.model-picker").forEach(function (picker) {
    var table = document.getElementById(picker.getAttribute("data-table"));
    picker.querySelectorAll("input[data-col]").forEach(function (box) {
      box.addEventListener("change", function () {
        table.querySelectorAll('[data-col="' + box.getAttribute("data-col") + '"]').forEach(function (cell) {
          cell.classList.toggle("col-off", !box.checked);
        });
      });
    });
  });
  // Per-query order: by query id, or by a model's difference from the baseline (largest gains or losses first).
  document.querySelectorAll("select.pq-order").forEach(function (select) {
    var table = document.getElementById(select.getAttribute("data-table"));
    select.addEventListener("change", function () {
      var parts = select.value.split(":"), column = parts[1];
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function delta(row) {
        var cell = row.querySelector('td[data-col="' + column + '"]');
        var raw = cell ? cell.getAttribute("data-delta") : null;
        return raw === null ? NaN : Number(raw);
      }
      rows.sort(function (a, b) {
        if (!column) return Number(a.getAttribute("data-index")) - Number(b.getAttribute("data-index"));
        var x = delta(a), y = delta(b);
        if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
        return parts[0] === "gain" ? y - x : x - y;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      var box = column && document.querySelector('fieldset.model-picker[data-table="' + table.id + '"] input[data-col="' + column + '"]');
      if (box && !box.checked) { box.checked = true; box.dispatchEvent(new Event("change")); }
    });
  });
  var select = document.getElementById("quality-view");
  if (select) {
    select.addEventListener("change", function () {
      document.querySelectorAll("#chart-quality .chart-view").forEach(function (view) {
        view.hidden = view.getAttribute("data-view") !== select.value;
      });
    });
  }
})();
