"""Share links, the public reads they open, and presigned feedback tokens, as the SDK calls them.

- `PUT/GET/DELETE /runs/{id}/share`, `/datasets/{id}/share`, `/repos/{owner}/{repo}/share`
  (`runs:share`, `datasets:share`, `prompts:share`): make, read, revoke a share link;
- `/public/{token}/...`: the shared object, read-only, for anyone holding the token (no key);
- `POST /feedback/tokens` (`feedback:create`): presigned URLs; `GET/POST /feedback/tokens/{token}`
  records the feedback with the token alone (no key).

The public operations are declared @public: the token in the path is the credential, checked
by resources/sharing.py on every request.
"""

import uuid

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Query, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.rbac.gate import public, requires
from accesscontrol.resources import hub, models, sharing
from accesscontrol.resources.api import one, ws
from accesscontrol.resources.schemas import DatasetOut, ExampleOut, RunOut
from accesscontrol.resources.schemas_hub import (
    DatasetShareIn,
    DatasetShareOut,
    FeedbackTokenOut,
    FeedbackTokenRequests,
    FromTokenIn,
    FromTokenQuery,
    PromptShareIn,
    PromptShareOut,
    RunShareIn,
    RunShareOut,
    SharedExamplesFilter,
    SharedPromptOut,
    SharedRunsQuery,
)

router = GatedRouter(tags=["share links (LangSmith-compatible)"])

PAGE_OF = {
    models.ShareLink.RUN: "shared-run",
    models.ShareLink.DATASET: "shared-dataset",
    models.ShareLink.PROMPT: "shared-prompt",
}


def _share_out(request, link, **fields):
    url = request.build_absolute_uri(reverse(PAGE_OF[link.kind], args=[link.token]))
    return {"share_token": link.token, "created_at": link.created_at, "url": url, **fields}


def _refuse_other_id(given, obj, field):
    """The body may repeat the path's id (the SDK does); a different one is a mistake."""
    if given is not None and given != obj.pk:
        raise ValidationError({field: "It does not match the id in the path."})


# Runs


@router.put("/runs/{uuid:run_id}/share", response=RunShareOut, summary="Share a run")
@requires("runs:share")
def share_run(request, run_id: uuid.UUID, payload: RunShareIn):
    run = one(request, models.Run, run_id)
    _refuse_other_id(payload.run_id, run, "run_id")
    link, _ = sharing.share(actor=request.actor, obj=run, token=payload.share_token)
    return _share_out(request, link, run_id=run.pk)


@router.get("/runs/{uuid:run_id}/share", response=RunShareOut | None, summary="A run's share link")
@requires("runs:share")
def read_run_share(request, run_id: uuid.UUID):
    # null when the run is not shared: what the SDK's read_run_shared_link expects.
    run = one(request, models.Run, run_id)
    link = sharing.live_link(run)
    return None if link is None else _share_out(request, link, run_id=run.pk)


@router.delete("/runs/{uuid:run_id}/share", response={204: None}, summary="Stop sharing a run")
@requires("runs:share")
def unshare_run(request, run_id: uuid.UUID):
    run = one(request, models.Run, run_id)
    sharing.unshare(actor=request.actor, obj=run)
    return Status(204, None)


# Datasets


@router.put(
    "/datasets/{uuid:dataset_id}/share", response=DatasetShareOut, summary="Share a dataset"
)
@requires("datasets:share")
def share_dataset(request, dataset_id: uuid.UUID, payload: DatasetShareIn):
    dataset = one(request, models.Dataset, dataset_id)
    _refuse_other_id(payload.dataset_id, dataset, "dataset_id")
    link, _ = sharing.share(actor=request.actor, obj=dataset, token=payload.share_token)
    return _share_out(request, link, dataset_id=dataset.pk)


def _live_link_or_404(obj, what):
    link = sharing.live_link(obj)
    if link is None:
        raise Http404(f"This {what} is not shared.")
    return link


@router.get(
    "/datasets/{uuid:dataset_id}/share", response=DatasetShareOut, summary="A dataset's share link"
)
@requires("datasets:share")
def read_dataset_share(request, dataset_id: uuid.UUID):
    dataset = one(request, models.Dataset, dataset_id)
    link = _live_link_or_404(dataset, "dataset")
    return _share_out(request, link, dataset_id=dataset.pk)


@router.delete(
    "/datasets/{uuid:dataset_id}/share", response={204: None}, summary="Stop sharing a dataset"
)
@requires("datasets:share")
def unshare_dataset(request, dataset_id: uuid.UUID):
    dataset = one(request, models.Dataset, dataset_id)
    sharing.unshare(actor=request.actor, obj=dataset)
    return Status(204, None)


# Prompts


@router.put("/repos/{owner}/{repo_name}/share", response=PromptShareOut, summary="Share a prompt")
@requires("prompts:share")
def share_prompt(request, owner: str, repo_name: str, payload: PromptShareIn):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    link, _ = sharing.share(actor=request.actor, obj=prompt, token=payload.share_token)
    return _share_out(request, link, repo_id=prompt.pk)


@router.get(
    "/repos/{owner}/{repo_name}/share", response=PromptShareOut, summary="A prompt's share link"
)
@requires("prompts:share")
def read_prompt_share(request, owner: str, repo_name: str):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    return _share_out(request, _live_link_or_404(prompt, "prompt"), repo_id=prompt.pk)


@router.delete(
    "/repos/{owner}/{repo_name}/share", response={204: None}, summary="Stop sharing a prompt"
)
@requires("prompts:share")
def unshare_prompt(request, owner: str, repo_name: str):
    prompt = hub.prompt_by_handle(ws(request), owner, repo_name)
    sharing.unshare(actor=request.actor, obj=prompt)
    return Status(204, None)


# What a share link opens. Public: the token in the path is the credential; each read checks
# the link is live, and reads only the shared object and what is under it.


@router.get("/public/{uuid:share_token}/run", auth=None, response=RunOut, summary="A shared run")
@public
def shared_run(request, share_token: uuid.UUID):
    return sharing.shared_object(share_token, models.ShareLink.RUN)


@router.get(
    "/public/{uuid:share_token}/run/{uuid:run_id}",
    auth=None,
    response=RunOut,
    summary="A run under a shared run",
)
@public
def shared_child_run(request, share_token: uuid.UUID, run_id: uuid.UUID):
    run = sharing.shared_object(share_token, models.ShareLink.RUN)
    return get_object_or_404(sharing.runs_of_shared(run), pk=run_id)


@router.post(
    "/public/{uuid:share_token}/runs/query",
    auth=None,
    response=dict,
    summary="The runs under a shared run",
)
@public
def shared_runs_query(request, share_token: uuid.UUID, payload: SharedRunsQuery):
    run = sharing.shared_object(share_token, models.ShareLink.RUN)
    qs = sharing.runs_of_shared(run).order_by("start_time", "id")
    if payload.id:
        qs = qs.filter(pk__in=payload.id)
    offset = int(payload.cursor or 0)
    runs = list(qs[offset : offset + payload.limit + 1])
    more = len(runs) > payload.limit
    return {
        "runs": [RunOut.from_orm(r).dict() for r in runs[: payload.limit]],
        "cursors": {"next": str(offset + payload.limit) if more else None},
    }


@router.get(
    "/public/{uuid:share_token}/datasets",
    auth=None,
    response=DatasetOut,
    summary="A shared dataset",
)
@public
def shared_dataset(request, share_token: uuid.UUID):
    dataset = sharing.shared_object(share_token, models.ShareLink.DATASET)
    dataset.example_count = dataset.examples.count()
    return dataset


@router.get(
    "/public/{uuid:share_token}/examples",
    auth=None,
    response=list[ExampleOut],
    summary="The examples of a shared dataset",
)
@public
def shared_examples(request, share_token: uuid.UUID, filters: Query[SharedExamplesFilter]):
    dataset = sharing.shared_object(share_token, models.ShareLink.DATASET)
    qs = dataset.examples.order_by("created_at", "id")
    if filters.id:
        qs = qs.filter(pk__in=filters.id)
    return list(qs[filters.offset : filters.offset + filters.limit])


@router.get(
    "/public/{uuid:share_token}/prompt",
    auth=None,
    response=SharedPromptOut,
    summary="A shared prompt and its latest commit",
)
@public
def shared_prompt(request, share_token: uuid.UUID):
    prompt = sharing.shared_object(share_token, models.ShareLink.PROMPT)
    latest = prompt.commits.first()
    commit = None
    if latest is not None:
        commit = {
            "commit_hash": latest.commit_hash,
            "manifest": hub.manifest_of(latest),
            "examples": [],
            "description": latest.message,
        }
    return {
        "repo_handle": prompt.name,
        "description": prompt.description,
        "readme": prompt.readme,
        "tags": prompt.tags,
        "commit": commit,
    }


# Presigned feedback tokens


def _token_url(request, token) -> str:
    # The URL is under the API root the client called (/api/v1 or the bare server).
    prefix = "/api/v1" if request.path.startswith("/api/v1/") else ""
    return request.build_absolute_uri(f"{prefix}/feedback/tokens/{token}")


@router.post(
    "/feedback/tokens",
    response={201: FeedbackTokenOut | list[FeedbackTokenOut]},
    summary="Presigned URLs to record feedback without a key",
)
@requires("feedback:create")
def create_feedback_tokens(request, payload: FeedbackTokenRequests):
    many = not payload.single
    asked = payload.root
    made = sharing.create_feedback_tokens(
        actor=request.actor,
        workspace=ws(request),
        requests=[
            {
                "run_id": each.run_id,
                "feedback_key": each.feedback_key,
                "feedback_config": (
                    each.feedback_config.dict(exclude_none=True) if each.feedback_config else None
                ),
                "feedback_id": each.id,
                "expires_at": sharing.feedback_token_expiry(
                    expires_at=each.expires_at,
                    expires_in=each.expires_in.as_timedelta() if each.expires_in else None,
                ),
            }
            for each in asked
        ],
    )
    out = [
        {
            "id": raw,
            "url": _token_url(request, raw),
            "expires_at": row.expires_at,
            "run_id": row.run_id,
            "feedback_key": row.feedback_key,
        }
        for row, raw in made
    ]
    return Status(201, out if many else out[0])


@router.post(
    "/feedback/tokens/{uuid:feedback_token}",
    auth=None,
    response={201: dict},
    summary="Record feedback with a presigned token",
)
@public
def feedback_with_token(request, feedback_token: uuid.UUID, payload: FromTokenIn):
    feedback = sharing.feedback_from_token(token=feedback_token, **payload.dict())
    return Status(201, {"id": str(feedback.pk), "message": "Feedback recorded"})


@router.get(
    "/feedback/tokens/{uuid:feedback_token}",
    auth=None,
    response=dict,
    summary="Record feedback with a presigned token (a link: score, value, comment as a query)",
)
@public
def feedback_with_token_link(request, feedback_token: uuid.UUID, query: Query[FromTokenQuery]):
    feedback = sharing.feedback_from_token(token=feedback_token, **query.dict())
    return {"id": str(feedback.pk), "message": "Feedback recorded"}
