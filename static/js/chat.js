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
  // Every say frame carries a fresh key. Until its exchange (or an error) comes back it is
  // pending, and a socket that reconnects sends it again with the same key: the server
  // answers a resent frame with the stored turn instead of running it twice.
  var pending = null;
  function newKey() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  document.addEventListener("htmx:wsConfigSend", function (evt) {
    var form = evt.target.closest && evt.target.closest("#say-form");
    if (!form) { return; }
    evt.detail.parameters.key = newKey();
    pending = JSON.stringify(evt.detail.parameters);
  });
  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    var message = String(evt.detail.message || "");
    if (/class="exchange" id="turn-/.test(message) || /id="chat-error"[^>]*>[^<\s]/.test(message)) {
      pending = null;
    }
  });
  var reconnecting = false;
  document.addEventListener("htmx:wsOpen", function (evt) {
    setConnection("open", "Connected");
    if (reconnecting && pending && evt.detail.socketWrapper) { evt.detail.socketWrapper.send(pending); }
    reconnecting = false;
  });
  document.addEventListener("htmx:wsClose", function () { reconnecting = true; });
  document.addEventListener("htmx:wsClose", function () { setConnection("closed", "Reconnecting…"); });
  document.addEventListener("htmx:wsConnecting", function () { setConnection("connecting", "Connecting…"); });

  // The device panel: the room of the device spoken to stands out (and comes into view when the
  // choice changes); timers and alarms count down between the server's re-renders of the panel.
  function markRoom(scroll) {
    var select = document.getElementById("device");
    var option = select && select.selectedOptions[0];
    var room = option ? option.dataset.room : null;
    document.querySelectorAll("#device-panel .room").forEach(function (section) {
      var here = section.dataset.room === room;
      section.classList.toggle("spoken-to", here);
      if (here && scroll) { section.scrollIntoView({block: "nearest"}); }
    });
  }
  function tick() {
    document.querySelectorAll("#device-panel time.countdown").forEach(function (el) {
      var left = Math.max(0, Math.round((Date.parse(el.getAttribute("datetime")) - Date.now()) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      var two = function (n) { return (n < 10 ? "0" : "") + n; };
      el.textContent = h ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
    });
  }
  document.addEventListener("change", function (evt) {
    if (evt.target && evt.target.id === "device") { markRoom(true); }
  });
  document.addEventListener("htmx:wsAfterMessage", function () { markRoom(false); tick(); });

  document.addEventListener("DOMContentLoaded", function () {
    var list = messages();
    if (list) { list.scrollTop = list.scrollHeight; }
    markRoom(true);
    tick();
    setInterval(tick, 1000);
  });
})();
