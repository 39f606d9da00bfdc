// The findings queue's selection: rows ticked by hand, or "every finding matching this filter" (the server reads
// that set again from the filter and checks the count confirmed here). The selection lives in the checkboxes and the
// bulk bar's hidden scope/confirmed fields: htmx swaps of the bar (errors) leave the rows alone; after a swap of the
// rows (load more, new filters) ticked findings still listed stay ticked.
(function () {
  var remembered = new Set();

  function parts(form) {
    return {
      boxes: Array.prototype.slice.call(form.querySelectorAll("input[name=ids]")),
      all: form.querySelector("input[data-select-all]"),
      scope: form.querySelector("[data-bulk-scope]"),
      confirmed: form.querySelector("[data-bulk-confirmed]"),
      apply: form.querySelector("[data-bulk-apply]"),
      action: form.querySelector("select[name=action]"),
      count: form.querySelector("[data-selected-count]"),
      offer: form.querySelector("[data-select-matching]"),
      note: form.querySelector("[data-matching-note]"),
      total: parseInt((form.querySelector("[data-total]") || {dataset: {}}).dataset.total, 10) || 0
    };
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function update(form) {
    var p = parts(form);
    if (!p.scope) return;  // a person who may not triage: no bulk bar
    var matching = p.scope.value === "filter";
    if (matching) p.boxes.forEach(function (c) { c.checked = true; });
    var ticked = p.boxes.filter(function (c) { return c.checked; });
    remembered = new Set(ticked.map(function (c) { return c.value; }));
    if (p.all) {
      p.all.checked = p.boxes.length > 0 && ticked.length === p.boxes.length;
      p.all.indeterminate = ticked.length > 0 && ticked.length < p.boxes.length;
    }
    var everyRow = p.boxes.length > 0 && ticked.length === p.boxes.length;
    if (p.offer) {
      p.offer.hidden = matching || !everyRow || p.total <= p.boxes.length;
      var pageNote = p.offer.querySelector("[data-page-note]");
      if (pageNote) pageNote.textContent = "All " + plural(ticked.length, "finding") + " listed are selected.";
    }
    if (p.note) p.note.hidden = !matching;
    p.confirmed.value = matching ? String(p.total) : "";
    p.count.textContent = matching ? "All " + p.total + " matching" : ticked.length + " selected";
    var label = p.action ? p.action.options[p.action.selectedIndex].text : "";
    if (matching) {
      p.apply.textContent = "Apply to " + plural(p.total, "finding");
      p.apply.dataset.confirm = "Apply “" + label + "” to all " + plural(p.total, "finding") + " matching this filter?";
    } else {
      p.apply.textContent = "Apply to selected";
      delete p.apply.dataset.confirm;
    }
  }

  function setScope(form, scope) {
    var p = parts(form);
    if (p.scope) p.scope.value = scope;
  }

  function bulkForm(el) { return el && el.closest ? el.closest("form[data-bulk]") : null; }

  document.addEventListener("change", function (event) {
    var form = bulkForm(event.target);
    if (!form) return;
    var el = event.target;
    if ((el.name === "ids" || el.matches("[data-select-all]")) && !el.checked) setScope(form, "ids");
    update(form);
  });

  document.addEventListener("click", function (event) {
    var on = event.target.closest("[data-select-matching-on]");
    var off = event.target.closest("[data-select-matching-off]");
    var form = bulkForm(on || off);
    if (!form) return;
    event.preventDefault();
    if (on) {
      setScope(form, "filter");
    } else {
      setScope(form, "ids");
      parts(form).boxes.forEach(function (c) { c.checked = false; });
    }
    update(form);
  });

  // Only the bulk bar's fields travel in "every matching" mode: no ids, the server reads the filter again.
  document.addEventListener("htmx:configRequest", function (event) {
    var form = bulkForm(event.detail.elt);
    if (form && event.detail.verb === "post" && parts(form).scope.value === "filter") {
      event.detail.parameters.delete("ids");
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("form[data-bulk]").forEach(function (form) {
      parts(form).boxes.forEach(function (c) { if (remembered.has(c.value)) c.checked = true; });
      update(form);
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-bulk]").forEach(update);
  });
})();
