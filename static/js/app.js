// The console's only script: dialogs, toasts, copy buttons, busy buttons and the permission
// grid helpers. Loaded from our own origin; the CSP allows no inline script.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function modal() { return document.getElementById("modal"); }

  // Toasts close themselves (errors stay longer) and have a close button; the box sits in a
  // corner clear of the rows' buttons (app.css). `link`: {href, text} for a next step.
  function closeToast(el) { if (el.parentNode) el.remove(); }

  function dismissible(el, level) {
    if (el.querySelector(".toast-close")) return;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    el.appendChild(close);
    setTimeout(function () { closeToast(el); }, level === "error" ? 12000 : 6000);
  }

  function toast(message, level, link) {
    var box = document.getElementById("toasts");
    if (!box || !message) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (level || "info");
    var text = document.createElement("span");
    text.textContent = message;
    el.appendChild(text);
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      el.appendChild(document.createTextNode(" "));
      el.appendChild(a);
    }
    box.appendChild(el);
    dismissible(el, level);
  }

  // The flashed messages of a full page load behave like the script's own toasts.
  document.querySelectorAll("#toasts .toast").forEach(function (el) {
    dismissible(el, el.classList.contains("toast-error") ? "error" : "info");
  });

  // A confirmation or form fetched into the dialog opens it. Focus goes to the element marked
  // autofocus (a confirmation's safe button), else to the form's first field.
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "modal-body") {
      var dialog = modal();
      if (!dialog.open) dialog.showModal();
      var first = dialog.querySelector("[autofocus]") ||
        dialog.querySelector("input:not([type=hidden]), select, textarea, button");
      if (first) first.focus();
    }
  });

  document.body.addEventListener("click", function (evt) {
    var dismiss = evt.target.closest(".toast-close");
    if (dismiss) {
      closeToast(dismiss.closest(".toast"));
      return;
    }
    var closer = evt.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog")) { // on a page of its own it is a plain link
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

  // Inline writes: a role picker in a table row (form.inline-form) posts on change and the
  // row comes back. `pending` is the picker whose change is in flight (or being confirmed
  // in the dialog). Its option marked `selected` in the HTML is the database's value: on any
  // failure the picker is put back to it and the toast says what happened and what stays.
  var pending = null;

  function inlinePicker(elt) {
    var form = elt && elt.closest && elt.closest("form.inline-form");
    return form ? form.querySelector("select") : null;
  }

  function storedOption(select) {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].defaultSelected) return select.options[i];
    }
    return select.options[0];
  }

  function revert(select) {
    var stored = storedOption(select);
    select.value = stored.value;
    select.disabled = false;
    return stored.textContent.trim();
  }

  function refocus(id) {
    var again = id && document.getElementById(id);
    if (again) again.focus();
  }

  function whatOf(select) {
    var label = select.labels && select.labels[0];
    return label ? label.textContent.trim() : "The value";
  }

  document.body.addEventListener("htmx:beforeRequest", function (evt) {
    var select = inlinePicker(evt.detail.elt);
    if (select) pending = { select: select, id: select.id };
    else if (pending && modal().contains(evt.detail.elt)) pending.confirmed = true;
  });

  // After a row is swapped in, keyboard focus returns to the same control in the new row.
  document.body.addEventListener("htmx:afterSettle", function () {
    if (pending && !modal().open) {
      refocus(pending.id);
      pending = null;
    }
  });

  // The dialog closed: an unconfirmed change (a promotion asked about) is put back.
  var dialogEl = modal();
  if (dialogEl) {
    dialogEl.addEventListener("close", function () {
      if (!pending || pending.confirmed) return; // confirmed: the row's swap refocuses
      if (document.body.contains(pending.select)) revert(pending.select);
      refocus(pending.id);
      pending = null;
    });
  }

  function failed(xhr) {
    var loginUrl = xhr && xhr.getResponseHeader("X-Login-Url");
    var needed = xhr && xhr.getResponseHeader("X-Required-Permission");
    var status = xhr ? xhr.status : 0;
    var kept = "";
    if (pending && document.body.contains(pending.select)) {
      kept = " " + whatOf(pending.select) + " stays " + revert(pending.select) + ".";
      refocus(pending.id);
    }
    pending = null;
    if (modal().open) modal().close();
    if (status === 401 || loginUrl) {
      var next = loginUrl ? loginUrl + "?next=" + encodeURIComponent(location.pathname + location.search) : location.href;
      toast("Your session has expired, so nothing was changed." + kept, "error",
        { href: next, text: "Sign in again" });
    } else if (status === 403 && needed) {
      toast("You don't have permission to do this (needs " + needed + "), so nothing was changed." + kept, "error");
    } else if (status === 403) {
      toast("You may no longer do this here, so nothing was changed." + kept, "error");
    } else if (status === 0) {
      toast("The server could not be reached, so nothing was changed." + kept + " Check your connection.", "error");
    } else {
      toast("That did not work (" + status + "), so nothing was changed." + kept + " Reload the page and try again.", "error");
    }
  }

  document.body.addEventListener("htmx:responseError", function (evt) { failed(evt.detail.xhr); });
  document.body.addEventListener("htmx:sendError", function () { failed(null); });

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
