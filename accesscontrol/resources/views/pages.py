"""The pages every resource has, written once: a searchable list, a create/edit form, a delete
confirmation. Each takes what differs (the query, the service call, the words) from its view."""

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from accesscontrol import console
from accesscontrol.resources import models, services
from accesscontrol.resources.forms import NamedForm

PAGE_SIZE = 50

# The console's word for each kind of resource, the URL names of its page and its list, and
# the title of its "new" form.
KINDS = {
    models.Project: ("project", "project", "projects", "New tracing project"),
    models.Dataset: ("dataset", "dataset", "datasets", "New dataset"),
    models.Prompt: ("prompt", "prompt", "prompts", "New prompt"),
    models.AnnotationQueue: (
        "queue",
        "annotation-queue",
        "annotation-queues",
        "New annotation queue",
    ),
}


def search_term(request) -> str:
    # NUL cannot go into a PostgreSQL query; nobody searches for it.
    return request.GET.get("q", "").replace("\x00", "").strip()[:200]


def paginate(request, queryset):
    return console.page_of(request, queryset, PAGE_SIZE)


def url_for(request, name, *args) -> str:
    """A page of the current workspace."""
    return reverse(name, args=[request.organization.slug, request.workspace.slug, *args])


def one(request, model, pk):
    """An object of the current workspace; any other id is a 404."""
    return get_object_or_404(model.objects.in_workspace(request.workspace), pk=pk)


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
    template = console.page_or_fragment(request, f"resources/{name}.html", "rows")
    return render(request, template, {"page": paginate(request, rows), "q": query, **context})


form_page = console.form_dialog  # the console's one create/edit form


def create_page(request, model, form_class, create, intro=""):
    """A form that creates a `model` in the workspace with `create` (its service)."""
    noun, page, listing, title = KINDS[model]

    def save(data):
        resource = create(actor=request.actor, workspace=request.workspace, **data)
        return f"{noun.capitalize()} {resource.name} created.", url_for(request, page, resource.pk)

    return form_page(
        request,
        form_class(request.POST or None),
        save,
        title=title,
        intro=intro,
        cancel_url=url_for(request, listing),
        submit_label=f"Create {noun}",
    )


def edit_page(request, resource, update, *, intro=""):
    """A form that renames or describes a resource with `update(**changes)` (a service)."""
    noun, page, _, _ = KINDS[type(resource)]
    resource_url = url_for(request, page, resource.pk)

    def save(data):
        update(**data)
        return f"{noun.capitalize()} {resource.name} saved.", resource_url

    initial = {"name": resource.name, "description": resource.description}
    return form_page(
        request,
        NamedForm(request.POST or None, initial=initial),
        save,
        title=f"Edit {resource.name}",
        intro=intro,
        cancel_url=resource_url,
        submit_label="Save",
    )


def delete_page(request, resource, *, message, consequences=(), **words):
    """GET: the confirmation; POST: delete (services.delete_resource) and go to the list.

    A project, dataset, prompt or queue has its words from KINDS; anything else (an example)
    passes title, confirm_label, cancel_url, done and next_url.
    """
    if type(resource) in KINDS:
        noun, page, listing, _ = KINDS[type(resource)]
        words = {
            "title": f"Delete the {noun} {resource.name}?",
            "confirm_label": f"Delete {noun}",
            "cancel_url": url_for(request, page, resource.pk),
            "done": f"{noun.capitalize()} {resource.name} was deleted.",
            "next_url": url_for(request, listing),
            **words,
        }
    done, next_url = words.pop("done"), words.pop("next_url")
    if request.method == "GET":
        return console.confirm(
            request, action=request.path, message=message, consequences=consequences, **words
        )
    services.delete_resource(actor=request.actor, resource=resource)
    return console.done(request, done, next_url)
