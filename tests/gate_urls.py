"""A URLconf for gate tests: one view of every kind, including an undeclared one."""

from django.http import HttpResponse
from django.urls import include, path

from accesscontrol.rbac.gate import authenticated, public, requires


@public
def open_view(request):
    return HttpResponse("open")


@authenticated
def signed_in_view(request):
    return HttpResponse("signed in")


@requires("datasets:create")
def create_dataset_view(request, org_slug, workspace_slug):
    return HttpResponse(f"created in {request.workspace.slug}")


@requires("organization:manage")
def org_settings_view(request, org_slug):
    return HttpResponse("org settings")


@requires("datasets:read")
def no_context_view(request):
    return HttpResponse("should never be reached: no workspace in the URL")


def forgotten_view(request):
    return HttpResponse("should never be reached")


nested = [path("forgotten/", forgotten_view, name="nested-forgotten")]

urlpatterns = [
    path("open/", open_view),
    path("me/", signed_in_view),
    path("o/<slug:org_slug>/settings/", org_settings_view),
    path("o/<slug:org_slug>/w/<slug:workspace_slug>/datasets/new/", create_dataset_view),
    path("no-context/", no_context_view),
    path("forgotten/", forgotten_view),
    path("deep/", include(nested)),
    # The real console, so the pages the gate renders can reverse their links.
    path("", include("accesscontrol.urls")),
]
