// A table of models that sorts by any column and refreshes its rows from the page itself, used by the sweep and
// comparison pages. Exposed as DIGITS.liveTable(table, rowsId, section): the column buttons (thead
// button[data-sort], data-type "number" or text) sort by each cell's data-value, empty cells (or non-numbers in a
// number column) last, ties in the rows' data-order; refreshSoon(ms) fetches the page again (one request at a time)
// and swaps in its rows when they changed, keeping the sort, then counts the refresh in section.dataset.refreshed.
"use strict";
(function () {
  window.DIGITS = window.DIGITS || {};

  DIGITS.liveTable = function (table, rowsId, section) {
    const sort = { column: null, descending: false, type: "text" };

    function sortRows() {
      const body = document.getElementById(rowsId);
      const key = (row) => {
        if (sort.column === null) return null;
        const raw = row.cells[sort.column] ? row.cells[sort.column].dataset.value : "";
        if (raw === "" || raw === undefined) return null;
        if (sort.type !== "number") return raw.toLowerCase();
        const n = parseFloat(raw);
        return isNaN(n) ? null : n;
      };
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const ka = key(a), kb = key(b);
        if (ka === null || kb === null || ka === kb) {
          if (ka !== kb) return ka === null ? 1 : -1;
          return Number(a.dataset.order) - Number(b.dataset.order);
        }
        const order = ka < kb ? -1 : 1;
        return sort.descending ? -order : order;
      });
      rows.forEach((row) => body.appendChild(row));
      table.querySelectorAll("thead th").forEach((th, i) => {
        th.setAttribute("aria-sort", i === sort.column ? (sort.descending ? "descending" : "ascending") : "none");
      });
    }

    table.querySelectorAll("thead button[data-sort]").forEach((button) => {
      button.addEventListener("click", () => {
        const column = Number(button.dataset.sort);
        sort.descending = sort.column === column ? !sort.descending : false;
        sort.column = column;
        sort.type = button.dataset.type;
        sortRows();
      });
    });

    let inFlight = null, again = false, timer = null;
    async function refreshTable() {
      const r = await fetch(window.location.href, {
        headers: { Accept: "text/html" }, credentials: "same-origin", cache: "no-store",
      });
      if (!r.ok) return;
      const doc = new DOMParser().parseFromString(await r.text(), "text/html");
      const fresh = doc.getElementById(rowsId);
      const current = document.getElementById(rowsId);
      if (fresh && current && !current.isEqualNode(fresh)) {
        current.replaceWith(document.importNode(fresh, true));
        sortRows();
      }
      section.dataset.refreshed = String(Number(section.dataset.refreshed || 0) + 1);
    }
    function refresh() {
      if (inFlight) { again = true; return; }
      inFlight = refreshTable().catch(() => {}).finally(() => {
        inFlight = null;
        if (again) { again = false; refresh(); }
      });
    }
    function refreshSoon(delayMs) {
      if (timer) return;
      timer = setTimeout(() => { timer = null; refresh(); }, delayMs);
    }
    return { sortRows, refresh, refreshSoon };
  };
})();
