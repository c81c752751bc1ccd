"""Prompts and their versions."""

from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accesscontrol import console
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import services
from accesscontrol.resources.forms import CommitForm
from accesscontrol.resources.models import Prompt
from accesscontrol.resources.views import pages


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
