// Progressive enhancements only: every page works without this file.
"use strict";

// The hold countdown: "4:59", then a clear message when the hold lapses.
function startCountdowns() {
  document.querySelectorAll("[data-countdown]").forEach(function (el) {
    var end = Date.now() + Number(el.getAttribute("data-countdown")) * 1000;
    function tick() {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      if (left > 0) { window.setTimeout(tick, 1000); }
    }
    tick();
  });
}

// "Use my location": fills the place field with the browser's coordinates.
function enableNearMe() {
  var button = document.querySelector("[data-near-me]");
  var field = document.getElementById("id_near");
  if (!button || !field || !("geolocation" in navigator)) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(function (position) {
      field.value = position.coords.latitude.toFixed(4) + "," + position.coords.longitude.toFixed(4);
      field.form.submit();
    });
  });
}

// Move focus to the error summary so screen-reader and keyboard users hear it first.
function focusErrors() {
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
}

document.addEventListener("DOMContentLoaded", function () {
  startCountdowns();
  enableNearMe();
  focusErrors();
});
