// Charts people can click: in a [data-chart-links] container, a click on a bar or a heat-map cell opens the list
// behind it. The server puts the list's URL in each point's customdata (the last item when it is an array), built
// from the same definition as the figure (governance/dashboard/selectors.py queue_link / matrix_link).
(function () {
  function urlOf(point) {
    var data = point && point.customdata;
    var url = Array.isArray(data) ? data[data.length - 1] : data;
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : null;  // our own pages only
  }
  function link(el) {
    if (el.dataset.linked || typeof el.on !== "function" || !el.closest("[data-chart-links]")) return;
    el.dataset.linked = "1";
    el.on("plotly_click", function (event) {
      var url = urlOf(event.points && event.points[0]);
      if (url) window.location.assign(url);
    });
  }
  function scan(root) { root.querySelectorAll("[data-chart-links][data-drawn]").forEach(link); }
  // rampart.js marks each figure data-drawn once Plotly has it: link it then (also after htmx swaps)
  new MutationObserver(function (changes) {
    changes.forEach(function (c) { if (c.target.nodeType === 1 && c.target.hasAttribute("data-drawn")) link(c.target); });
  }).observe(document.documentElement, { subtree: true, attributes: true, attributeFilter: ["data-drawn"] });
  document.addEventListener("DOMContentLoaded", function () { scan(document); });
})();
