"""Tracing projects and their runs: a project's root runs, a run with its trace (its list and forms
are pages.py's)."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from accesscontrol import console
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.forms import FeedbackForm, QueueRunForm
from accesscontrol.resources.models import AnnotationQueue, Feedback, Project, Run
from accesscontrol.resources.templatetags.resource_display import pretty_json
from accesscontrol.resources.views import pages

TRACE_LIMIT = 1000  # runs of one trace drawn on a run page
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


@requires("projects:read", "runs:read")
@require_GET
def project_detail(request, org_slug, workspace_slug, project_id):
    project = pages.one(request, Project, project_id)
    runs = (
        Run.objects.in_workspace(request.workspace)
        .filter(project=project, parent_run_id__isnull=True)
        .only(*RUN_LIST_FIELDS)
        .order_by("-start_time", "id")
    )
    return pages.list_page(request, "project", runs, project=project)


# Runs


def _run(request, project_id, run_id):
    return get_object_or_404(
        Run.objects.in_workspace(request.workspace)
        .filter(project_id=project_id)
        .select_related("project"),
        pk=run_id,
    )


def run_url(request, run) -> str:
    return pages.url_for(request, "run", run.project_id, run.pk)


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
    holds = request.actor.holds
    trace, truncated = _trace_runs(request, run)
    context = {
        "run": run,
        "project": run.project,
        "trace": trace_outline(trace, run.id),
        "trace_size": len(trace),
        "trace_truncated": truncated,
        "sections": [
            ("Inputs", "inputs", pretty_json(run.inputs)),
            ("Outputs", "outputs", pretty_json(run.outputs)),
            ("Metadata", "metadata", pretty_json(run.metadata) if run.metadata else ""),
        ],
        "extra_json": pretty_json(
            {k: v for k, v in (run.extra or {}).items() if k != "metadata"} or None
        ),
    }
    if holds("feedback:read"):
        context["feedback"] = list(
            Feedback.objects.in_workspace(request.workspace)
            .filter(run_id=run.id)
            .order_by("-created_at", "id")
        )
    if holds("feedback:create"):
        context["feedback_form"] = feedback_form or FeedbackForm()
    if holds("annotation-queues:read"):
        context["in_queues"] = list(
            AnnotationQueue.objects.in_workspace(request.workspace)
            .filter(items__run=run)
            .order_by("name", "id")
        )
    if holds("annotation-queues:update"):
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
    services.add_feedback(actor=request.actor, run=run, **form.cleaned_data)
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
    services.queue_runs(actor=request.actor, queue=queue, run_ids=[run.id])
    return console.done(request, f"Run added to {queue.name}.", run_url(request, run))
