"""Prompts and their versions."""

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import console
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.forms import CommitForm, NamedForm, NewPromptForm
from accesscontrol.resources.models import Prompt, PromptCommit
from accesscontrol.resources.views.pages import (
    count_of,
    counted,
    delete_page,
    form_page,
    list_page,
    paginate,
    url_for,
)


@requires("prompts:read")
@require_GET
def prompts(request, org_slug, workspace_slug):
    latest = PromptCommit.objects.filter(prompt=OuterRef("pk")).order_by("-created_at", "-id")
    rows = (
        Prompt.objects.in_workspace(request.workspace)
        .annotate(
            commit_count=count_of(PromptCommit.objects.all(), "prompt"),
            latest_commit=Subquery(latest.values("id")[:1]),
        )
        .order_by("name", "id")
    )
    return list_page(request, "prompts", rows, search=("name", "description"))


@requires("prompts:create")
@require_http_methods(["GET", "POST"])
def prompt_create(request, org_slug, workspace_slug):
    def save(data):
        prompt = services.create_prompt(actor=request.actor, workspace=request.workspace, **data)
        return f"Prompt {prompt.name} created.", url_for(request, "prompt", prompt.pk)

    return form_page(
        request,
        NewPromptForm(request.POST or None),
        save,
        title="New prompt",
        cancel_url=url_for(request, "prompts"),
        submit_label="Create prompt",
    )


def _prompt(request, prompt_id):
    return get_object_or_404(Prompt.objects.in_workspace(request.workspace), pk=prompt_id)


def _prompt_page(request, prompt, *, commit_form=None, status=200):
    page = paginate(request, prompt.commits.order_by("-created_at", "-id"))
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
    return _prompt_page(request, _prompt(request, prompt_id))


@requires("prompts:update")
@require_POST
def prompt_commit(request, org_slug, workspace_slug, prompt_id):
    prompt = _prompt(request, prompt_id)
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
                url_for(request, "prompt", prompt.pk),
            )
    return _prompt_page(request, prompt, commit_form=form, status=422)


@requires("prompts:update")
@require_http_methods(["GET", "POST"])
def prompt_edit(request, org_slug, workspace_slug, prompt_id):
    prompt = _prompt(request, prompt_id)
    prompt_url = url_for(request, "prompt", prompt.pk)

    def save(data):
        services.update_prompt(actor=request.actor, prompt=prompt, **data)
        return f"Prompt {prompt.name} saved.", prompt_url

    initial = {"name": prompt.name, "description": prompt.description}
    return form_page(
        request,
        NamedForm(request.POST or None, initial=initial),
        save,
        title=f"Edit {prompt.name}",
        cancel_url=prompt_url,
        submit_label="Save",
    )


@requires("prompts:delete")
@require_http_methods(["GET", "POST"])
def prompt_delete(request, org_slug, workspace_slug, prompt_id):
    prompt = _prompt(request, prompt_id)
    count = prompt.commits.count()
    return delete_page(
        request,
        prompt,
        title=f"Delete the prompt {prompt.name}?",
        message=counted(
            count, "Its one version is deleted with it.", "All {n} versions are deleted with it."
        ),
        consequences=["Code that pulls it by name will fail.", "This cannot be undone."],
        cancel_url=url_for(request, "prompt", prompt.pk),
        confirm_label="Delete prompt",
        done=f"Prompt {prompt.name} was deleted.",
        next_url=url_for(request, "prompts"),
    )
