"""Responses every console page shares: confirmations, outcomes and form errors.

One view serves the full page and, for htmx, the fragment; destructive actions go through a
confirmation page that works without JavaScript and opens in a dialog with it.
"""

import json
import uuid
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render


def page_or_fragment(request, template, fragment):
    """The whole page, or for an htmx request only its `{% partialdef fragment %}`."""
    return f"{template}#{fragment}" if request.htmx else template


def saved(request, form, save):
    """On a valid POST, `save(cleaned_data)` calls the service and answers (message, next URL):
    flash it and go there. A ValidationError it raises goes on the form's fields; then, as on
    GET, the answer is None and the caller shows the form again."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        message, url = save(form.cleaned_data)
    except ValidationError as exc:
        add_errors(form, exc)
        return None
    return done(request, message, url)


def form_page(request, template, form, context=None, fragment="form"):
    """A page with a form (only its `fragment` for htmx); 422 while the form has errors."""
    return render(
        request,
        page_or_fragment(request, template, fragment) if fragment else template,
        {"form": form, **(context or {})},
        status=422 if form.errors else 200,
    )


def form_dialog(request, form, save, *, title, submit_label, cancel_url, intro="", page_title=""):
    """A create/edit form (form_dialog.html): a page of its own, or the dialog's body for htmx.
    `save` as for `saved`."""
    return saved(request, form, save) or form_page(
        request,
        "form_dialog.html",
        form,
        {
            "title": title,
            "page_title": page_title,
            "intro": intro,
            "action": request.path,
            "cancel_url": cancel_url,
            "submit_label": submit_label,
        },
    )


def confirm(
    request,
    *,
    title,
    message,
    action,
    cancel_url,
    confirm_label,
    consequences=(),
    cancel_label="Go back",
    danger=True,
    fields=None,
    hx_target=None,
):
    """Ask before acting. The safe button (`cancel_label`, e.g. "Keep key") comes first and
    has the focus; `confirm_label` names the action and its object ("Revoke key “ci”").
    `fields`: hidden inputs the confirmed POST carries; `hx_target`: the element its htmx
    answer replaces (else the answer is a redirect)."""
    return render(
        request,
        page_or_fragment(request, "confirm.html", "dialog"),
        {
            "title": title,
            "message": message,
            "action": action,
            "cancel_url": cancel_url,
            "confirm_label": confirm_label,
            "cancel_label": cancel_label,
            "consequences": consequences,
            "danger": danger,
            "fields": fields or {},
            "hx_target": hx_target,
        },
    )


def confirm_then(request, act, *, success, cancel_url, **confirmation):
    """A destructive action: GET asks (`confirm`), POST runs `act()` and reports (`attempt`)."""
    if request.method == "GET":
        return confirm(request, action=request.path, cancel_url=cancel_url, **confirmation)
    return attempt(request, act, success, cancel_url)


def attempt(request, act, success, url):
    """Run `act()` (one service call) and go to `url` with `success` (or `success(result)`);
    a refusal (ValidationError) is flashed as the error instead."""
    try:
        result = act()
    except ValidationError as exc:
        return done(request, errors_of(exc), url, messages.ERROR)
    return done(request, success(result) if callable(success) else success, url)


def done(request, message, url, level=messages.SUCCESS):
    """After a change: flash the outcome and go to `url` (HX-Redirect for htmx requests)."""
    messages.add_message(request, level, message)
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def row_changed(request, template, row, message, url, error=None):
    """After an inline change of one table row: for htmx the row again (422 and its error
    when refused) with a toast; without JavaScript, flash the outcome and go to `url`.
    `row()` gives the row's context; it is called only when the row is drawn."""
    if not request.htmx:
        return done(request, message, url, messages.ERROR if error else messages.SUCCESS)
    response = render(
        request, template, {**row(), "row_error": error}, status=422 if error else 200
    )
    # closeModal: the change may have been confirmed in the dialog (a promotion).
    response["HX-Trigger"] = toast_header(message, "error" if error else "success", closeModal=True)
    return response


def toast_header(message, level="success", **events) -> str:
    return json.dumps({"toast": {"message": message, "level": level}, **events})


def confirm_promotion(request, *, who, role_label, can_do, row_id, fields, cancel_url):
    """Before a promotion to an admin role (the inline role pickers): ask, saying what the
    person will be able to do. The confirmed POST carries `fields` and `confirmed=1`. For htmx
    the question opens in the dialog (the script puts the picker back if it is closed) and
    the confirmed answer swaps the row `row_id`; without JavaScript it is a page."""
    response = confirm(
        request,
        title=f"Make {who} {role_label}?",
        message=f"As {role_label}, {who} will be able to: {can_do}",
        consequences=["It takes effect on their next request, and is in the audit log."],
        action=request.path,
        cancel_url=cancel_url,
        confirm_label=f"Make {who} {role_label}",
        cancel_label="Keep the current role",
        danger=False,
        fields={**fields, "confirmed": "1"},
        hx_target=f"#{row_id}",
    )
    if request.htmx:
        response["HX-Retarget"] = "#modal-body"
        response["HX-Reswap"] = "innerHTML"
    return response


def errors_of(exc: ValidationError) -> str:
    """One sentence for people, whatever shape the ValidationError has."""
    if hasattr(exc, "error_dict"):
        return " ".join(m for errors in exc.message_dict.values() for m in errors)
    return " ".join(exc.messages)


def add_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form fields it names (else on the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def members_page(request, template, memberships, listing, **context):
    """A page of people (an organization's or a workspace's), sorted, searched and paged by
    `listing`; for htmx only its `{% partialdef member-rows %}`."""
    rows = listed(request, memberships, listing)
    return render(
        request,
        page_or_fragment(request, template, "member-rows"),
        {"list": rows, "page": rows.page, "q": rows.q, **context},
    )


def page_of(request, rows, per_page):
    """The `?page=` of `rows` (the first or last for a page out of range or not a number)."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def is_uuid(value) -> bool:
    """Ids in forms and URLs are checked before they reach a query (no 500 on garbage)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# Every list table: sort, search, status filter and paging through one helper.


@dataclass(frozen=True)
class Listing:
    """How one list table may be ordered, searched, filtered and paged.

    `sorts` maps a `?sort=` key to (label, order_by terms); `-key` reverses the terms.
    `statuses` maps a `?status=` value to (label, a function giving its Q). `prefix` names the
    parameters of a second list on the same page (`inv_` -> `?inv_sort=`, `?inv_q=`, `?inv_page=`).
    """

    sorts: dict
    default: str
    search: tuple = ()
    statuses: dict = field(default_factory=dict)
    per_page: int = 50
    prefix: str = ""


@dataclass
class Listed:
    page: object
    q: str
    sort: str
    status: str
    columns: dict
    statuses: list
    notices: list
    prefix: str
    sort_param: str
    search_param: str
    status_param: str
    previous_href: str = ""
    next_href: str = ""


def _reversed(term):
    if isinstance(term, str):
        return term[1:] if term.startswith("-") else f"-{term}"
    return term.copy().reverse_ordering()


def _query_href(request, **changes) -> str:
    query = request.GET.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return f"?{query.urlencode()}" if query else "?"


def listed(request, rows, listing: Listing) -> Listed:
    """`rows` searched (`?q=` in the listing's fields), filtered by `?status=`, ordered by
    `?sort=` (a key of the whitelist, `-` for descending) and paged. An unknown sort or status
    falls back to the default and says so on the page (`notices`), never silently."""
    p = listing.prefix
    notices = []
    query = request.GET.get(f"{p}q", "").replace("\x00", "").strip()[:200]
    if query and listing.search:
        match = Q()
        for name in listing.search:
            match |= Q(**{f"{name}__icontains": query})
        rows = rows.filter(match)
    status = request.GET.get(f"{p}status", "")
    if status and status not in listing.statuses:
        notices.append(f"There is no status “{status[:50]}”: showing all.")
        status = ""
    if status:
        rows = rows.filter(listing.statuses[status][1]())
    sort = request.GET.get(f"{p}sort", "") or listing.default
    if sort.removeprefix("-") not in listing.sorts:
        default_label = listing.sorts[listing.default.removeprefix("-")][0]
        notices.append(f"Cannot sort by “{sort[:50]}”: sorted by {default_label} instead.")
        sort = listing.default
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    terms = list(listing.sorts[key][1])
    if descending:
        terms = [_reversed(t) for t in terms]
    rows = rows.order_by(*terms, "pk")
    page = Paginator(rows, listing.per_page).get_page(request.GET.get(f"{p}page"))
    columns = {}
    for name, (label, _terms) in listing.sorts.items():
        current = name == key
        # A click on the sorted column reverses it; on another column sorts by it ascending.
        target = (name if descending else f"-{name}") if current else name
        columns[name] = {
            "label": label,
            "href": _query_href(request, **{f"{p}sort": target, f"{p}page": None}),
            "aria": ("descending" if descending else "ascending") if current else "",
        }
    statuses = (
        [
            {
                "value": value,
                "label": label,
                "current": value == status,
                "href": _query_href(request, **{f"{p}status": value or None, f"{p}page": None}),
            }
            for value, (label, _q) in [("", ("All", None)), *listing.statuses.items()]
        ]
        if listing.statuses
        else []
    )
    return Listed(
        page=page,
        q=query,
        sort=sort,
        status=status,
        columns=columns,
        statuses=statuses,
        notices=notices,
        prefix=p,
        sort_param=f"{p}sort",
        search_param=f"{p}q",
        status_param=f"{p}status",
        previous_href=_query_href(request, **{f"{p}page": str(page.number - 1)}),
        next_href=_query_href(request, **{f"{p}page": str(page.number + 1)}),
    )
