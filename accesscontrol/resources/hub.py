"""The prompt hub (LangSmith's `/repos` and `/commits`) on top of our prompts: reads and writes.

A prompt is addressed as `{owner}/{repo}`: the owner is `-` (the SDK's "my own workspace") or the
workspace's handle, which is its slug (`GET /settings` tells the SDK); any other owner names
nothing here. A commit is addressed by `latest`, a tag, or the start of its hash. Commits keep
the LangChain manifest the SDK pushed; a commit made from a plain template (the console, our own
/prompts API) reads back as a `PromptTemplate` manifest built from it. Prompts are never public:
`is_public: true` is refused, a share link is the only way out of the workspace.

Writes take the acting `actor` and check their own permission (ARCHITECTURE §11).
"""

import json
import string

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from accesscontrol.resources import models, services

OWN = "-"
LATEST = "latest"
NOT_PUBLIC = (
    "Prompts are not public on this server: share one with a share link "
    "(PUT /repos/{owner}/{repo}/share) instead."
)


# Reads


def handle_of(workspace) -> str:
    return workspace.slug


def prompt_by_handle(workspace, owner: str, repo: str) -> models.Prompt:
    """The workspace's prompt `repo`; another owner, or a name it does not have, is a 404."""
    if owner not in (OWN, handle_of(workspace)):
        raise Http404("No such prompt.")
    prompt = models.Prompt.objects.in_workspace(workspace).filter(name=repo).first()
    if prompt is None:
        raise Http404("No such prompt.")
    return prompt


def commit_by_ref(prompt, ref: str) -> models.PromptCommit:
    """`latest`, a tag, or a commit hash (or its start, at least 4 characters)."""
    commits = prompt.commits.all()
    if ref == LATEST:
        commit = commits.first()
    else:
        tag = prompt.tags_of_commits.select_related("commit").filter(name=ref).first()
        commit = tag.commit if tag else None
        if commit is None and len(ref) >= 4:
            ref = ref.lower()
            commit = next((c for c in commits if c.id.hex.startswith(ref)), None)
    if commit is None:
        raise Http404(f"No commit {ref!r} in this prompt.")
    return commit


def _input_variables(template: str) -> list[str]:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError:  # unbalanced braces: not an f-string template, no variables
        return []
    return sorted({name.split(".")[0].split("[")[0] for name in fields})


def manifest_of(commit: models.PromptCommit) -> dict:
    if commit.manifest is not None:
        return commit.manifest
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "prompts", "prompt", "PromptTemplate"],
        "kwargs": {
            "input_variables": _input_variables(commit.template),
            "template": commit.template,
            "template_format": "f-string",
        },
    }


def _message_text(message: dict) -> str:
    kwargs = message.get("kwargs") or {}
    inner = kwargs.get("prompt")
    if isinstance(inner, dict):
        inner = (inner.get("kwargs") or {}).get("template")
    text = inner if isinstance(inner, str) else kwargs.get("content")
    role = (message.get("id") or ["message"])[-1].removesuffix("MessagePromptTemplate")
    return f"{role.lower()}: {text if isinstance(text, str) else json.dumps(inner)}"


def template_of(manifest: dict) -> str:
    """What the console shows of a pushed manifest: its template text when it is a prompt
    template, each message of a chat prompt, the manifest itself otherwise."""
    kind = (manifest.get("id") or [""])[-1]
    kwargs = manifest.get("kwargs") or {}
    if kind == "PromptTemplate" and isinstance(kwargs.get("template"), str):
        return kwargs["template"]
    messages = kwargs.get("messages")
    if kind == "ChatPromptTemplate" and isinstance(messages, list):
        return "\n".join(_message_text(m) for m in messages if isinstance(m, dict))
    return json.dumps(manifest, indent=2, sort_keys=True)


def check_manifest(manifest) -> None:
    """A LangChain serialized object: what `langchain_core.load` reads back."""
    kind = manifest.get("id") if isinstance(manifest, dict) else None
    if (
        not isinstance(kind, list)
        or not kind
        or not all(isinstance(part, str) for part in kind)
        or manifest.get("lc") != 1
        or manifest.get("type") != "constructor"
    ):
        raise ValidationError(
            {
                "manifest": 'Not a LangChain serialized object: {"lc": 1, "type": '
                '"constructor", "id": [...], "kwargs": {...}} is expected.'
            }
        )


# Writes


def _refuse_public(is_public) -> None:
    if is_public:
        raise ValidationError({"is_public": NOT_PUBLIC})


def create_repo(*, actor, workspace, name, description="", readme="", tags=(), is_public=False):
    actor.require("prompts:create", workspace=workspace)
    _refuse_public(is_public)
    return services._create_named(
        models.Prompt,
        "prompt",
        workspace,
        name,
        description,
        readme=readme or "",
        tags=list(tags or []),
    )


def update_repo(
    *, actor, prompt, description=None, readme=None, tags=None, is_public=None, is_archived=None
) -> models.Prompt:
    actor.require("prompts:update", workspace=prompt.workspace)
    _refuse_public(is_public)
    return services._set(
        prompt,
        description=description,
        readme=readme,
        tags=None if tags is None else list(tags),
        is_archived=is_archived,
    )


def push_commit(*, actor, prompt, manifest, parent_commit=None, description=None):
    """A new commit of `manifest`. `parent_commit` (a hash) must be the latest commit: pushing
    on top of an older one would silently drop what was committed since (409)."""
    actor.require("prompts:update", workspace=prompt.workspace)
    check_manifest(manifest)
    with transaction.atomic():
        # The prompt's row lock makes "is the parent still the latest?" and the insert one step.
        models.Prompt.objects.select_for_update().filter(pk=prompt.pk).first()
        latest = prompt.commits.first()
        if parent_commit:
            try:
                parent = commit_by_ref(prompt, parent_commit)
            except Http404:
                raise ValidationError(
                    {"parent_commit": ValidationError("No such commit.", code="not_found")}
                ) from None
            if latest is None or parent.pk != latest.pk:
                raise ValidationError(
                    f"Commit {parent_commit} is not the latest of {prompt.name} "
                    f"({latest.commit_hash if latest else 'none'}): pull it and push again.",
                    code="conflict",
                )
        commit = models.PromptCommit.objects.create(
            prompt=prompt,
            template=template_of(manifest),
            manifest=manifest,
            parent=latest,
            message=description or "",
            created_by=actor.label,
        )
        prompt.save(update_fields=["updated_at"])
    return commit


def tag_commit(*, actor, prompt, tag_name, commit_id) -> models.PromptTag:
    """Point the tag `tag_name` of `prompt` at one of its commits (moving it if it exists)."""
    actor.require("prompts:update", workspace=prompt.workspace)
    commit = prompt.commits.filter(pk=commit_id).first()
    if commit is None:
        raise ValidationError(
            {"commit_id": ValidationError("No such commit in this prompt.", code="not_found")}
        )
    if tag_name == LATEST:
        raise ValidationError({"tag_name": "'latest' always names the newest commit."})
    try:
        with transaction.atomic():
            tag, _ = models.PromptTag.objects.update_or_create(
                prompt=prompt, name=tag_name, defaults={"commit": commit}
            )
    except IntegrityError:  # two taggers at once: the other one won
        raise ValidationError("That tag was just created.", code="duplicate") from None
    return tag
