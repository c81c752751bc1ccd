"""The pages every kind of resource has, written once: its searchable list, its "new", edit and
delete forms. Each kind is described once, at the end of this module, by a `Kind`: its words, its
services, its list's rows. `views_of` makes its four views, each declaring the permission it
needs, and resources/urls.py routes them; the pages only one kind has are in its own module."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accesscontrol import console
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.forms import NamedForm, NewDatasetForm, NewPromptForm, QueueForm
from accesscontrol.resources.models import (
    AnnotationQueue,
    Dataset,
    Example,
    Project,
    Prompt,
    PromptCommit,
    QueuedRun,
    Run,
)

PAGE_SIZE = 50


@dataclass(frozen=True)
class Kind:
    """A kind of resource: its words, its services, and what its list and delete page show.

    One pattern names its URLs: the list is `<plural>/`, named `<plural>` like the prefix of its
    permissions (`datasets:read`) and its list's template; one of them is
    `<plural>/<uuid:<noun>_id>/`, named `<name>`, with `<name>-create`, `-edit` and `-delete`.
    """

    model: type
    noun: str  # "dataset", in the pages' words
    name: str
    plural: str
    rows: Callable  # (workspace) -> the list's rows, ordered, with what the list counts
    new_title: str
    new_form: type
    create_service: Callable  # takes actor, workspace and the form's fields
    update_service: Callable | None  # takes actor, the resource as <noun>=, and changes
    children: str  # the related objects deleted with one
    deleted_with: tuple[str, str]  # that, for one and for {n} of them
    consequences: tuple[str, ...]
    search: tuple[str, ...] = ("name",)
    new_intro: str = ""
    edit_intro: str = ""

    @property
    def id_param(self) -> str:
        """The URL parameter that names one: `dataset_id`."""
        return f"{self.noun}_id"


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


def list_page(request, name, rows, search=("name",), **context):
    """A page of `rows` sorted, searched by `?q=` in the `search` fields and paged
    (console.listed); only its rows for htmx (search as you type)."""
    listing = console.Listing(
        sorts={"name": ("Name", ("name",)), "created": ("Created", ("created_at",))},
        default="-created",
        search=search,
        per_page=PAGE_SIZE,
    )
    rows = console.listed(request, rows, listing)
    template = console.page_or_fragment(request, f"resources/{name}.html", "rows")
    return render(request, template, {"list": rows, "page": rows.page, "q": rows.q, **context})


form_page = console.form_dialog  # the console's one create/edit form


def create_page(request, kind):
    def save(data):
        resource = kind.create_service(actor=request.actor, workspace=request.workspace, **data)
        return (
            f"{kind.noun.capitalize()} {resource.name} created.",
            url_for(request, kind.name, resource.pk),
        )

    return form_page(
        request,
        kind.new_form(request.POST or None),
        save,
        title=kind.new_title,
        intro=kind.new_intro,
        cancel_url=url_for(request, kind.plural),
        submit_label=f"Create {kind.noun}",
    )


def edit_page(request, kind, resource):
    """Rename or describe a resource with its kind's update service."""
    resource_url = url_for(request, kind.name, resource.pk)
    update = partial(kind.update_service, actor=request.actor, **{kind.noun: resource})

    def save(data):
        update(**data)
        return f"{kind.noun.capitalize()} {resource.name} saved.", resource_url

    initial = {"name": resource.name, "description": resource.description}
    return form_page(
        request,
        NamedForm(request.POST or None, initial=initial),
        save,
        title=f"Edit {resource.name}",
        intro=kind.edit_intro,
        cancel_url=resource_url,
        submit_label="Save",
    )


def delete_page(request, resource, *, title, message, consequences, done, next_url, **words):
    """GET: the confirmation; POST: delete (services.delete_resource) and go to `next_url`."""
    if request.method == "GET":
        return console.confirm(
            request,
            action=request.path,
            title=title,
            message=message,
            consequences=consequences,
            **words,
        )
    services.delete_resource(actor=request.actor, resource=resource)
    return console.done(request, done, next_url)


def delete_kind_page(request, kind, resource):
    """Delete a resource and what hangs off it, after saying how much that is."""
    count = getattr(resource, kind.children).count()
    one_child, many_children = kind.deleted_with
    return delete_page(
        request,
        resource,
        title=f"Delete the {kind.noun} {resource.name}?",
        message=one_child if count == 1 else many_children.format(n=count),
        consequences=kind.consequences,
        confirm_label=f"Delete {kind.noun}",
        cancel_url=url_for(request, kind.name, resource.pk),
        done=f"{kind.noun.capitalize()} {resource.name} was deleted.",
        next_url=url_for(request, kind.plural),
    )


def views_of(kind) -> dict:
    """The list, create, edit and delete views of a kind (edit: None without an update_service).
    Edit and delete find the resource by its `kind.id_param`."""

    @requires(f"{kind.plural}:read")
    @require_GET
    def listing(request, org_slug, workspace_slug):
        return list_page(request, kind.plural, kind.rows(request.workspace), kind.search)

    @requires(f"{kind.plural}:create")
    @require_http_methods(["GET", "POST"])
    def create(request, org_slug, workspace_slug):
        return create_page(request, kind)

    @requires(f"{kind.plural}:update")
    @require_http_methods(["GET", "POST"])
    def edit(request, org_slug, workspace_slug, **ids):
        return edit_page(request, kind, one(request, kind.model, ids[kind.id_param]))

    @requires(f"{kind.plural}:delete")
    @require_http_methods(["GET", "POST"])
    def delete(request, org_slug, workspace_slug, **ids):
        return delete_kind_page(request, kind, one(request, kind.model, ids[kind.id_param]))

    return {
        "listing": listing,
        "create": create,
        "edit": edit if kind.update_service else None,
        "delete": delete,
    }


# The four kinds

PROJECTS = Kind(
    Project,
    noun="project",
    name="project",
    plural="projects",
    rows=lambda workspace: (
        Project.objects.in_workspace(workspace)
        .annotate(
            run_count=count_of(Run.objects.all(), "project"),
            error_count=count_of(Run.objects.filter(error__isnull=False), "project"),
            last_run=Subquery(
                Run.objects.filter(project=OuterRef("pk"))
                .order_by("-start_time")
                .values("start_time")[:1]
            ),
        )
        .order_by("-start_time", "id")
    ),
    new_title="New tracing project",
    new_form=NamedForm,
    new_intro="Runs sent with this project name (LANGSMITH_PROJECT) land here.",
    create_service=services.create_project,
    update_service=services.update_project,
    edit_intro="SDK clients that send the old name will create a new project with it.",
    children="runs",
    deleted_with=("Its one run is deleted with it.", "Its {n} runs are deleted with it."),
    consequences=("Runs leave the annotation queues they are in.", "This cannot be undone."),
)


DATASETS = Kind(
    Dataset,
    noun="dataset",
    name="dataset",
    plural="datasets",
    rows=lambda workspace: (
        Dataset.objects.in_workspace(workspace)
        .annotate(example_count=count_of(Example.objects.all(), "dataset"))
        .order_by("-created_at", "id")
    ),
    new_title="New dataset",
    new_form=NewDatasetForm,
    create_service=services.create_dataset,
    update_service=services.update_dataset,
    children="examples",
    deleted_with=("Its one example is deleted with it.", "Its {n} examples are deleted with it."),
    consequences=("Experiments that used it lose their reference.", "This cannot be undone."),
)


def _prompt_rows(workspace):
    latest = PromptCommit.objects.filter(prompt=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        Prompt.objects.in_workspace(workspace)
        .annotate(
            commit_count=count_of(PromptCommit.objects.all(), "prompt"),
            latest_commit=Subquery(latest.values("id")[:1]),
        )
        .order_by("name", "id")
    )


PROMPTS = Kind(
    Prompt,
    noun="prompt",
    name="prompt",
    plural="prompts",
    rows=_prompt_rows,
    search=("name", "description"),
    new_title="New prompt",
    new_form=NewPromptForm,
    create_service=services.create_prompt,
    update_service=services.update_prompt,
    children="commits",
    deleted_with=("Its one version is deleted with it.", "All {n} versions are deleted with it."),
    consequences=("Code that pulls it by name will fail.", "This cannot be undone."),
)


QUEUES = Kind(
    AnnotationQueue,
    noun="queue",
    name="annotation-queue",
    plural="annotation-queues",
    rows=lambda workspace: (
        AnnotationQueue.objects.in_workspace(workspace)
        .annotate(run_count=count_of(QueuedRun.objects.all(), "queue"))
        .order_by("-created_at", "id")
    ),
    new_title="New annotation queue",
    new_form=QueueForm,
    new_intro="Add runs to it from their run pages.",
    create_service=services.create_annotation_queue,
    update_service=None,  # its own edit page (views/queues.py), for the rubric too
    children="items",
    deleted_with=(
        "Its one queued run leaves it; the run and its feedback stay.",
        "Its {n} queued runs leave it; the runs and their feedback stay.",
    ),
    consequences=("This cannot be undone.",),
)
