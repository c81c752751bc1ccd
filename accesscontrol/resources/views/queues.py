"""Annotation queues: runs collected for people to review against a rubric."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from accesscontrol import console
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.forms import QueueForm
from accesscontrol.resources.models import AnnotationQueue, QueuedRun
from accesscontrol.resources.views import pages
from accesscontrol.resources.views.projects import RUN_PAYLOAD_FIELDS


@requires("annotation-queues:read")
@require_GET
def queue_detail(request, org_slug, workspace_slug, queue_id):
    queue = pages.one(request, AnnotationQueue, queue_id)
    items = (
        QueuedRun.objects.filter(queue=queue)
        .select_related("run__project")
        .defer(*(f"run__{field}" for field in RUN_PAYLOAD_FIELDS))
        .order_by("added_at", "id")
    )
    return render(
        request, "resources/queue.html", {"queue": queue, "page": pages.paginate(request, items)}
    )


@requires("annotation-queues:update")
@require_http_methods(["GET", "POST"])
def queue_edit(request, org_slug, workspace_slug, queue_id):
    queue = pages.one(request, AnnotationQueue, queue_id)
    queue_url = pages.url_for(request, "annotation-queue", queue.pk)
    form = QueueForm(request.POST or None, initial=QueueForm.initial_for(queue))

    def save(data):
        if "rubric_items" not in form.changed_data:
            data = {**data, "rubric_items": None}  # keep items the SDK wrote in other shapes
        services.update_annotation_queue(actor=request.actor, queue=queue, **data)
        return f"Queue {queue.name} saved.", queue_url

    return pages.form_page(
        request, form, save, title=f"Edit {queue.name}", cancel_url=queue_url, submit_label="Save"
    )


@requires("annotation-queues:update")
@require_http_methods(["GET", "POST"])
def queue_run_remove(request, org_slug, workspace_slug, queue_id, run_id):
    queue = pages.one(request, AnnotationQueue, queue_id)
    queue_url = pages.url_for(request, "annotation-queue", queue.pk)
    item = get_object_or_404(
        QueuedRun.objects.filter(queue=queue).select_related("run"), run_id=run_id
    )
    if request.method == "GET":
        return console.confirm(
            request,
            title=f"Take {item.run.name} out of {queue.name}?",
            message="The run itself and its feedback stay.",
            action=request.path,
            cancel_url=queue_url,
            confirm_label="Remove from queue",
        )
    services.dequeue_run(actor=request.actor, queue=queue, run_id=item.run_id)
    return console.done(request, f"{item.run.name} was taken out of {queue.name}.", queue_url)
