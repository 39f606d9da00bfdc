// Draw every Plotly figure the server rendered into a data-figure attribute.
(function () {
  // A viewBox of the size the chart was drawn at lets print.css scale the figure to its card's width in print
  // (Plotly draws at a fixed pixel size and would overflow a narrower printed card).
  function scalable(el) {
    el.querySelectorAll("svg.main-svg").forEach(function (svg) {
      svg.setAttribute("viewBox", "0 0 " + svg.getAttribute("width") + " " + svg.getAttribute("height"));
    });
  }
  // A figure may carry layout.meta.narrow = {data: [patch per trace], layout: {key: patch}}: what changes on a narrow
  // screen (governance/rmf/charts.py, governance/risks/charts.py: no colour bar, short labels). Redrawn when the
  // screen crosses the width.
  var NARROW = window.matchMedia("(max-width: 700px)");
  function merged(base, patch) {
    var plain = base && typeof base === "object" && !Array.isArray(base) && patch && typeof patch === "object" && !Array.isArray(patch);
    return plain ? Object.assign({}, base, patch) : patch;
  }
  function fitted(fig) {
    var narrow = fig.layout && fig.layout.meta && fig.layout.meta.narrow;
    if (!narrow || !NARROW.matches) return fig;
    (narrow.data || []).forEach(function (patch, i) {
      Object.keys(patch).forEach(function (k) { if (fig.data[i]) fig.data[i][k] = merged(fig.data[i][k], patch[k]); });
    });
    Object.keys(narrow.layout || {}).forEach(function (k) { fig.layout[k] = merged(fig.layout[k], narrow.layout[k]); });
    return fig;
  }
  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      var fig = fitted(JSON.parse(el.getAttribute("data-figure")));
      var first = !el.hasAttribute("data-drawn");
      window.Plotly.react(el, fig.data, fig.layout, { displayModeBar: false, responsive: true }).then(function () {
        scalable(el);
        if (first) el.on("plotly_afterplot", function () { scalable(el); });
      });
      el.setAttribute("data-drawn", "1");
    });
  }
  function load(then) {
    if (window.Plotly || !document.querySelector("[data-figure]")) return then();
    var s = document.createElement("script");
    s.src = document.body.dataset.plotly;
    s.onload = then;
    document.head.appendChild(s);
  }
  document.addEventListener("DOMContentLoaded", function () { load(function () { draw(document); }); });
  document.addEventListener("htmx:afterSettle", function () { load(function () { draw(document); }); });
  if (NARROW.addEventListener) NARROW.addEventListener("change", function () { load(function () { draw(document); }); });
})();

// Tabletop exercise clock: the server renders the clock in seconds; tick it locally while running.
(function () {
  var seen = new WeakMap();
  function fmt(s) { s = Math.max(0, Math.floor(s)); var m = Math.floor(s / 60); return "T+" + String(m).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0"); }
  setInterval(function () {
    document.querySelectorAll("[data-clock]").forEach(function (el) {
      if (!seen.has(el)) seen.set(el, Date.now());
      if (el.dataset.running !== "1") return;
      el.textContent = fmt(parseFloat(el.dataset.clock) + (Date.now() - seen.get(el)) / 1000);
    });
  }, 1000);
})();

// Behaviour the templates ask for with data attributes (the Content-Security-Policy allows no inline script):
// data-confirm="question" on a button, data-autosubmit on a select, data-select-all="name" on a checkbox, data-print,
// data-back on a link (history back when there is one, else the link).
(function () {
  document.addEventListener("click", function (event) {
    var confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
    var printer = event.target.closest("[data-print]");
    if (printer) window.print();
    var back = event.target.closest("[data-back]");
    if (back && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  }, true);
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
    if (el.matches("input[data-select-all]")) {
      var scope = el.closest("form") || document;
      scope.querySelectorAll("input[name='" + el.dataset.selectAll + "']").forEach(function (c) { c.checked = el.checked; });
    }
  });
})();

// data-reset-on-success on an htmx form: empty it once its request succeeded (instead of an inline hx-on handler).
document.addEventListener("htmx:afterRequest", function (event) {
  var form = event.target.closest && event.target.closest("form[data-reset-on-success]");
  if (form && event.detail.successful) form.reset();
});

// One way every htmx request shows what went wrong (htmx-config in base.html): a form the server refused (400, 409,
// 422) is swapped in place with its errors; any other failure (403, 404, 500, the server unreachable) is said in
// the alert at the top of the page: the page's [data-error-message] if it has one, else the status.
(function () {
  var SHOWN_IN_PLACE = [400, 409, 422];
  function say(text) {
    var box = document.getElementById("request-error");
    if (!box) return window.alert(text);
    box.textContent = text;
    box.hidden = false;
    box.focus();
  }
  function reason(xhr) {
    var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    var el = doc.querySelector("[data-error-message]");
    var text = el ? el.textContent.trim().replace(/\s+/g, " ") : "";
    return "The request failed (" + xhr.status + (xhr.statusText ? " " + xhr.statusText : "") + ")" + (text ? ": " + text : ".");
  }
  document.addEventListener("htmx:responseError", function (event) {
    if (SHOWN_IN_PLACE.indexOf(event.detail.xhr.status) >= 0) return;
    say(reason(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    say("Rampart could not be reached: check the connection and try again. Nothing was changed.");
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("request-error");
    if (box) box.hidden = true;
  });
})();
