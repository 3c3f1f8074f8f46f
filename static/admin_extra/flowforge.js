/* Flowforge admin behaviour: copy buttons, absolute webhook URLs, Tab in the editor, and live run pages. */
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  function absoluteUrls() {
    document.querySelectorAll(".ff-absolute-url[data-path]").forEach(function (el) {
      el.textContent = window.location.origin + el.getAttribute("data-path");
    });
  }

  function copyButtons() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest(".ff-copy");
      if (!button) return;
      var source = document.getElementById(button.getAttribute("data-copy-target"));
      if (!source) return;
      var text = source.textContent.trim();
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
      } else { fallbackCopy(text); done(); }
    });
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text; area.style.position = "fixed"; area.style.opacity = "0";
    document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  function tabInEditor() {
    document.querySelectorAll("textarea.ff-code").forEach(function (area) {
      area.addEventListener("keydown", function (event) {
        if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.metaKey) return;
        event.preventDefault();
        var start = area.selectionStart, end = area.selectionEnd;
        area.value = area.value.slice(0, start) + "  " + area.value.slice(end);
        area.selectionStart = area.selectionEnd = start + 2;
      });
    });
  }

  /* The "Run N queued" message reads the run's live status instead of outliving it. */
  var BANNER_LEVEL = { succeeded: "success", failed: "error", cancelled: "warning" };
  function runBanner(box, status) {
    var banner = document.querySelector(".messagelist .ff-run-banner.ff-run-" + box.getAttribute("data-run-id"));
    if (!banner || !status) return;
    banner.textContent = "Run " + box.getAttribute("data-run-id") + " " + status + ".";
    banner.classList.remove("success", "error", "warning", "info");
    banner.classList.add(BANNER_LEVEL[status] || "info");
  }

  /* The run page asks for its own body once a second until the run is final, keeping open <details> open. */
  function liveRun() {
    var box = document.getElementById("ff-run-live");
    if (!box) return;
    var shown = document.getElementById("ff-run-status");
    runBanner(box, shown && shown.textContent.trim());
    if (box.getAttribute("data-final") === "1") return;
    var url = box.getAttribute("data-live-url");
    var timer = null, failures = 0;

    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          var open = Array.prototype.map.call(box.querySelectorAll("details[open]"), function (d) {
            return d.getAttribute("data-key") || d.querySelector("summary").textContent;
          });
          box.innerHTML = data.html;
          runBanner(box, data.status);
          box.querySelectorAll("details").forEach(function (d) {
            var key = d.getAttribute("data-key") || d.querySelector("summary").textContent;
            if (open.indexOf(key) !== -1) d.open = true;
          });
          if (data.final) {
            box.setAttribute("data-final", "1");
            var cancel = document.getElementById("ff-cancel-form");
            if (cancel) cancel.remove();
            return;
          }
          timer = setTimeout(tick, 1000);
        })
        .catch(function () {
          failures += 1;
          timer = setTimeout(tick, Math.min(1000 * Math.pow(2, failures), 15000));
        });
    }
    timer = setTimeout(tick, 1000);
    window.addEventListener("beforeunload", function () { if (timer) clearTimeout(timer); });
  }

  onReady(function () {
    absoluteUrls();
    copyButtons();
    tabInEditor();
    liveRun();
  });
})();
