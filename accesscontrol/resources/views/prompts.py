"""Prompts and their versions."""

from functools import partial

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import console
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.forms import CommitForm, NewPromptForm
from accesscontrol.resources.models import Prompt, PromptCommit
from accesscontrol.resources.views import pages


@requires("prompts:read")
@require_GET
def prompts(request, org_slug, workspace_slug):
    latest = PromptCommit.objects.filter(prompt=OuterRef("pk")).order_by("-created_at", "-id")
    rows = (
        Prompt.objects.in_workspace(request.workspace)
        .annotate(
            commit_count=pages.count_of(PromptCommit.objects.all(), "prompt"),
            latest_commit=Subquery(latest.values("id")[:1]),
        )
        .order_by("name", "id")
    )
    return pages.list_page(request, "prompts", rows, search=("name", "description"))


@requires("prompts:create")
@require_http_methods(["GET", "POST"])
def prompt_create(request, org_slug, workspace_slug):
    return pages.create_page(request, Prompt, NewPromptForm, services.create_prompt)


def _prompt_page(request, prompt, *, commit_form=None, status=200):
    page = pages.paginate(request, prompt.commits.order_by("-created_at", "-id"))
    current = page.object_list[0] if page.number == 1 and page.object_list else None
    if current is None:
        current = prompt.commits.order_by("-created_at", "-id").first()
    if commit_form is None and request.actor.holds("prompts:update"):
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
    return _prompt_page(request, pages.one(request, Prompt, prompt_id))


@requires("prompts:update")
@require_POST
def prompt_commit(request, org_slug, workspace_slug, prompt_id):
    prompt = pages.one(request, Prompt, prompt_id)
    form = CommitForm(request.POST)
    if form.is_valid():
        try:
            commit = services.commit_prompt(actor=request.actor, prompt=prompt, **form.cleaned_data)
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            return console.done(
                request,
                f"Version {commit.commit_hash} of {prompt.name} saved.",
                pages.url_for(request, "prompt", prompt.pk),
            )
    return _prompt_page(request, prompt, commit_form=form, status=422)


@requires("prompts:update")
@require_http_methods(["GET", "POST"])
def prompt_edit(request, org_slug, workspace_slug, prompt_id):
    prompt = pages.one(request, Prompt, prompt_id)
    return pages.edit_page(
        request, prompt, partial(services.update_prompt, actor=request.actor, prompt=prompt)
    )


@requires("prompts:delete")
@require_http_methods(["GET", "POST"])
def prompt_delete(request, org_slug, workspace_slug, prompt_id):
    prompt = pages.one(request, Prompt, prompt_id)
    count = prompt.commits.count()
    return pages.delete_page(
        request,
        prompt,
        message=pages.counted(
            count, "Its one version is deleted with it.", "All {n} versions are deleted with it."
        ),
        consequences=["Code that pulls it by name will fail.", "This cannot be undone."],
    )
