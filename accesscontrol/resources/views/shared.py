"""Pages outside a workspace's console: what a share link opens, and the SDK's run URL.

- `/public/<token>/r|d|p`: a shared run (with the runs under it), dataset (with its examples) or
  prompt (with its latest commit), read-only, for anyone holding the link. Public to the gate:
  the token in the URL is the credential, checked on every request (resources/sharing.py), and
  the page shows the shared object and nothing else of its workspace.
- `/o/<workspace id>/projects/p/<project id>/r/<run id>`: the URL the SDK's `get_run_url`
  builds; a signed-in member who may read runs there sees the run's page.
"""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import authenticated, deny, public, rule_of
from accesscontrol.rbac.permissions import WORKSPACE_PERMISSIONS
from accesscontrol.rbac.resolver import console_access
from accesscontrol.resources import hub, models, sharing
from accesscontrol.resources.views import projects
from accesscontrol.workspaces.models import Workspace

SHOWN_LIMIT = 200  # runs or examples drawn on a shared page


def _no_robots(response):
    response["X-Robots-Tag"] = "noindex"  # a share link is for whoever got it, not for search
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak in a Referer
    response["Cache-Control"] = "no-store"  # revoked means gone: no cache may keep the page
    return response


@public  # the share token in the URL is the credential (see the module's docstring)
@require_GET
def shared_run(request, share_token):
    run = sharing.shared_object(share_token, models.ShareLink.RUN)
    runs = list(sharing.runs_of_shared(run).order_by("start_time", "id")[:SHOWN_LIMIT])
    return _no_robots(
        render(request, "resources/shared.html", {"kind": "run", "run": run, "runs": runs})
    )


@public  # the share token in the URL is the credential (see the module's docstring)
@require_GET
def shared_dataset(request, share_token):
    dataset = sharing.shared_object(share_token, models.ShareLink.DATASET)
    examples = list(dataset.examples.order_by("created_at", "id")[:SHOWN_LIMIT])
    context = {"kind": "dataset", "dataset": dataset, "examples": examples}
    return _no_robots(render(request, "resources/shared.html", context))


@public  # the share token in the URL is the credential (see the module's docstring)
@require_GET
def shared_prompt(request, share_token):
    prompt = sharing.shared_object(share_token, models.ShareLink.PROMPT)
    latest = prompt.commits.first()
    context = {
        "kind": "prompt",
        "prompt": prompt,
        "commit": latest,
        "manifest": hub.manifest_of(latest) if latest else None,
    }
    return _no_robots(render(request, "resources/shared.html", context))


@authenticated  # the workspace comes by id, not slug: its access is resolved here
@require_GET
def sdk_run_url(request, workspace_id, project_id, run_id):
    """The run's own page, for the workspace named by id (the gate resolves slugs only)."""
    workspace = Workspace.objects.select_related("organization").filter(pk=workspace_id).first()
    if workspace is None:
        raise Http404("No such workspace")
    organization = workspace.organization
    access = console_access(request.user, organization.pk, workspace)
    if not access.is_org_member or not access.permissions & WORKSPACE_PERMISSIONS:
        # Another tenant's workspace, or one this user cannot enter, looks like none.
        raise Http404("No such workspace")
    request.organization, request.workspace, request.access = organization, workspace, access
    request.actor = Actor.for_user(request.user, organization, workspace, access)
    missing = access.missing(rule_of(projects.run_detail).codes)
    if missing:
        return deny(request, missing)
    return projects.run_detail(request, organization.slug, workspace.slug, project_id, run_id)
