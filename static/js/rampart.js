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
