// The console's only script: dialogs, toasts, copy buttons, busy buttons and the permission
// grid helpers. Loaded from our own origin; the CSP allows no inline script.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function modal() { return document.getElementById("modal"); }

  function toast(message, level) {
    var box = document.getElementById("toasts");
    if (!box || !message) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (level || "info");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }

  // A confirmation or form fetched into the dialog opens it, focus on its first control.
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "modal-body") {
      var dialog = modal();
      if (!dialog.open) dialog.showModal();
      var first = dialog.querySelector("input:not([type=hidden]), select, textarea, button");
      if (first) first.focus();
    }
  });

  document.body.addEventListener("click", function (evt) {
    var closer = evt.target.closest("[data-close-dialog]");
    if (closer) {
      evt.preventDefault();
      modal().close();
      return;
    }
    var copy = evt.target.closest("[data-copy-target]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy-target"));
      var text = source.value || source.textContent;
      navigator.clipboard.writeText(text.trim()).then(function () {
        copy.textContent = "Copied";
        toast("Copied to the clipboard.", "success");
      }, function () {
        source.select && source.select();
        toast("Copy failed: select the text and copy it yourself.", "warning");
      });
      return;
    }
    var pick = evt.target.closest("[data-check]");
    if (pick) {
      evt.preventDefault();
      var selector = pick.getAttribute("data-check");
      var on = pick.getAttribute("data-state") !== "on";
      pick.closest("form").querySelectorAll(selector).forEach(function (box) { box.checked = on; });
      pick.setAttribute("data-state", on ? "on" : "off");
    }
  });

  // Server events: HX-Trigger {"toast": {"message": ..., "level": ...}} and "closeModal".
  document.body.addEventListener("toast", function (evt) { toast(evt.detail.message, evt.detail.level); });
  document.body.addEventListener("closeModal", function () { var d = modal(); if (d && d.open) d.close(); });

  document.body.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    var needed = xhr.getResponseHeader("X-Required-Permission");
    if (xhr.status === 403 && needed) {
      toast("You don't have permission to do this (needs " + needed + ").", "error");
    } else {
      toast("That did not work (" + xhr.status + "). Reload the page and try again.", "error");
    }
  });
  document.body.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached. Check your connection.", "error");
  });

  // A full-page form shows it is working and cannot be sent twice.
  document.body.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
    setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = true;
        b.setAttribute("aria-busy", "true");
      });
    }, 0);
  });
})();

// --- access requests ---
// A 403 toast offers "Request access": the gate sends the request form's URL (for the
// permission refused) in X-Request-Access-Url; the link is added to the toast just shown.
(function () {
  "use strict";
  document.body.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    var url = xhr.getResponseHeader("X-Request-Access-Url");
    var box = document.getElementById("toasts");
    if (xhr.status !== 403 || !url || !box || !box.lastElementChild) return;
    var link = document.createElement("a");
    link.className = "toast-action";
    link.href = url;
    link.textContent = "Request access";
    box.lastElementChild.appendChild(link);
  });
})();
