// Draw every Plotly figure the server rendered into a data-figure attribute.
(function () {
  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      var fig = JSON.parse(el.getAttribute("data-figure"));
      window.Plotly.react(el, fig.data, fig.layout, { displayModeBar: false, responsive: true });
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
// data-confirm="question" on a button, data-autosubmit on a select, data-select-all="name" on a checkbox, data-print.
(function () {
  document.addEventListener("click", function (event) {
    var confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
    var printer = event.target.closest("[data-print]");
    if (printer) window.print();
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
