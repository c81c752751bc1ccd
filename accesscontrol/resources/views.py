"""Console pages for a workspace's resources, under /o/<org>/w/<workspace>/.

Each view declares the one permission it needs; every object is looked up inside the current
workspace, so another workspace's id is a 404. Reads and writes have separate URLs, writes go
through the services, and a destructive action is a confirmation page (a dialog with htmx).
"""

import json
from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import console, storable
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.models import (
    AnnotationQueue,
    Dataset,
    Example,
    Feedback,
    Project,
    Prompt,
    PromptCommit,
    QueuedRun,
    Run,
)

PAGE_SIZE = 50
TRACE_LIMIT = 1000  # runs of one trace drawn on a run page
PREVIEW_CHARS = 240
JSON_MAX_CHARS = 1_000_000
RUN_LIST_FIELDS = (
    "id",
    "project_id",
    "trace_id",
    "parent_run_id",
    "name",
    "run_type",
    "error",
    "start_time",
    "end_time",
    "tags",
)
RUN_PAYLOAD_FIELDS = ("inputs", "outputs", "extra", "events")  # large: left out of lists


# Shared helpers


def _search_term(request) -> str:
    # NUL cannot go into a PostgreSQL query; nobody searches for it.
    return request.GET.get("q", "").replace("\x00", "").strip()[:200]


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _url(request, name, *args):
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


def _counted(n, one, many) -> str:
    return one if n == 1 else many.format(n=n)


def _template(request, name, partial):
    """The whole page, or only its `partial` for an htmx request (search as you type)."""
    return f"resources/{name}.html#{partial}" if request.htmx else f"resources/{name}.html"


def _form_page(request, form, *, title, action, cancel_url, submit_label, intro=""):
    """A create/edit form: a page of its own, or the dialog's body for htmx."""
    template = "resources/form.html#form" if request.htmx else "resources/form.html"
    return render(
        request,
        template,
        {
            "form": form,
            "title": title,
            "intro": intro,
            "action": action,
            "cancel_url": cancel_url,
            "submit_label": submit_label,
        },
        status=422 if form.errors else 200,
    )


def _clipped(value, depth=storable.MAX_JSON_DEPTH):
    """The value with anything nested deeper than `depth` replaced by "…".

    Input is refused beyond that depth, but rows stored before the limit may hold more, and
    json.dumps of a thousand-deep value raises RecursionError: a page must still render.
    """
    if not isinstance(value, dict | list):
        return value
    if depth <= 0:
        return "…"
    if isinstance(value, dict):
        return {k: _clipped(v, depth - 1) for k, v in value.items()}
    return [_clipped(v, depth - 1) for v in value]


def pretty_json(value) -> str:
    """JSON for people: indented, non-ASCII kept; the template escapes it."""
    if value is None:
        return ""
    return json.dumps(_clipped(value), indent=2, ensure_ascii=False, sort_keys=False, default=str)


def json_preview(value) -> str:
    if value is None:
        return ""
    text = json.dumps(_clipped(value), ensure_ascii=False, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def latency(run) -> timedelta | None:
    if run.end_time is None or run.start_time is None:
        return None
    return run.end_time - run.start_time


def latency_label(run) -> str:
    elapsed = latency(run)
    if elapsed is None:
        return ""
    seconds = elapsed.total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _with_latency(runs):
    for run in runs:
        run.latency_label = latency_label(run)
    return runs


# Form fields


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON (use null or a number)")


def _unstorable(value) -> str | None:
    """Why a parsed JSON value cannot be stored (PostgreSQL's jsonb refuses NUL), if it can't."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "Text in JSON cannot contain the NUL character (\\u0000)."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "Text in JSON contains an unpaired surrogate (\\ud800 to \\udfff)."
    return None


class JSONObjectField(forms.CharField):
    """A textarea that must hold a JSON object; the cleaned value is the dict."""

    widget = forms.Textarea(attrs={"rows": 6, "class": "code-input", "spellcheck": "false"})

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", JSON_MAX_CHARS)
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            parsed = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ValidationError("This JSON is nested too deeply.", code="json") from None
        except ValueError as exc:
            raise ValidationError(f"This is not valid JSON: {exc}", code="json") from None
        if storable.json_too_deep(parsed):
            raise ValidationError(
                f"JSON may nest arrays and objects at most {storable.MAX_JSON_DEPTH} deep.",
                code="json",
            )
        if not isinstance(parsed, dict):
            raise ValidationError(
                'Enter a JSON object, e.g. {"question": "…"}.', code="json_object"
            )
        problem = _unstorable(parsed)
        if problem:
            raise ValidationError(problem, code="json")
        return parsed

    def prepare_value(self, value):
        if isinstance(value, dict):
            return pretty_json(value)
        return value


def _name_field(label="Name"):
    return forms.CharField(label=label, max_length=255)


def _description_field():
    return forms.CharField(
        label="Description",
        required=False,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


# Tracing projects


class ProjectForm(forms.Form):
    name = _name_field()
    description = _description_field()


@requires("projects:read")
@require_GET
def projects(request, org_slug, workspace_slug):
    query = _search_term(request)
    rows = (
        Project.objects.in_workspace(request.workspace)
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
    )
    if query:
        rows = rows.filter(name__icontains=query)
    return render(
        request,
        _template(request, "projects", "rows"),
        {"page": _page(request, rows), "q": query},
    )


@requires("projects:create")
@require_http_methods(["GET", "POST"])
def project_create(request, org_slug, workspace_slug):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.create_project(
                workspace=request.workspace,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request, f"Project {project.name} created.", _url(request, "project", project.pk)
            )
    return _form_page(
        request,
        form,
        title="New tracing project",
        intro="Runs sent with this project name (LANGSMITH_PROJECT) land here.",
        action=request.path,
        cancel_url=_url(request, "projects"),
        submit_label="Create project",
    )


def _project(request, project_id):
    return get_object_or_404(Project.objects.in_workspace(request.workspace), pk=project_id)


@requires("projects:read", "runs:read")
@require_GET
def project_detail(request, org_slug, workspace_slug, project_id):
    project = _project(request, project_id)
    query = _search_term(request)
    runs = (
        Run.objects.in_workspace(request.workspace)
        .filter(project=project, parent_run_id__isnull=True)
        .only(*RUN_LIST_FIELDS)
        .order_by("-start_time", "id")
    )
    if query:
        runs = runs.filter(name__icontains=query)
    page = _page(request, runs)
    _with_latency(page.object_list)
    return render(
        request,
        _template(request, "project", "rows"),
        {"project": project, "page": page, "q": query},
    )


@requires("projects:update")
@require_http_methods(["GET", "POST"])
def project_edit(request, org_slug, workspace_slug, project_id):
    project = _project(request, project_id)
    initial = {"name": project.name, "description": project.description}
    form = ProjectForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_project(
                project=project,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request, f"Project {project.name} saved.", _url(request, "project", project.pk)
            )
    return _form_page(
        request,
        form,
        title=f"Edit {project.name}",
        intro="SDK clients that send the old name will create a new project with it.",
        action=request.path,
        cancel_url=_url(request, "project", project.pk),
        submit_label="Save",
    )


@requires("projects:delete")
@require_http_methods(["GET", "POST"])
def project_delete(request, org_slug, workspace_slug, project_id):
    project = _project(request, project_id)
    if request.method == "GET":
        count = Run.objects.in_workspace(request.workspace).filter(project=project).count()
        return console.confirm(
            request,
            title=f"Delete the project {project.name}?",
            message=_counted(
                count, "Its one run is deleted with it.", "Its {n} runs are deleted with it."
            ),
            consequences=[
                "Runs leave the annotation queues they are in.",
                "This cannot be undone.",
            ],
            action=request.path,
            cancel_url=_url(request, "project", project.pk),
            confirm_label="Delete project",
        )
    services.delete_resource(project)
    return console.done(request, f"Project {project.name} was deleted.", _url(request, "projects"))


# Runs


class FeedbackForm(forms.Form):
    key = forms.CharField(
        label="Key", max_length=255, help_text="What is judged, e.g. “correctness”."
    )
    score = forms.FloatField(label="Score", required=False, help_text="A number, e.g. 0 or 1.")
    comment = forms.CharField(
        label="Comment", required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 3})
    )


class QueueRunForm(forms.Form):
    queue = forms.ModelChoiceField(
        label="Annotation queue",
        queryset=AnnotationQueue.objects.none(),
        empty_label="Choose a queue…",
    )

    def __init__(self, workspace, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["queue"].queryset = AnnotationQueue.objects.in_workspace(workspace).order_by(
            "name", "id"
        )


def _run(request, project_id, run_id):
    return get_object_or_404(
        Run.objects.in_workspace(request.workspace)
        .filter(project_id=project_id)
        .select_related("project"),
        pk=run_id,
    )


def run_url(request, run) -> str:
    return _url(request, "run", run.project_id, run.pk)


def trace_outline(runs, selected_id):
    """The runs of a trace as a nested list, in steps a template can draw without recursion.

    Steps are {"run", "depth", "has_children", "selected"} (open an item, and a sub-list when
    it has children) and {"close": True} (end a sub-list and its item). A run whose parent is
    not among `runs` (not ingested yet, or past TRACE_LIMIT) is drawn as a root.
    """
    ids = {run.id for run in runs}
    children = {}
    roots = []
    for run in runs:
        if run.parent_run_id in ids and run.parent_run_id != run.id:
            children.setdefault(run.parent_run_id, []).append(run)
        else:
            roots.append(run)
    steps, seen = [], set()
    stack = [(run, 0) for run in reversed(roots)]
    while stack:
        run, depth = stack.pop()
        if run is None:
            steps.append({"close": True})
            continue
        if run.id in seen:  # a parent cycle in the data: draw each run once
            continue
        seen.add(run.id)
        kids = [kid for kid in children.get(run.id, ()) if kid.id not in seen]
        run.latency_label = latency_label(run)
        steps.append(
            {
                "run": run,
                "depth": depth,
                "has_children": bool(kids),
                "selected": run.id == selected_id,
            }
        )
        if kids:
            stack.append((None, depth))
            stack.extend((kid, depth + 1) for kid in reversed(kids))
    return steps


def _trace_runs(request, run):
    """Every run of the run's trace, in one query, without their (large) payloads."""
    rows = list(
        Run.objects.in_workspace(request.workspace)
        .filter(trace_id=run.trace_id)
        .only(*RUN_LIST_FIELDS, "dotted_order")
        .order_by("start_time", "dotted_order", "id")[: TRACE_LIMIT + 1]
    )
    truncated = len(rows) > TRACE_LIMIT
    rows = rows[:TRACE_LIMIT]
    if run.id not in {r.id for r in rows}:
        rows.append(run)
    return rows, truncated


def _run_page(request, run, *, feedback_form=None, queue_form=None, status=200):
    perms = request.access.permissions
    trace, truncated = _trace_runs(request, run)
    context = {
        "run": run,
        "project": run.project,
        "trace": trace_outline(trace, run.id),
        "trace_size": len(trace),
        "trace_truncated": truncated,
        "latency": latency_label(run),
        "sections": [
            ("Inputs", "inputs", pretty_json(run.inputs)),
            ("Outputs", "outputs", pretty_json(run.outputs)),
            ("Metadata", "metadata", pretty_json(run.metadata) if run.metadata else ""),
        ],
        "extra_json": pretty_json(
            {k: v for k, v in (run.extra or {}).items() if k != "metadata"} or None
        ),
    }
    if "feedback:read" in perms:
        context["feedback"] = list(
            Feedback.objects.in_workspace(request.workspace)
            .filter(run_id=run.id)
            .order_by("-created_at", "id")
        )
        for item in context["feedback"]:
            item.value_json = json_preview(item.value)
    if "feedback:create" in perms:
        context["feedback_form"] = feedback_form or FeedbackForm()
    if "annotation-queues:read" in perms:
        context["in_queues"] = list(
            AnnotationQueue.objects.in_workspace(request.workspace)
            .filter(items__run=run)
            .order_by("name", "id")
        )
    if "annotation-queues:update" in perms:
        context["queue_form"] = queue_form or QueueRunForm(request.workspace)
    return render(request, "resources/run.html", context, status=status)


@requires("runs:read")
@require_GET
def run_detail(request, org_slug, workspace_slug, project_id, run_id):
    return _run_page(request, _run(request, project_id, run_id))


@requires("feedback:create")
@require_POST
def run_feedback_add(request, org_slug, workspace_slug, project_id, run_id):
    run = _run(request, project_id, run_id)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return _run_page(request, run, feedback_form=form, status=422)
    services.add_feedback(
        run=run,
        key=form.cleaned_data["key"],
        score=form.cleaned_data["score"],
        comment=form.cleaned_data["comment"],
        source={"type": "app", "user": request.user.email},
    )
    return console.done(
        request,
        f"Feedback “{form.cleaned_data['key']}” added.",
        run_url(request, run) + "#feedback",
    )


@requires("annotation-queues:update")
@require_POST
def run_queue_add(request, org_slug, workspace_slug, project_id, run_id):
    run = _run(request, project_id, run_id)
    form = QueueRunForm(request.workspace, request.POST)
    if not form.is_valid():
        return _run_page(request, run, queue_form=form, status=422)
    queue = form.cleaned_data["queue"]
    services.queue_runs(queue=queue, run_ids=[run.id])
    return console.done(request, f"Run added to {queue.name}.", run_url(request, run))


# Datasets and examples


class DatasetForm(forms.Form):
    name = _name_field()
    description = _description_field()


class NewDatasetForm(DatasetForm):
    data_type = forms.ChoiceField(label="Type", choices=Dataset.DATA_TYPES, initial="kv")


class ExampleForm(forms.Form):
    inputs = JSONObjectField(label="Inputs (JSON object)")
    outputs = JSONObjectField(label="Outputs (JSON object)", required=False)
    metadata = JSONObjectField(label="Metadata (JSON object)", required=False)
    split = forms.CharField(
        label="Splits",
        required=False,
        max_length=1000,
        initial="base",
        help_text="Comma-separated, e.g. “base, test”.",
    )

    def clean_split(self):
        names = [s.strip() for s in self.cleaned_data["split"].split(",") if s.strip()]
        return names or ["base"]


@requires("datasets:read")
@require_GET
def datasets(request, org_slug, workspace_slug):
    query = _search_term(request)
    rows = (
        Dataset.objects.in_workspace(request.workspace)
        .annotate(example_count=count_of(Example.objects.all(), "dataset"))
        .order_by("-created_at", "id")
    )
    if query:
        rows = rows.filter(name__icontains=query)
    return render(
        request,
        _template(request, "datasets", "rows"),
        {"page": _page(request, rows), "q": query},
    )


@requires("datasets:create")
@require_http_methods(["GET", "POST"])
def dataset_create(request, org_slug, workspace_slug):
    form = NewDatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.create_dataset(
                workspace=request.workspace,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                data_type=form.cleaned_data["data_type"],
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request, f"Dataset {dataset.name} created.", _url(request, "dataset", dataset.pk)
            )
    return _form_page(
        request,
        form,
        title="New dataset",
        action=request.path,
        cancel_url=_url(request, "datasets"),
        submit_label="Create dataset",
    )


def _dataset(request, dataset_id):
    return get_object_or_404(Dataset.objects.in_workspace(request.workspace), pk=dataset_id)


@requires("datasets:read")
@require_GET
def dataset_detail(request, org_slug, workspace_slug, dataset_id):
    dataset = _dataset(request, dataset_id)
    examples = (
        Example.objects.in_workspace(request.workspace)
        .filter(dataset=dataset)
        .order_by("created_at", "id")
    )
    page = _page(request, examples)
    for example in page.object_list:
        example.inputs_preview = json_preview(example.inputs)
        example.outputs_preview = json_preview(example.outputs)
    return render(request, "resources/dataset.html", {"dataset": dataset, "page": page})


@requires("datasets:update")
@require_http_methods(["GET", "POST"])
def dataset_edit(request, org_slug, workspace_slug, dataset_id):
    dataset = _dataset(request, dataset_id)
    initial = {"name": dataset.name, "description": dataset.description}
    form = DatasetForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_dataset(
                dataset=dataset,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request, f"Dataset {dataset.name} saved.", _url(request, "dataset", dataset.pk)
            )
    return _form_page(
        request,
        form,
        title=f"Edit {dataset.name}",
        action=request.path,
        cancel_url=_url(request, "dataset", dataset.pk),
        submit_label="Save",
    )


@requires("datasets:delete")
@require_http_methods(["GET", "POST"])
def dataset_delete(request, org_slug, workspace_slug, dataset_id):
    dataset = _dataset(request, dataset_id)
    if request.method == "GET":
        count = Example.objects.in_workspace(request.workspace).filter(dataset=dataset).count()
        return console.confirm(
            request,
            title=f"Delete the dataset {dataset.name}?",
            message=_counted(
                count,
                "Its one example is deleted with it.",
                "Its {n} examples are deleted with it.",
            ),
            consequences=[
                "Experiments that used it lose their reference.",
                "This cannot be undone.",
            ],
            action=request.path,
            cancel_url=_url(request, "dataset", dataset.pk),
            confirm_label="Delete dataset",
        )
    services.delete_resource(dataset)
    return console.done(request, f"Dataset {dataset.name} was deleted.", _url(request, "datasets"))


@requires("datasets:update")
@require_http_methods(["GET", "POST"])
def example_create(request, org_slug, workspace_slug, dataset_id):
    dataset = _dataset(request, dataset_id)
    form = ExampleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.create_examples(
                workspace=request.workspace,
                examples=[{"dataset_id": dataset.pk, **form.cleaned_data}],
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request, f"Example added to {dataset.name}.", _url(request, "dataset", dataset.pk)
            )
    return _form_page(
        request,
        form,
        title=f"Add an example to {dataset.name}",
        action=request.path,
        cancel_url=_url(request, "dataset", dataset.pk),
        submit_label="Add example",
    )


def _example(request, dataset, example_id):
    return get_object_or_404(
        Example.objects.in_workspace(request.workspace).filter(dataset=dataset), pk=example_id
    )


@requires("datasets:update")
@require_http_methods(["GET", "POST"])
def example_edit(request, org_slug, workspace_slug, dataset_id, example_id):
    dataset = _dataset(request, dataset_id)
    example = _example(request, dataset, example_id)
    initial = {
        "inputs": example.inputs,
        "outputs": example.outputs,
        "metadata": example.metadata,
        "split": ", ".join(example.split or []),
    }
    form = ExampleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.update_example(
            example=example,
            inputs=data["inputs"],
            outputs=data["outputs"] or {},
            metadata=data["metadata"] or {},
            split=data["split"],
        )
        return console.done(request, "Example saved.", _url(request, "dataset", dataset.pk))
    return _form_page(
        request,
        form,
        title=f"Edit an example of {dataset.name}",
        action=request.path,
        cancel_url=_url(request, "dataset", dataset.pk),
        submit_label="Save",
    )


@requires("datasets:update")
@require_http_methods(["GET", "POST"])
def example_delete(request, org_slug, workspace_slug, dataset_id, example_id):
    dataset = _dataset(request, dataset_id)
    example = _example(request, dataset, example_id)
    if request.method == "GET":
        return console.confirm(
            request,
            title="Delete this example?",
            message=f"Inputs {json_preview(example.inputs)} leave {dataset.name}.",
            consequences=["This cannot be undone."],
            action=request.path,
            cancel_url=_url(request, "dataset", dataset.pk),
            confirm_label="Delete example",
        )
    services.delete_resource(example)
    return console.done(request, "Example deleted.", _url(request, "dataset", dataset.pk))


# Prompts


class PromptForm(forms.Form):
    name = _name_field()
    description = _description_field()


class NewPromptForm(PromptForm):
    template = forms.CharField(
        label="Template",
        max_length=200000,
        widget=forms.Textarea(attrs={"rows": 8, "class": "code-input", "spellcheck": "false"}),
        help_text="Variables in braces, e.g. “Answer {question} briefly.”",
    )


class CommitForm(forms.Form):
    template = forms.CharField(
        label="Template",
        max_length=200000,
        widget=forms.Textarea(attrs={"rows": 10, "class": "code-input", "spellcheck": "false"}),
    )
    message = forms.CharField(
        label="What changed", required=False, max_length=255, help_text="Optional."
    )


@requires("prompts:read")
@require_GET
def prompts(request, org_slug, workspace_slug):
    query = _search_term(request)
    latest = PromptCommit.objects.filter(prompt=OuterRef("pk")).order_by("-created_at", "-id")
    rows = (
        Prompt.objects.in_workspace(request.workspace)
        .annotate(
            commit_count=count_of(PromptCommit.objects.all(), "prompt"),
            latest_commit=Subquery(latest.values("id")[:1]),
        )
        .order_by("name", "id")
    )
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(description__icontains=query))
    return render(
        request,
        _template(request, "prompts", "rows"),
        {"page": _page(request, rows), "q": query},
    )


@requires("prompts:create")
@require_http_methods(["GET", "POST"])
def prompt_create(request, org_slug, workspace_slug):
    form = NewPromptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            prompt = services.create_prompt(
                workspace=request.workspace,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                template=form.cleaned_data["template"],
                author=request.user.email,
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request, f"Prompt {prompt.name} created.", _url(request, "prompt", prompt.pk)
            )
    return _form_page(
        request,
        form,
        title="New prompt",
        action=request.path,
        cancel_url=_url(request, "prompts"),
        submit_label="Create prompt",
    )


def _prompt(request, prompt_id):
    return get_object_or_404(Prompt.objects.in_workspace(request.workspace), pk=prompt_id)


def _prompt_page(request, prompt, *, commit_form=None, status=200):
    page = _page(request, prompt.commits.order_by("-created_at", "-id"))
    current = page.object_list[0] if page.number == 1 and page.object_list else None
    if current is None:
        current = prompt.commits.order_by("-created_at", "-id").first()
    if commit_form is None and "prompts:update" in request.access.permissions:
        commit_form = CommitForm(initial={"template": current.template if current else ""})
    return render(
        request,
        "resources/prompt.html",
        {"prompt": prompt, "current": current, "page": page, "commit_form": commit_form},
        status=status,
    )


@requires("prompts:read")
@require_GET
def prompt_detail(request, org_slug, workspace_slug, prompt_id):
    return _prompt_page(request, _prompt(request, prompt_id))


@requires("prompts:update")
@require_POST
def prompt_commit(request, org_slug, workspace_slug, prompt_id):
    prompt = _prompt(request, prompt_id)
    form = CommitForm(request.POST)
    if form.is_valid():
        try:
            commit = services.commit_prompt(
                prompt=prompt,
                template=form.cleaned_data["template"],
                message=form.cleaned_data["message"],
                author=request.user.email,
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request,
                f"Version {commit.commit_hash} of {prompt.name} saved.",
                _url(request, "prompt", prompt.pk),
            )
    return _prompt_page(request, prompt, commit_form=form, status=422)


@requires("prompts:update")
@require_http_methods(["GET", "POST"])
def prompt_edit(request, org_slug, workspace_slug, prompt_id):
    prompt = _prompt(request, prompt_id)
    initial = {"name": prompt.name, "description": prompt.description}
    form = PromptForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_prompt(
                prompt=prompt,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request, f"Prompt {prompt.name} saved.", _url(request, "prompt", prompt.pk)
            )
    return _form_page(
        request,
        form,
        title=f"Edit {prompt.name}",
        action=request.path,
        cancel_url=_url(request, "prompt", prompt.pk),
        submit_label="Save",
    )


@requires("prompts:delete")
@require_http_methods(["GET", "POST"])
def prompt_delete(request, org_slug, workspace_slug, prompt_id):
    prompt = _prompt(request, prompt_id)
    if request.method == "GET":
        count = prompt.commits.count()
        return console.confirm(
            request,
            title=f"Delete the prompt {prompt.name}?",
            message=_counted(
                count,
                "Its one version is deleted with it.",
                "All {n} versions are deleted with it.",
            ),
            consequences=["Code that pulls it by name will fail.", "This cannot be undone."],
            action=request.path,
            cancel_url=_url(request, "prompt", prompt.pk),
            confirm_label="Delete prompt",
        )
    services.delete_resource(prompt)
    return console.done(request, f"Prompt {prompt.name} was deleted.", _url(request, "prompts"))


# Annotation queues


class QueueForm(forms.Form):
    name = _name_field()
    description = _description_field()
    rubric_instructions = forms.CharField(
        label="Instructions for reviewers",
        required=False,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    rubric_items = forms.CharField(
        label="Feedback to give",
        required=False,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 3, "class": "code-input"}),
        help_text="One feedback key per line, optionally “key: what it means”.",
    )

    def clean_rubric_items(self):
        items = []
        for line in self.cleaned_data["rubric_items"].splitlines():
            key, _, description = line.partition(":")
            if key.strip():
                items.append(
                    {"feedback_key": key.strip()[:255], "description": description.strip()}
                )
        return items


def rubric_lines(items) -> str:
    lines = []
    for item in items or ():
        if isinstance(item, dict) and item.get("feedback_key"):
            description = item.get("description") or ""
            lines.append(
                f"{item['feedback_key']}: {description}" if description else item["feedback_key"]
            )
    return "\n".join(lines)


def rubric_rows(items):
    """(key, description) for each rubric item; items the SDK wrote in other shapes as JSON."""
    rows = []
    for item in items or ():
        if isinstance(item, dict) and item.get("feedback_key"):
            rows.append((str(item["feedback_key"]), str(item.get("description") or "")))
        else:
            rows.append((json_preview(item), ""))
    return rows


@requires("annotation-queues:read")
@require_GET
def annotation_queues(request, org_slug, workspace_slug):
    query = _search_term(request)
    rows = (
        AnnotationQueue.objects.in_workspace(request.workspace)
        .annotate(run_count=count_of(QueuedRun.objects.all(), "queue"))
        .order_by("-created_at", "id")
    )
    if query:
        rows = rows.filter(name__icontains=query)
    return render(
        request,
        _template(request, "queues", "rows"),
        {"page": _page(request, rows), "q": query},
    )


@requires("annotation-queues:create")
@require_http_methods(["GET", "POST"])
def queue_create(request, org_slug, workspace_slug):
    form = QueueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        queue = services.create_annotation_queue(workspace=request.workspace, **form.cleaned_data)
        return console.done(
            request, f"Queue {queue.name} created.", _url(request, "annotation-queue", queue.pk)
        )
    return _form_page(
        request,
        form,
        title="New annotation queue",
        intro="Add runs to it from their run pages.",
        action=request.path,
        cancel_url=_url(request, "annotation-queues"),
        submit_label="Create queue",
    )


def _queue(request, queue_id):
    return get_object_or_404(AnnotationQueue.objects.in_workspace(request.workspace), pk=queue_id)


@requires("annotation-queues:read")
@require_GET
def queue_detail(request, org_slug, workspace_slug, queue_id):
    queue = _queue(request, queue_id)
    items = (
        QueuedRun.objects.filter(queue=queue)
        .select_related("run__project")
        .defer(*(f"run__{field}" for field in RUN_PAYLOAD_FIELDS))
        .order_by("added_at", "id")
    )
    page = _page(request, items)
    _with_latency([item.run for item in page.object_list])
    return render(
        request,
        "resources/queue.html",
        {"queue": queue, "page": page, "rubric": rubric_rows(queue.rubric_items)},
    )


@requires("annotation-queues:update")
@require_http_methods(["GET", "POST"])
def queue_edit(request, org_slug, workspace_slug, queue_id):
    queue = _queue(request, queue_id)
    initial = {
        "name": queue.name,
        "description": queue.description,
        "rubric_instructions": queue.rubric_instructions,
        "rubric_items": rubric_lines(queue.rubric_items),
    }
    form = QueueForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = dict(form.cleaned_data)
        if "rubric_items" not in form.changed_data:
            changes["rubric_items"] = None  # keep items the SDK wrote in shapes we don't edit
        services.update_annotation_queue(queue=queue, **changes)
        return console.done(
            request, f"Queue {queue.name} saved.", _url(request, "annotation-queue", queue.pk)
        )
    return _form_page(
        request,
        form,
        title=f"Edit {queue.name}",
        action=request.path,
        cancel_url=_url(request, "annotation-queue", queue.pk),
        submit_label="Save",
    )


@requires("annotation-queues:update")
@require_http_methods(["GET", "POST"])
def queue_run_remove(request, org_slug, workspace_slug, queue_id, run_id):
    queue = _queue(request, queue_id)
    item = get_object_or_404(
        QueuedRun.objects.filter(queue=queue).select_related("run"), run_id=run_id
    )
    if request.method == "GET":
        return console.confirm(
            request,
            title=f"Take {item.run.name} out of {queue.name}?",
            message="The run itself and its feedback stay.",
            action=request.path,
            cancel_url=_url(request, "annotation-queue", queue.pk),
            confirm_label="Remove from queue",
        )
    services.dequeue_run(queue=queue, run_id=item.run_id)
    return console.done(
        request,
        f"{item.run.name} was taken out of {queue.name}.",
        _url(request, "annotation-queue", queue.pk),
    )


@requires("annotation-queues:delete")
@require_http_methods(["GET", "POST"])
def queue_delete(request, org_slug, workspace_slug, queue_id):
    queue = _queue(request, queue_id)
    if request.method == "GET":
        count = queue.items.count()
        return console.confirm(
            request,
            title=f"Delete the queue {queue.name}?",
            message=_counted(
                count,
                "Its one queued run leaves it; the run and its feedback stay.",
                "Its {n} queued runs leave it; the runs and their feedback stay.",
            ),
            consequences=["This cannot be undone."],
            action=request.path,
            cancel_url=_url(request, "annotation-queue", queue.pk),
            confirm_label="Delete queue",
        )
    services.delete_resource(queue)
    return console.done(
        request, f"Queue {queue.name} was deleted.", _url(request, "annotation-queues")
    )
