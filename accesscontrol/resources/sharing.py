"""Share links and presigned feedback tokens: capabilities handed out of the workspace.

Share links (`runs:share`, `datasets:share`, `prompts:share`) give anyone holding the token a
read-only view of one run (with the runs under it), one dataset (with its examples) or one
prompt (with its latest commit), and nothing else of the workspace. Creating and revoking one
is an access change, so both are audited; a revoked link, or one into an archived workspace, is
refused on its next request.

A presigned feedback token (`feedback:create`) lets a browser record one piece of feedback on
one run without an API key, until it expires; it is single-use, and only its digest is stored.
"""

import datetime
import hashlib
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from accesscontrol import writes
from accesscontrol.audit import services as audit
from accesscontrol.resources import models, services

KIND_OF = {
    models.Run: models.ShareLink.RUN,
    models.Dataset: models.ShareLink.DATASET,
    models.Prompt: models.ShareLink.PROMPT,
}
MODEL_OF = {kind: model for model, kind in KIND_OF.items()}
PERMISSION = {kind: f"{MODEL_OF[kind]._meta.model_name}s:share" for kind in MODEL_OF}

FEEDBACK_TOKEN_DEFAULT = datetime.timedelta(hours=3)  # the SDK's default too
FEEDBACK_TOKEN_MAX = datetime.timedelta(days=365)


def _label(obj) -> str:
    return f"{KIND_OF[type(obj)]} {getattr(obj, 'name', obj.pk)}"


# Share links: reads


def live_link(obj) -> models.ShareLink | None:
    return (
        models.ShareLink.objects.in_workspace(obj.workspace)
        .filter(kind=KIND_OF[type(obj)], object_id=obj.pk, revoked_at__isnull=True)
        .first()
    )


def shared_object(token, kind):
    """The object a live link of `kind` shares; a revoked, unknown or other-kind token, or a
    link into an archived workspace, is a 404."""
    link = (
        models.ShareLink.objects.select_related("workspace")
        .filter(token=token, kind=kind, revoked_at__isnull=True, workspace__archived=False)
        .first()
    )
    if link is None:
        raise Http404("No such share link.")
    found = MODEL_OF[kind].objects.in_workspace(link.workspace).filter(pk=link.object_id).first()
    if found is None:
        raise Http404("No such share link.")
    return found


def runs_of_shared(run):
    """The shared run and the runs under it: the whole trace when it is the trace's root.

    trace_id and dotted_order are written by the client: only a root whose trace is its own
    opens the trace, and only a dotted_order that ends with the run's own id opens the runs
    below it (a whole segment further), so a malformed one never opens its parents."""
    runs = models.Run.objects.in_workspace(run.workspace).filter(trace_id=run.trace_id)
    if run.parent_run_id is None and run.trace_id == run.pk:
        return runs
    own = run.dotted_order.rsplit(".", 1)[-1]
    if own.endswith((str(run.pk), run.pk.hex)):
        return runs.filter(Q(pk=run.pk) | Q(dotted_order__startswith=f"{run.dotted_order}."))
    return runs.filter(pk=run.pk)


# Share links: writes


def _check_token(token) -> uuid.UUID:
    # The token is the capability: one the client chooses must be as unguessable as ours.
    if token.version != 4 or token.variant != uuid.RFC_4122:
        raise ValidationError({"share_token": "A share token must be a random (version 4) UUID."})
    return token


def share(*, actor, obj, token=None) -> tuple[models.ShareLink, bool]:
    """The object's live share link, made if it has none (with `token`, when given). Returns
    (link, created)."""
    kind = KIND_OF[type(obj)]
    actor.require(PERMISSION[kind], workspace=obj.workspace)
    token = uuid.uuid4() if token is None else _check_token(token)
    with transaction.atomic():
        existing = live_link(obj)
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                link = models.ShareLink.objects.create(
                    workspace=obj.workspace,
                    kind=kind,
                    object_id=obj.pk,
                    token=token,
                    created_by=actor.label,
                )
        except IntegrityError:
            # Shared at the same moment by another request: its link is the object's link.
            existing = live_link(obj)
            if existing is not None:
                return existing, False
            raise ValidationError(
                {"share_token": ValidationError("That token is taken.", code="duplicate")}
            ) from None
        audit.record(
            actor,
            "share_link.created",
            link,
            workspace=obj.workspace,
            after={"kind": kind, "object_id": str(obj.pk)},
            target_label=_label(obj),
        )
    return link, True


def unshare(*, actor, obj) -> bool:
    """Revoke the object's live link; False when it had none (nothing changes)."""
    kind = KIND_OF[type(obj)]
    actor.require(PERMISSION[kind], workspace=obj.workspace)
    with transaction.atomic():
        link = (
            models.ShareLink.objects.select_for_update()
            .in_workspace(obj.workspace)
            .filter(kind=kind, object_id=obj.pk, revoked_at__isnull=True)
            .first()
        )
        if link is None:
            return False
        writes.save(
            actor,
            link,
            "share_link.revoked",
            {"revoked_at": timezone.now()},
            workspace=obj.workspace,
            before={"kind": kind, "object_id": str(obj.pk)},
            target_label=_label(obj),
        )
    return True


# Presigned feedback tokens


def _digest(token: uuid.UUID) -> str:
    return hashlib.sha256(token.bytes).hexdigest()


def feedback_token_expiry(*, expires_at=None, expires_in=None, now=None) -> datetime.datetime:
    """When a token asked for with `expires_at` or `expires_in` (a timedelta) expires."""
    now = now or timezone.now()
    if expires_at is not None and expires_in is not None:
        raise ValidationError({"expires_at": "Give expires_at or expires_in, not both."})
    field = "expires_at" if expires_at is not None else "expires_in"
    when = expires_at if expires_at is not None else now + (expires_in or FEEDBACK_TOKEN_DEFAULT)
    if when <= now:
        raise ValidationError({field: "The token would be expired already."})
    if when > now + FEEDBACK_TOKEN_MAX:
        raise ValidationError({field: f"A token lives at most {FEEDBACK_TOKEN_MAX.days} days."})
    return when


def create_feedback_tokens(
    *, actor, workspace, requests
) -> list[tuple[models.FeedbackToken, uuid.UUID]]:
    """One token per request (dicts of run_id, feedback_key, feedback_config, feedback_id,
    expires_at); returns (token row, raw token) pairs, the raw token shown once. The run may not
    be ingested yet (the SDK makes tokens right after tracing), as with feedback itself."""
    actor.require("feedback:create", workspace=workspace)
    for request in requests:  # a token whose feedback would be refused is no use to anyone
        services._check_feedback_key(request["feedback_key"], field="feedback_key")
    made = []
    with transaction.atomic():
        for request in requests:
            raw = uuid.uuid4()
            row = models.FeedbackToken.objects.create(
                workspace=workspace,
                digest=_digest(raw),
                run_id=request["run_id"],
                feedback_key=request["feedback_key"],
                feedback_config=request.get("feedback_config"),
                feedback_id=request.get("feedback_id") or uuid.uuid4(),
                expires_at=request["expires_at"],
                created_by=actor.label,
            )
            audit.record(
                actor,
                "feedback_token.created",
                row,
                workspace=workspace,
                after={
                    "run_id": str(row.run_id),
                    "feedback_key": row.feedback_key,
                    "expires_at": row.expires_at.isoformat(),
                },
                target_label=f"feedback token for {row.feedback_key}",
            )
            made.append((row, raw))
    return made


def _check_score(config, score) -> None:
    """The token's feedback_config bounds what its holder may score (as LangSmith's server
    does): a continuous score within min and max, a categorical one among the categories."""
    if not config or score is None:
        return
    score = float(score)
    if config.get("type") == "continuous":
        low, high = config.get("min"), config.get("max")
        if (low is not None and score < low) or (high is not None and score > high):
            raise ValidationError({"score": f"The score must be within [{low}, {high}]."})
    elif config.get("type") == "categorical" and config.get("categories"):
        allowed = [c["value"] for c in config["categories"]]
        if score not in allowed:
            raise ValidationError({"score": f"The score must be one of {allowed}."})


def feedback_from_token(
    *, token, score=None, value=None, comment=None, correction=None, metadata=None
) -> models.Feedback:
    """Record the token's feedback: the token is the authority (it was made by someone holding
    feedback:create there). Unknown: 404; expired or used: 410, nothing written."""
    with transaction.atomic():
        row = (
            # Only the token's row: the workspace's row is not for a public request to lock.
            models.FeedbackToken.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .filter(digest=_digest(token), workspace__archived=False)
            .first()
        )
        if row is None:
            raise Http404("No such feedback token.")
        if row.used_at is not None:
            raise ValidationError("This feedback token has been used.", code="token_used")
        if row.expires_at <= timezone.now():
            raise ValidationError("This feedback token has expired.", code="token_expired")
        _check_score(row.feedback_config, score)
        row.used_at = timezone.now()
        row.save(update_fields=["used_at"])
        project_id, trace_id = (
            models.Run.objects.in_workspace(row.workspace)
            .filter(pk=row.run_id)
            .values_list("project_id", "trace_id")
            .first()
        ) or (None, row.run_id)
        return services._save_feedback(
            feedback_id=row.feedback_id,
            workspace=row.workspace,
            run_id=row.run_id,
            trace_id=trace_id,
            project_id=project_id,
            key=row.feedback_key,
            score=None if score is None else float(score),
            value=value,
            comment=comment or "",
            correction=correction,
            source={"type": "presigned_url", "metadata": metadata or {}},
        )
