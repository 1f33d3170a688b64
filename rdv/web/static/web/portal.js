// Clinic portal, progressive enhancement only: the pages work without this file.
"use strict";

// Live regions: every 20 s, fetch the page a [data-live] element names (its value; this
// page when empty) and replace the element's content with the fresh copy, unless the
// person is working inside it (an element in it has focus), the tab is hidden, or the
// fetch fails. Never a full reload: forms outside the region keep what was typed.
(function () {
  var PERIOD_MS = 20000;

  function refresh(region) {
    if (document.hidden || region.contains(document.activeElement)) { return; }
    var url = region.getAttribute("data-live") || window.location.href;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Live-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        if (fresh && !region.contains(document.activeElement)) {
          region.innerHTML = fresh.innerHTML;
        }
      })
      .catch(function () { /* offline or signed out: keep what is shown */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(function (region) {
      window.setInterval(function () { refresh(region); }, PERIOD_MS);
    });
  });
})();
