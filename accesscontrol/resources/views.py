"""Console pages for a workspace's resources (placeholder lists; built out next)."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accesscontrol.rbac.gate import requires
from accesscontrol.resources.models import AnnotationQueue, Dataset, Project, Prompt


def _list(request, model, title):
    items = model.objects.in_workspace(request.workspace).order_by("name")[:50]
    return render(request, "resources/list.html", {"items": items, "title": title})


@requires("projects:read")
@require_GET
def projects(request, org_slug, workspace_slug):
    return _list(request, Project, "Tracing projects")


@requires("datasets:read")
@require_GET
def datasets(request, org_slug, workspace_slug):
    return _list(request, Dataset, "Datasets")


@requires("prompts:read")
@require_GET
def prompts(request, org_slug, workspace_slug):
    return _list(request, Prompt, "Prompts")


@requires("annotation-queues:read")
@require_GET
def annotation_queues(request, org_slug, workspace_slug):
    return _list(request, AnnotationQueue, "Annotation queues")
