// Small behaviours htmx does not cover: clear the box after sending, keep the
// newest words in view, Escape stops the reply, show the socket's state.
(function () {
  "use strict";

  function messages() { return document.getElementById("messages"); }

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }

  document.addEventListener("htmx:wsAfterSend", function (evt) {
    var form = evt.target.closest && evt.target.closest("#say-form");
    if (form) {
      form.elements.text.value = "";
      form.elements.text.focus();
    }
  });

  var stick = true;
  document.addEventListener("htmx:wsBeforeMessage", function () {
    var list = messages();
    stick = !list || nearBottom(list);
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    var hint = document.getElementById("empty-hint");
    var list = messages();
    if (hint && list && list.children.length) { hint.remove(); }
    // Follow the reply unless the person scrolled up to read older turns.
    if (list && stick) { list.scrollTop = list.scrollHeight; }
  });

  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") { return; }
    var stop = document.getElementById("stop");
    if (stop && !stop.hidden) { evt.preventDefault(); stop.click(); }
  });

  function setConnection(state, label) {
    var el = document.getElementById("connection");
    if (!el) { return; }
    el.dataset.state = state;
    el.textContent = label;
  }
  document.addEventListener("htmx:wsOpen", function () { setConnection("open", "Connected"); });
  document.addEventListener("htmx:wsClose", function () { setConnection("closed", "Reconnecting…"); });
  document.addEventListener("htmx:wsConnecting", function () { setConnection("connecting", "Connecting…"); });

  document.addEventListener("DOMContentLoaded", function () {
    var list = messages();
    if (list) { list.scrollTop = list.scrollHeight; }
  });
})();
