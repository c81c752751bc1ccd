"""The prompt hub as the `langsmith` SDK calls it: `/repos`, `/commits`, `/settings`.

push_prompt, pull_prompt(_commit), get_prompt, list_prompts, update_prompt, delete_prompt and
list_prompt_commits work on the workspace's prompts (resources/hub.py says how they are
addressed). Handlers parse, read inside the workspace, and write through resources/hub.py.
"""

from django.db.models import Count, OuterRef, Subquery
from ninja import Query, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import hub, models, services
from accesscontrol.resources.api import ws
from accesscontrol.resources.schemas_hub import (
    CommitEnvelope,
    CommitFilter,
    CommitList,
    CommitPush,
    CommitTagIn,
    CommitTagOut,
    PulledCommit,
    RepoEnvelope,
    RepoFilter,
    RepoIn,
    RepoList,
    RepoPatch,
    SettingsOut,
)

router = GatedRouter(tags=["prompt hub (LangSmith-compatible)"])


def with_and_without_slash(method, path, **options):
    """Serve `path` and `path/`: the Python SDK strips the trailing slash LangSmith's paths
    have (`/repos/`), other clients keep it."""

    def register(view):
        add = getattr(router, method)
        add(path, **options)(view)
        add(path + "/", operation_id=f"{view.__name__}_slash", **options)(view)
        return view

    return register


def repos(request):
    """The workspace's prompts, as the hub lists them (latest commit, number of commits)."""
    latest = models.PromptCommit.objects.filter(prompt=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    return (
        models.Prompt.objects.in_workspace(ws(request))
        .select_related("workspace")
        .annotate(
            latest_commit_id=Subquery(latest.values("id")[:1]),
            num_commits=Count("commits"),
        )
    )


def as_repo(prompt):
    prompt.last_commit_hash = prompt.latest_commit_id.hex[:8] if prompt.latest_commit_id else None
    return prompt


def repo(request, owner, name):
    """The prompt `owner/name` of the request's workspace, read as the hub shows it."""
    prompt = hub.prompt_by_handle(ws(request), owner, name)
    return as_repo(repos(request).get(pk=prompt.pk))


@router.get("/settings", response=SettingsOut, summary="The workspace, as the prompt hub sees it")
@requires("prompts:read")
def read_settings(request):
    workspace = ws(request)
    return {
        "id": workspace.pk,
        "display_name": workspace.name,
        "tenant_handle": hub.handle_of(workspace),
        "created_at": workspace.created_at,
    }


@with_and_without_slash("get", "/repos", response=RepoList, summary="List prompts")
@requires("prompts:read")
def list_repos(request, filters: Query[RepoFilter]):
    qs = repos(request)
    if filters.is_public:
        qs = qs.none()  # nothing is public here
    if filters.is_archived is not None:
        qs = qs.filter(is_archived=filters.is_archived)
    if filters.query:
        lookup = "name__istartswith" if filters.match_prefix else "name__icontains"
        qs = qs.filter(**{lookup: filters.query})
    # Likes, downloads and views are 0 for every prompt here: those sorts order by the last
    # change, as the hub does among equals.
    sign = "-" if filters.sort_direction == "desc" else ""
    qs = qs.order_by(f"{sign}updated_at", f"{sign}id")
    found = [as_repo(p) for p in qs[filters.offset : filters.offset + filters.limit]]
    return {"repos": found, "total": qs.count()}


@with_and_without_slash("post", "/repos", response={201: RepoEnvelope}, summary="Create a prompt")
@requires("prompts:create")
def create_repo(request, payload: RepoIn):
    prompt = hub.create_repo(
        actor=request.actor,
        workspace=ws(request),
        name=payload.repo_handle,
        description=payload.description,
        readme=payload.readme,
        tags=payload.tags,
        is_public=payload.is_public,
    )
    return Status(201, {"repo": repo(request, hub.OWN, prompt.name)})


@router.get("/repos/{owner}/{repo_name}", response=RepoEnvelope, summary="One prompt")
@requires("prompts:read")
def read_repo(request, owner: str, repo_name: str):
    return {"repo": repo(request, owner, repo_name)}


@router.patch("/repos/{owner}/{repo_name}", response=RepoEnvelope, summary="Change a prompt")
@requires("prompts:update")
def update_repo(request, owner: str, repo_name: str, payload: RepoPatch):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    hub.update_repo(actor=request.actor, prompt=prompt, **payload.dict(exclude_unset=True))
    return {"repo": repo(request, owner, repo_name)}


@router.delete("/repos/{owner}/{repo_name}", response={204: None}, summary="Delete a prompt")
@requires("prompts:delete")
def delete_repo(request, owner: str, repo_name: str):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    services.delete_resource(actor=request.actor, resource=prompt)
    return Status(204, None)


@router.get(
    "/repos/{owner}/{repo_name}/tags", response=list[CommitTagOut], summary="A prompt's commit tags"
)
@requires("prompts:read")
def list_tags(request, owner: str, repo_name: str):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    return list(prompt.tags_of_commits.select_related("commit"))


@router.post(
    "/repos/{owner}/{repo_name}/tags",
    response={201: CommitTagOut},
    summary="Tag a commit of a prompt",
)
@requires("prompts:update")
def create_tag(request, owner: str, repo_name: str, payload: CommitTagIn):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    tag = hub.tag_commit(
        actor=request.actor, prompt=prompt, tag_name=payload.tag_name, commit_id=payload.commit_id
    )
    return Status(201, tag)


def _commits(prompt):
    return prompt.commits.select_related("parent").prefetch_related("tags")


@with_and_without_slash(
    "get",
    "/commits/{owner}/{repo_name}",
    response=CommitList,
    summary="A prompt's commits, newest first",
)
@requires("prompts:read")
def list_commits(request, owner: str, repo_name: str, filters: Query[CommitFilter]):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    commits = _commits(prompt)
    return {
        "commits": list(commits[filters.offset : filters.offset + filters.limit]),
        "total": commits.count(),
    }


@router.post(
    "/commits/{owner}/{repo_name}", response={201: CommitEnvelope}, summary="Push a commit"
)
@requires("prompts:update")
def push_commit(request, owner: str, repo_name: str, payload: CommitPush):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    commit = hub.push_commit(
        actor=request.actor,
        prompt=prompt,
        manifest=payload.manifest,
        parent_commit=payload.parent_commit,
        description=payload.description,
    )
    return Status(201, {"commit": _commits(prompt).get(pk=commit.pk)})


@router.get(
    "/commits/{owner}/{repo_name}/{ref}",
    response=PulledCommit,
    summary="Pull a commit: latest, a tag or a commit hash",
)
@requires("prompts:read")
def pull_commit(request, owner: str, repo_name: str, ref: str, include_model: bool = False):
    # include_model: models are not stored apart from the manifest here; it is all there is.
    commit = hub.commit_by_ref(hub.prompt_by_handle(ws(request), owner, repo_name), ref)
    return {
        "commit_hash": commit.commit_hash,
        "manifest": hub.manifest_of(commit),
        "examples": [],
        "description": commit.message,
    }
