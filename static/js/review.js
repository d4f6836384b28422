// Keyboard for the review pages (they work without it): j / k move through the rows of a list and
// focus the row's link (Enter opens it), / jumps to the search box, l to the label form.
(function () {
  "use strict";
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-review-list] tbody tr"))
      .filter(function (row) { return row.querySelector("a"); });
  }
  var current = -1;
  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === current); });
    all[current].querySelector("a").focus();
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var field;
    if (event.key === "j") { select(current + 1); event.preventDefault(); }
    else if (event.key === "k") { select(current - 1); event.preventDefault(); }
    else if (event.key === "/" && (field = document.getElementById("q"))) { field.focus(); event.preventDefault(); }
    else if (event.key === "l" && (field = document.querySelector(".label-form input:not([type=hidden]), .label-form select"))) {
      field.focus(); event.preventDefault();
    }
  });
})();
