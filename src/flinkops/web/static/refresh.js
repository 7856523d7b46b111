// flinkops fleet page: refresh the overview table in place every data-refresh-ms (no library; the page works
// without this script, which only spares a reload). Stops while the tab is hidden.
(function () {
  "use strict";
  var table = document.getElementById("fleet");
  if (!table) { return; }
  var every = parseInt(table.getAttribute("data-refresh-ms"), 10) || 5000;
  function refresh() {
    if (document.hidden) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var main = fresh.getElementById("main");
        if (main) { document.getElementById("main").replaceWith(main); }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, every);
})();
