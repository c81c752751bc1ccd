// List tables and the user menu. Loaded from our own origin (the CSP allows no inline script).
// Sorting, search and paging are links and GET forms the server answers (console.listed), so
// they work without JavaScript; this file only adds keyboard comfort.
(function () {
  "use strict";

  // The user menu (<details>) closes on Escape and gives focus back to its button.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open], details.switcher[open]").forEach(function (menu) {
      menu.open = false;
      var summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) summary.focus();
      else if (summary && menu.classList.contains("user-menu")) summary.focus();
    });
  });

  // A status filter applies as soon as it is chosen.
  document.addEventListener("change", function (evt) {
    var select = evt.target;
    if (select.matches && select.matches(".list-tools select")) select.form.requestSubmit();
  });
})();
