// The results site reads without this script. With it: the runs list gains filters and
// sortable columns over every run (runs.js), and a table's LaTeX gains a copy button.
"use strict";

(function () {
  function text(tag, content, attrs) {
    var el = document.createElement(tag);
    if (content !== undefined && content !== null) el.textContent = String(content);
    for (var k in attrs || {}) el.setAttribute(k, attrs[k]);
    return el;
  }

  function copyButtons() {
    document.querySelectorAll("button.copy").forEach(function (button) {
      var target = document.getElementById(button.dataset.copy);
      if (!target || !navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(target.textContent).then(function () {
          button.textContent = "Copied";
        });
      });
    });
  }

  // At most this many rows are drawn at once; the count says when more match.
  var SHOWN = 1000;

  function sortValue(run, key) {
    switch (key) {
      case "members": return run.members.map(function (m) { return m.manifest + " " + m.labels; }).join(" ");
      case "top1": return run.top1 === null ? -Infinity : parseFloat(run.top1);
      case "wall": return run.wall_s === null ? -Infinity : run.wall_s;
      case "seed": return run.seed;
      default: return run[key] === null ? "" : String(run[key]);
    }
  }

  function runRow(run) {
    var tr = document.createElement("tr");
    var id = text("td");
    var link = text("a", null, { href: run.href });
    link.appendChild(text("code", run.id));
    id.appendChild(link);
    tr.appendChild(id);
    var members = text("td");
    run.members.forEach(function (m, i) {
      if (i > 0) members.appendChild(document.createElement("br"));
      members.appendChild(m.href ? text("a", m.manifest, { href: m.href }) : document.createTextNode(m.manifest));
      members.appendChild(document.createTextNode(" · " + m.profile + " · " + m.labels));
    });
    tr.appendChild(members);
    tr.appendChild(text("td", run.stage));
    tr.appendChild(text("td", run.seed));
    var status = text("td");
    var badge = text("span", run.status, { "class": "badge st-" + run.status });
    if (run.error) badge.title = run.error;
    status.appendChild(badge);
    tr.appendChild(status);
    tr.appendChild(text("td", run.top1 || ""));
    tr.appendChild(text("td", run.wall || ""));
    tr.appendChild(text("td", run.started || ""));
    return tr;
  }

  function runsTable() {
    var table = document.getElementById("runs");
    var form = document.getElementById("runs-filter");
    if (!table || !form || !window.REPRO_RUNS) return;
    var runs = window.REPRO_RUNS;
    var count = document.getElementById("runs-count");
    var pager = document.querySelector("nav.pager");
    var sort = { key: null, dir: 1 };
    form.hidden = false;

    function draw() {
      var want = {};
      new FormData(form).forEach(function (v, k) { want[k] = v; });
      var shown = runs.filter(function (r) {
        return (!want.status || r.status === want.status) &&
          (!want.manifest && !want.profile || r.members.some(function (m) {
            return (!want.manifest || m.manifest === want.manifest) && (!want.profile || m.profile === want.profile);
          }));
      });
      if (sort.key) {
        shown.sort(function (a, b) {
          var x = sortValue(a, sort.key), y = sortValue(b, sort.key);
          return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
        });
      }
      var body = document.createElement("tbody");
      shown.slice(0, SHOWN).forEach(function (r) { body.appendChild(runRow(r)); });
      table.replaceChild(body, table.tBodies[0]);
      count.textContent = shown.length + " of " + runs.length + " runs" +
        (shown.length > SHOWN ? "; showing the first " + SHOWN + ", narrow the filters to see the rest" : "") + ".";
      if (pager) pager.hidden = true;
    }

    form.addEventListener("change", draw);
    table.querySelectorAll("th[data-key]").forEach(function (th) {
      th.tabIndex = 0;
      function activate() {
        var key = th.dataset.key;
        sort.dir = sort.key === key ? -sort.dir : 1;
        sort.key = key;
        table.querySelectorAll("th[data-key]").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
        draw();
      }
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); activate(); } });
    });
  }

  window.addEventListener("DOMContentLoaded", function () {
    copyButtons();
    runsTable();
  });
})();
