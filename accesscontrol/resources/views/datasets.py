"""Datasets and their examples."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.forms import ExampleForm
from accesscontrol.resources.models import Dataset, Example
from accesscontrol.resources.templatetags.resource_display import json_preview
from accesscontrol.resources.views import pages


@requires("datasets:read")
@require_GET
def dataset_detail(request, org_slug, workspace_slug, dataset_id):
    dataset = pages.one(request, Dataset, dataset_id)
    examples = (
        Example.objects.in_workspace(request.workspace)
        .filter(dataset=dataset)
        .order_by("created_at", "id")
    )
    page = pages.paginate(request, examples)
    return render(request, "resources/dataset.html", {"dataset": dataset, "page": page})


# Examples


@requires("datasets:update")
@require_http_methods(["GET", "POST"])
def example_create(request, org_slug, workspace_slug, dataset_id):
    dataset = pages.one(request, Dataset, dataset_id)
    dataset_url = pages.url_for(request, "dataset", dataset.pk)

    def save(data):
        services.create_examples(
            actor=request.actor,
            workspace=request.workspace,
            examples=[{"dataset_id": dataset.pk, **data}],
        )
        return f"Example added to {dataset.name}.", dataset_url

    return pages.form_page(
        request,
        ExampleForm(request.POST or None),
        save,
        title=f"Add an example to {dataset.name}",
        cancel_url=dataset_url,
        submit_label="Add example",
    )


def _example(request, dataset_id, example_id):
    """An example of that dataset, with its dataset, in one query; any other pair is a 404."""
    return get_object_or_404(
        Example.objects.in_workspace(request.workspace).select_related("dataset"),
        dataset_id=dataset_id,
        pk=example_id,
    )


@requires("datasets:update")
@require_http_methods(["GET", "POST"])
def example_edit(request, org_slug, workspace_slug, dataset_id, example_id):
    example = _example(request, dataset_id, example_id)
    dataset_url = pages.url_for(request, "dataset", dataset_id)

    def save(data):
        services.update_example(
            actor=request.actor,
            example=example,
            inputs=data["inputs"],
            outputs=data["outputs"] or {},
            metadata=data["metadata"] or {},
            split=data["split"],
        )
        return "Example saved.", dataset_url

    return pages.form_page(
        request,
        ExampleForm(request.POST or None, initial=ExampleForm.initial_for(example)),
        save,
        title=f"Edit an example of {example.dataset.name}",
        cancel_url=dataset_url,
        submit_label="Save",
    )


@requires("datasets:update")
@require_http_methods(["GET", "POST"])
def example_delete(request, org_slug, workspace_slug, dataset_id, example_id):
    example = _example(request, dataset_id, example_id)
    dataset_url = pages.url_for(request, "dataset", dataset_id)
    return pages.delete_page(
        request,
        example,
        title="Delete this example?",
        message=f"Inputs {json_preview(example.inputs)} leave {example.dataset.name}.",
        consequences=["This cannot be undone."],
        cancel_url=dataset_url,
        confirm_label="Delete example",
        done="Example deleted.",
        next_url=dataset_url,
    )
