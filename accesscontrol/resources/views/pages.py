"""The pages every resource has, written once: a searchable list, a create/edit form, a delete
confirmation. Each takes what differs (the query, the service call, the words) from its view."""

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.urls import reverse

from accesscontrol import console
from accesscontrol.resources import services

PAGE_SIZE = 50


def search_term(request) -> str:
    # NUL cannot go into a PostgreSQL query; nobody searches for it.
    return request.GET.get("q", "").replace("\x00", "").strip()[:200]


def paginate(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def url_for(request, name, *args) -> str:
    """A page of the current workspace."""
    return reverse(name, args=[request.organization.slug, request.workspace.slug, *args])


def count_of(queryset, field):
    """How many rows of `queryset` point at each listed object, as a correlated subquery.

    Unlike Count() over a join, this leaves the paginator's COUNT alone and costs one index
    lookup per row shown, not an aggregate over every child of every object in the workspace.
    """
    counted = (
        queryset.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def counted(n, one, many) -> str:
    return one if n == 1 else many.format(n=n)


def list_page(request, name, rows, search=("name",), **context):
    """A page of `rows` searched by `?q=` in the `search` fields; only its rows for htmx
    (search as you type)."""
    query = search_term(request)
    if query:
        match = Q()
        for field in search:
            match |= Q(**{f"{field}__icontains": query})
        rows = rows.filter(match)
    template = f"resources/{name}.html#rows" if request.htmx else f"resources/{name}.html"
    return render(request, template, {"page": paginate(request, rows), "q": query, **context})


def form_page(request, form, save, *, title, submit_label, cancel_url, intro=""):
    """A create/edit form: a page of its own, or the dialog's body for htmx.

    On a valid POST, `save(cleaned_data)` calls the service and answers (message, next URL);
    a ValidationError it raises goes on the form's fields.
    """
    if request.method == "POST" and form.is_valid():
        try:
            message, url = save(form.cleaned_data)
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(request, message, url)
    return render(
        request,
        "resources/form.html#form" if request.htmx else "resources/form.html",
        {
            "form": form,
            "title": title,
            "intro": intro,
            "action": request.path,
            "cancel_url": cancel_url,
            "submit_label": submit_label,
        },
        status=422 if form.errors else 200,
    )


def delete_page(request, resource, *, done, next_url, cancel_url, **confirm):
    """GET: the confirmation (title, message, consequences, confirm_label); POST: delete."""
    if request.method == "GET":
        return console.confirm(request, action=request.path, cancel_url=cancel_url, **confirm)
    services.delete_resource(actor=request.actor, resource=resource)
    return console.done(request, done, next_url)
