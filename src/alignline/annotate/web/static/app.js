// alignline annotate: keyboard shortcuts on the annotate page and the dashboard's live refresh.
// Served as a file because the Content-Security-Policy forbids inline script; it never writes HTML,
// only textContent, so nothing the server sends can become markup here.
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || tag === "INPUT" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function annotate() {
    var form = document.getElementById("label-form");
    if (!form) return;
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (sent) { event.preventDefault(); return; }  // one label per press, however fast the keys repeat
      sent = true;
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        var submit = form.querySelector("button[type=submit]:not([formaction])");  // never the Skip button
        if (submit) { event.preventDefault(); if (form.reportValidity()) submit.click(); }
        return;
      }
      if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
      // no key at all: some browsers' autofill sends keydown events without one (a TypeError here before)
      var key = (event.key || "").toLowerCase();
      if (!key || key === "enter") return;
      // compared as strings, not built into a selector: a backslash escaped the selector's closing quote
      // (an invalid selector where the parser is strict, a wrong one where it recovers)
      var button = Array.prototype.find.call(form.querySelectorAll("button[data-key]"), function (b) {
        return b.getAttribute("data-key").toLowerCase() === key;
      });
      if (button) { event.preventDefault(); button.click(); }
    });
  }

  function show(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
    return String(value);
  }

  function dashboard() {
    var tiles = document.getElementById("agreement");
    if (!tiles) return;
    var source = tiles.getAttribute("data-source");
    var stamp = document.getElementById("refreshed");
    function refresh() {
      fetch(source, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          document.querySelectorAll("[data-metric]").forEach(function (el) {
            el.textContent = show(data[el.getAttribute("data-metric")]);
          });
          var bar = document.getElementById("progress");
          if (bar && typeof data.complete === "number") { bar.max = Math.max(data.items || 0, 1); bar.value = data.complete; }
          var rows = Array.isArray(data.annotators) ? data.annotators : null;
          var table = document.getElementById("annotators");
          if (table && rows) {
            var keys = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
              return th.getAttribute("data-col");
            });
            var body = document.createElement("tbody");
            rows.forEach(function (row) {
              var tr = document.createElement("tr");
              keys.forEach(function (k) { var td = document.createElement("td"); td.setAttribute("data-col", k); td.textContent = show(row[k]); tr.appendChild(td); });
              body.appendChild(tr);
            });
            if (keys.length) table.replaceChild(body, table.tBodies[0]);
          }
          if (stamp) stamp.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
        })
        .catch(function () { if (stamp) stamp.textContent = "Could not refresh; retrying."; });
    }
    refresh();  // at once (the page's numbers may be seconds old by the time it is read), then every 5 s
    setInterval(refresh, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () { annotate(); dashboard(); });
})();
