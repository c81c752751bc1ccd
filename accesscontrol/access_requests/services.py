"""Access requests: a person asks for what a 403 refused them; an admin approves (with a role
and, for workspaces, an expiry) or denies it. Every change is atomic and audited.

Who may decide is not written here: approving calls the same services the members page does
(add_workspace_member / change_workspace_role / change_org_role), which check that the actor
may grant that role there (the escalation rule lives once, in rbac/services.py). Seeing and
denying a request needs what managing those members needs.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.audit import services as audit
from accesscontrol.organizations import services as organizations
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Denied, as_actor
from accesscontrol.rbac.permissions import (
    ADMIN_EVERYWHERE_ROLES,
    ALL_PERMISSIONS,
    ORG_MANAGE,
    ORG_ROLES,
    SYSTEM_ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import compute_access, role_fields
from accesscontrol.rbac.services import check_role_assignable, roles_assignable_in
from accesscontrol.rbac.who_has_access import admins_of
from accesscontrol.workspaces import services as workspaces
from accesscontrol.workspaces.models import (
    Workspace,
    WorkspaceMembership,
    in_effect,
    role_in_effect_field,
)

MANAGE_MEMBERS = "workspaces:manage-members"
NOT_FOUND = "No such access request."


# --- what a 403 suggests -----------------------------------------------------------------------


def suggested_role(organization, code):
    """The weakest system role the organization may assign that grants `code` in a workspace
    (None for org-level codes)."""
    if code not in WORKSPACE_PERMISSIONS:
        return None
    assignable = roles_assignable_in(organization).filter(organization__isnull=True)
    for name in ("Viewer", "Editor", "Admin"):
        if code in SYSTEM_ROLE_PERMISSIONS[name] and (role := assignable.filter(name=name).first()):
            return role
    return None


def suggested_org_role(code):
    """The weakest org role that holds an org-level `code` (ORG_ROLES is strongest first)."""
    holding = [name for name, spec in ORG_ROLES.items() if code in spec.permissions]
    return holding[-1] if holding else None


def admins_to_ask(organization, workspace, code, limit=3) -> list[OrganizationMembership]:
    """People who can actually grant `code` here: the workspace's own admins able to grant it
    first, then the organization's admins (who can grant anything). One query for each group.
    A workspace admin whose own role cannot grant the code is not suggested."""
    people = []
    if workspace is not None and code in WORKSPACE_PERMISSIONS:
        rows = (
            WorkspaceMembership.objects.filter(workspace=workspace)
            .filter(in_effect())
            .exclude(org_membership__org_role__in=ADMIN_EVERYWHERE_ROLES)
            .select_related("org_membership__user", "role", "role_after_expiry")
            .order_by("org_membership__user__email")
        )
        for row in rows:
            role = row.role_in_effect()
            access = compute_access(
                org_role=row.org_membership.org_role,
                plan=organization.plan,
                archived=workspace.archived,
                **role_fields(role),
            )
            if {MANAGE_MEMBERS, code} <= access.grantable and MANAGE_MEMBERS in access.permissions:
                people.append(row.org_membership)
            if len(people) >= limit:
                break
    admins = admins_of(organization).select_related("user").order_by("user__email")[:limit]
    people += [m for m in admins if m not in people]
    for m in people:
        m.is_org_admin = ORG_ROLES[m.org_role].admin_everywhere
    return people


# --- who decides -------------------------------------------------------------------------------


def _require_decider(actor, access_request):
    """Deciding needs what granting there needs: member management in the workspace, or
    managing the organization for an org-level request."""
    if access_request.workspace_id is None:
        actor.require(ORG_MANAGE)
    else:
        actor.require(MANAGE_MEMBERS, workspace=access_request.workspace)


def _decided_workspace_ids(actor, organization, candidate_ids) -> set:
    """Of these workspaces, those whose requests the actor may decide."""
    workspaces = Workspace.objects.filter(organization=organization, pk__in=candidate_ids)
    if actor.holds(ORG_MANAGE):
        # Org managers are Admin everywhere, but an archived workspace is read-only for all.
        return set(workspaces.filter(archived=False).values_list("pk", flat=True))
    return {ws.pk for ws in workspaces if actor.access_in(ws).allows(MANAGE_MEMBERS)}


def requests_to_decide(actor, status=AccessRequest.PENDING):
    """The requests this actor may decide (pending ones by default), newest first."""
    actor = as_actor(actor)
    organization = actor.organization
    rows = AccessRequest.objects.in_organization(organization)
    if status:
        rows = rows.filter(status=status)
    candidates = set(
        rows.exclude(workspace=None).order_by().values_list("workspace_id", flat=True).distinct()
    )
    visible = _decided_workspace_ids(actor, organization, candidates)
    if actor.holds(ORG_MANAGE):
        rows = rows.filter(workspace_id__in=visible) | rows.filter(workspace=None)
    else:
        rows = rows.filter(workspace_id__in=visible)
    return rows.select_related("requester__user", "workspace", "role").order_by("-created_at")


def _decidable(requests):
    """Leaves out requests in archived workspaces: read-only, nobody may decide there (not even
    an org admin, compute_access), so they wait for nobody until the workspace is restored."""
    return requests.exclude(workspace__archived=True)


def pending_count(actor, waiting=None) -> int:
    """For the sidebar, on every page: how many requests wait for this actor. `waiting`, if
    the caller read it already, is how many wait in the whole organization (the sidebar's
    organization list counts them in its own query), so a page where nothing waits costs no
    query. An org manager decides them all; anyone else those of workspaces where their own
    grant lets them manage members (compute_access, the gate's rule, decides which)."""
    actor = as_actor(actor)
    if waiting == 0 or (actor.user is None and not actor.holds(ORG_MANAGE)):
        return 0
    pending = _decidable(AccessRequest.objects.in_organization(actor.organization).pending())
    if actor.holds(ORG_MANAGE):
        return waiting if waiting is not None else pending.count()
    organization = actor.organization
    mine = Q(workspace__memberships__org_membership__user=actor.user) & in_effect(
        "workspace__memberships__"
    )
    rows = pending.filter(mine).values_list(
        "workspace__archived",
        *(
            role_in_effect_field("workspace__memberships__", attr)
            for attr in ("name", "organization_id", "permissions")
        ),
    )
    return sum(
        compute_access(
            org_role=actor.access.org_role,
            plan=organization.plan,
            archived=archived,
            role_name=name,
            role_org_id=role_org,
            role_codes=codes,
        ).allows(MANAGE_MEMBERS)
        for archived, name, role_org, codes in rows
    )


def pending_in_organizations():
    """An annotation for organization memberships: how many requests wait in each one's
    organization (read with the sidebar's list of organizations, in the same query)."""
    waiting = (
        _decidable(AccessRequest.objects.filter(organization=OuterRef("organization")).pending())
        .order_by()
        .values("organization")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(waiting), 0)


def own_requests(actor):
    """The requests the actor (a person) made in its organization, newest first."""
    actor = as_actor(actor)
    if actor.user is None:
        return AccessRequest.objects.none()
    return (
        AccessRequest.objects.in_organization(actor.organization)
        .filter(requester__user=actor.user)
        .select_related("workspace", "role", "requester__user")
        .order_by("-created_at")
    )


def request_by_id(actor, request_id) -> AccessRequest:
    """A request the actor made or may decide; anything else (another organization's too) is
    not found, so ids do not leak."""
    actor = as_actor(actor)
    found = (
        AccessRequest.objects.in_organization(actor.organization)
        .select_related("requester__user", "workspace__organization", "role", "organization")
        .filter(pk=request_id)
        .first()
    )
    if found is None:
        raise ValidationError(NOT_FOUND, code="not_found")
    if actor.user is not None and found.requester.user_id == actor.user.pk:
        return found
    try:
        _require_decider(actor, found)
    except ValidationError:
        raise ValidationError(NOT_FOUND, code="not_found") from None
    return found


# --- changes -----------------------------------------------------------------------------------


def workspace_named(actor, field, **lookup):
    """The actor's organization's workspace a request names (by `pk` or `slug`), or the form
    error on `field`: the console and the API name it differently, and refuse it alike."""
    workspace = Workspace.objects.filter(organization=actor.organization, **lookup).first()
    if workspace is None:
        raise ValidationError({field: "No such workspace."})
    return workspace


def create_access_request(
    *, actor, workspace=None, permission="", role=None, reason, workspace_field="workspace"
):
    """A person (signed in, or through their personal access token) asks for `permission`
    and/or `role` in `workspace` (None: an org-level permission). Admins who can grant it are
    emailed. `workspace_field`: what the caller calls the workspace (the console's form field,
    the API's `workspace_id`), which the errors about it name, as workspace_named's do."""
    actor = as_actor(actor)
    organization = actor.organization
    if actor.user is None or actor.is_system:
        workspace_id = str(actor.workspace.pk) if actor.workspace is not None else None
        raise Denied(
            "Only people request access; a service key acts for no person. A key's role never "
            "changes: a workspace admin makes a new key with the role it needs.",
            {
                "required": "a person (signed in, or a personal access token)",
                "principal": actor.label,
                "role": actor.access.role,
                "workspace": workspace_id,
            },
        )
    requester = OrganizationMembership.objects.filter(
        organization=organization, user=actor.user
    ).first()
    if requester is None:
        raise ValidationError(NOT_FOUND, code="not_found")
    permission = (permission or "").strip()
    reason = (reason or "").strip()
    errors = {}
    if permission and permission not in ALL_PERMISSIONS:
        errors["permission"] = f"Unknown permission {permission!r}."
    if not permission and role is None:
        errors["permission"] = "Name the permission or the role you need."
    if not reason:
        errors["reason"] = "Say why you need it: the admins decide on this."
    elif len(reason) > 1000 or "\x00" in reason:
        errors["reason"] = "Keep the reason under 1000 characters of text."
    if workspace is None and (role is not None or permission in WORKSPACE_PERMISSIONS):
        errors[workspace_field] = "A workspace role or permission needs its workspace."
    if workspace is not None and permission and permission not in WORKSPACE_PERMISSIONS:
        errors["permission"] = f"{permission} is an organization permission, not a workspace one."
    if errors:
        raise ValidationError(errors)
    if workspace is not None and workspace.organization_id != organization.pk:
        raise ValidationError("No such workspace.", code="not_found")
    if workspace is not None and workspace.archived:
        # Read-only: nobody may grant anything there, so the request would wait for nobody.
        archived = f"{workspace.name} is archived (read-only); nothing is granted there."
        raise ValidationError({workspace_field: archived})
    if role is not None:
        check_role_assignable(role, organization)
    held = actor.access_in(workspace) if workspace is not None else actor.access
    if permission and held.allows(permission) and role is None:
        raise ValidationError(
            {"permission": f"You already have {permission} here."}, code="duplicate"
        )
    with transaction.atomic():
        # One open request per person and place: asking again does not flood the admins.
        OrganizationMembership.objects.select_for_update().filter(pk=requester.pk).first()
        open_ = AccessRequest.objects.pending().filter(requester=requester, workspace=workspace)
        if open_.exists():
            raise ValidationError(
                "You already have a pending request here; an admin will decide on it.",
                code="duplicate",
            )
        access_request = AccessRequest.objects.create(
            organization=organization,
            workspace=workspace,
            requester=requester,
            permission=permission,
            role=role,
            reason=reason,
        )
        audit.record(
            actor,
            "access_request.created",
            access_request,
            organization=organization,
            workspace=workspace,
            target_label=actor.user.email,
            after={
                "permission": permission or None,
                "role": role.name if role else None,
                "reason": reason,
            },
        )
        deciders = admins_to_ask(organization, workspace, permission or MANAGE_MEMBERS, limit=20)
        emails = [m.user.email for m in deciders if m.user_id != actor.user.pk]
        transaction.on_commit(lambda: _email_deciders(access_request, emails))
    return access_request


def approve_access_request(
    *, actor, access_request, role=None, org_role=None, expiry="permanent", note=""
):
    """Grant what was asked (or `role` / `org_role`, as the approver chooses), for good or
    until the chosen expiry. Refused if the actor may not grant that role there."""
    actor = as_actor(actor, access_request.organization)
    _require_decider(actor, access_request)
    note = _clean_note(note)
    expires_at = workspaces.expiry_from_choice(expiry)
    with transaction.atomic():
        locked = _lock_pending(access_request)
        requester = locked.requester
        if locked.workspace_id is None:
            if expires_at is not None:
                raise ValidationError(
                    {"expiry": "Organization roles cannot be time-bound: choose Permanent."}
                )
            org_role = org_role or suggested_org_role(locked.permission)
            organizations.change_org_role(actor=actor, membership=requester, org_role=org_role)
            granted = f"organization {org_role}"
        else:
            workspace = locked.workspace
            role = role or locked.role or suggested_role(locked.organization, locked.permission)
            if role is None:
                raise ValidationError({"role": "Choose the role to grant."})
            current = (
                WorkspaceMembership.objects.filter(org_membership=requester, workspace=workspace)
                .filter(in_effect())
                .select_related("role", "role_after_expiry")
                .first()
            )
            if current is None:
                workspaces.add_workspace_member(
                    actor=actor,
                    workspace=workspace,
                    user=requester.user,
                    role=role,
                    expires_at=expires_at,
                )
            else:
                # A time-bound approval for a member with a permanent role is a temporary
                # upgrade: at expiry they are back to that role (an upgrade already running
                # keeps the role it falls back to). A time-bound member stays time-bound.
                then_role = workspaces.KEEP
                if expires_at is not None:
                    if current.role_after_expiry_id is not None:
                        then_role = current.role_after_expiry
                    elif current.expires_at is None:
                        then_role = current.role
                workspaces.change_workspace_role(
                    actor=actor,
                    membership=current,
                    role=role,
                    expires_at=expires_at,
                    then_role=then_role,
                )
            granted = role.name
        _decide(actor, locked, AccessRequest.APPROVED, note, granted, expires_at)
    return locked


def deny_access_request(*, actor, access_request, note=""):
    actor = as_actor(actor, access_request.organization)
    _require_decider(actor, access_request)
    note = _clean_note(note)
    with transaction.atomic():
        locked = _lock_pending(access_request)
        _decide(actor, locked, AccessRequest.DENIED, note, "", None)
    return locked


def _clean_note(note):
    note = (note or "").strip()
    if len(note) > 1000 or "\x00" in note:
        raise ValidationError({"note": "Keep the note under 1000 characters of text."})
    return note


def _lock_pending(access_request) -> AccessRequest:
    locked = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("requester__user", "workspace__organization", "organization", "role")
        .get(pk=access_request.pk)
    )
    if locked.status != AccessRequest.PENDING:
        raise ValidationError(
            f"This request was already {locked.status} by {locked.decided_by_label}.",
            code="decided",
        )
    return locked


def _decide(actor, locked, status, note, granted, expires_at):
    locked.status, locked.note, locked.granted, locked.expires_at = (
        status,
        note,
        granted,
        expires_at,
    )
    locked.decided_at = timezone.now()
    locked.decided_by = actor.user
    locked.decided_by_label = actor.label
    locked.save(
        update_fields=[
            "status",
            "note",
            "granted",
            "expires_at",
            "decided_at",
            "decided_by",
            "decided_by_label",
        ]
    )
    after = {"status": status, "note": note or None}
    if status == AccessRequest.APPROVED:
        after |= {"role": granted, "expires_at": expires_at.isoformat() if expires_at else None}
    audit.record(
        actor,
        f"access_request.{status}",
        locked,
        organization=locked.organization,
        workspace=locked.workspace,
        target_label=locked.requester.user.email,
        before={"status": AccessRequest.PENDING},
        after=after,
    )
    transaction.on_commit(lambda: _email_requester(locked))


# --- mail --------------------------------------------------------------------------------------


def _where(access_request) -> str:
    if access_request.workspace_id is None:
        return access_request.organization.name
    return f"{access_request.workspace.name} ({access_request.organization.name})"


def _link(name, access_request) -> str:
    return settings.SITE_URL + reverse(name, args=[access_request.organization.slug])


def _email_deciders(access_request, emails):
    if not emails:
        return
    who = access_request.requester.user.email
    send_mail(
        subject=f"{who} requests access to {_where(access_request)}",
        message=(
            f"{who} asks for {access_request.asked_for} in {_where(access_request)}.\n\n"
            f"Reason: {access_request.reason}\n\n"
            f"Approve or deny it: {_link('access-requests', access_request)}"
        ),
        from_email=None,
        recipient_list=emails,
    )


def _email_requester(access_request):
    if access_request.status == AccessRequest.APPROVED:
        outcome = f"approved: you are now {access_request.granted}"
        if access_request.expires_at:
            outcome += f" until {access_request.expires_at:%Y-%m-%d %H:%M} UTC"
    else:
        outcome = "denied"
    note = (
        f"\n\nNote from {access_request.decided_by_label}: {access_request.note}"
        if access_request.note
        else ""
    )
    send_mail(
        subject=f"Your access request for {_where(access_request)} was {access_request.status}",
        message=(
            f"{access_request.decided_by_label} {outcome} in {_where(access_request)}.{note}\n\n"
            f"Your requests: {_link('my-access-requests', access_request)}"
        ),
        from_email=None,
        recipient_list=[access_request.requester.user.email],
    )
