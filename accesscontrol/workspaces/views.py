from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import console
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.organizations.services import org_members
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ADMIN_EVERYWHERE_ROLES, permission_matrix
from accesscontrol.rbac.resolver import REASONS
from accesscontrol.rbac.services import NoSuchRole, role_by_id
from accesscontrol.workspaces import services

# Permissions that let a member manage the workspace: a role change adding one is confirmed.
MANAGING = frozenset({"workspaces:manage", "workspaces:manage-members"})


@requires("workspaces:read")
@require_GET
def workspace_home(request, org_slug, workspace_slug):
    access = request.access
    return render(
        request,
        "workspaces/home.html",
        {
            "matrix": permission_matrix(access.permissions),
            "reason": REASONS.get(access.reason, "").format(plan=request.organization.plan),
        },
    )


MEMBERS = console.Listing(
    sorts={
        "name": (
            "Member",
            ("org_membership__user__full_name", "org_membership__user__email"),
        ),
        "role": ("Role", ("role__name", "org_membership__user__email")),
        "added": ("Added", ("created_at",)),
    },
    default="name",
    search=("org_membership__user__email", "org_membership__user__full_name"),
)


@requires("workspaces:read")
@require_GET
def workspace_members(request, org_slug, workspace_slug):
    can_manage = "workspaces:manage-members" in request.access.permissions
    return console.members_page(
        request,
        "workspaces/members.html",
        services.workspace_members(request.actor, request.workspace),
        MEMBERS,
        org_admins=org_members(request.actor).filter(org_role__in=ADMIN_EVERYWHERE_ROLES),
        can_manage=can_manage,
        roles=services.grantable_roles(request.actor, request.workspace) if can_manage else [],
        plan_makes_admin=not request.organization.has_workspace_rbac,
    )


def _chosen_role(request):
    """The role picked in the posted form; refused unless it is one of this organization's."""
    try:
        return role_by_id(request.actor, request.POST.get("role", ""))
    except NoSuchRole:
        raise ValidationError("Choose one of the roles offered.") from None


def _members_url(request):
    return reverse("workspace-members", args=[request.organization.slug, request.workspace.slug])


def _membership(request, member_id):
    return get_object_or_404(
        services.workspace_members(request.actor, request.workspace), pk=member_id
    )


class AddMemberForm(forms.Form):
    email = forms.CharField(label="Email", max_length=254)
    role = forms.ModelChoiceField(label="Role", queryset=Role.objects.none())
    expiry = forms.ChoiceField(
        label="Access lasts",
        required=False,
        choices=[(k, label) for k, (label, _) in services.EXPIRY_CHOICES.items()],
        initial="permanent",
        help_text="A time-bound grant ends by itself: the person loses the role at that moment.",
    )

    def __init__(self, workspace, grantable, *args, suggestions_url, **kwargs):
        super().__init__(*args, **kwargs)
        # Search as you type: htmx fetches the matching members into #member-suggestions.
        self.fields["email"].widget = forms.EmailInput(
            attrs={
                "autocomplete": "off",
                "aria-controls": "member-suggestions",
                "hx-get": suggestions_url,
                "hx-trigger": "input changed delay:300ms",
                "hx-target": "#member-suggestions",
                "hx-swap": "outerHTML",
            }
        )
        self.fields["email"].help_text = "Type part of their name or email to pick them."
        roles = services.assignable_roles(workspace.organization).filter(
            pk__in=[r.pk for r in grantable]
        )
        self.fields["role"].queryset = roles
        self.fields["role"].initial = next((r for r in grantable if r.name == "Viewer"), None)


def _suggestions_url(request):
    return reverse(
        "workspace-member-suggestions", args=[request.organization.slug, request.workspace.slug]
    )


@requires("workspaces:manage-members")
@require_http_methods(["GET", "POST"])
@sudo_required
def workspace_member_add(request, org_slug, workspace_slug):
    form = AddMemberForm(
        request.workspace,
        services.grantable_roles(request.actor, request.workspace),
        request.POST or None,
        suggestions_url=_suggestions_url(request),
        # A picked suggestion opens the dialog with its address filled in.
        initial={"email": request.GET.get("email", "")[:254]},
    )

    def add(data):
        # The API's lookup: one refusal whether the address is unknown or someone else's.
        user = services.org_member_by_email(request.organization, data["email"])
        role = data["role"]
        services.add_workspace_member(
            actor=request.actor,
            workspace=request.workspace,
            user=user,
            role=role,
            expires_at=services.expiry_from_choice(data["expiry"] or "permanent"),
        )
        message = f"{user.email} joined {request.workspace.name} as {role.name}."
        return message, _members_url(request)

    return console.saved(request, form, add) or console.form_page(
        request, "workspaces/member_add.html", form
    )


@requires("workspaces:manage-members")
@require_GET
def workspace_member_suggestions(request, org_slug, workspace_slug):
    """Members who may be added (services.members_to_add), matching the typed text."""
    text = request.GET.get("email", "").replace("\x00", "").strip()[:200]
    people = services.members_to_add(request.actor, request.workspace, text)
    return render(
        request, "workspaces/member_add.html#suggestions", {"people": people, "text": text}
    )


def _is_promotion(request, before, after) -> bool:
    """A change the actor may make that lets the person manage the workspace (its members,
    settings or keys): asked for before it is made. One beyond the actor is refused at once."""
    grantable = after.permission_set <= request.actor.access_in(request.workspace).grantable
    return grantable and bool((after.permission_set - before.permission_set) & MANAGING)


@requires("workspaces:manage-members")
@require_POST
@sudo_required(return_to=lambda request: _members_url(request))
def workspace_member_role(request, org_slug, workspace_slug, member_id):
    membership = _membership(request, member_id)
    error = None
    try:
        role = _chosen_role(request)
        if _is_promotion(request, membership.role, role) and not request.POST.get("confirmed"):
            return console.confirm_promotion(
                request,
                who=membership.org_membership.user.email,
                role_label=role.name,
                can_do=role.description or ", ".join(sorted(role.permission_set)),
                row_id=f"ws-member-{membership.pk}",
                fields={"role": role.pk},
                cancel_url=_members_url(request),
            )
        membership = services.change_workspace_role(
            actor=request.actor, membership=membership, role=role
        )
    except ValidationError as exc:
        error = console.errors_of(exc)
        membership = _membership(request, member_id)
    email = membership.org_membership.user.email
    return console.row_changed(
        request,
        "workspaces/members.html#member-row",
        lambda: {
            "m": membership,
            "can_manage": True,
            "roles": services.grantable_roles(request.actor, request.workspace),
        },
        error or f"{email} is now {membership.role.name} in {request.workspace.name}.",
        _members_url(request),
        error,
    )


@requires("workspaces:manage-members")
@require_POST
@sudo_required(return_to=lambda request: _members_url(request))
def workspace_members_bulk_role(request, org_slug, workspace_slug):
    ids = [value for value in request.POST.getlist("members") if console.is_uuid(value)]
    memberships = list(
        services.workspace_members(request.actor, request.workspace).filter(pk__in=ids)
    )
    try:
        if not memberships:
            raise ValidationError("Select at least one member.")
        role = _chosen_role(request)
        changed = services.change_workspace_roles(
            actor=request.actor, memberships=memberships, role=role
        )
    except ValidationError as exc:
        message = f"Nothing was changed: {console.errors_of(exc)}"
        return console.done(request, message, _members_url(request), messages.ERROR)
    return console.done(
        request,
        f"{changed} member{'s' if changed != 1 else ''} now {role.name} "
        f"({len(memberships) - changed} already were).",
        _members_url(request),
    )


@requires("workspaces:manage-members")
@require_http_methods(["GET", "POST"])
def workspace_member_remove(request, org_slug, workspace_slug, member_id):
    membership = _membership(request, member_id)
    email = membership.org_membership.user.email
    return console.confirm_then(
        request,
        lambda: services.remove_workspace_member(actor=request.actor, membership=membership),
        success=f"{email} was removed from {request.workspace.name}.",
        cancel_url=_members_url(request),
        title=f"Remove {email} from {request.workspace.name}?",
        message="They lose their role here at once; they stay in the organization.",
        consequences=["Their personal access tokens stop working in this workspace."],
        confirm_label=f"Remove {email}",
        cancel_label="Keep member",
    )


class WorkspaceSettingsForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)


@requires("workspaces:manage")
@require_http_methods(["GET", "POST"])
def workspace_settings(request, org_slug, workspace_slug):
    workspace = request.workspace
    form = WorkspaceSettingsForm(request.POST or None, initial={"name": workspace.name})

    def rename(data):
        services.update_workspace(actor=request.actor, workspace=workspace, name=data["name"])
        return "Workspace renamed.", request.path

    can_archive = "organization:manage" in request.access.permissions
    return console.saved(request, form, rename) or console.form_page(
        request, "workspaces/settings.html", form, {"can_archive": can_archive}, fragment=None
    )


@requires("workspaces:manage", "organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def workspace_archive(request, org_slug, workspace_slug):
    workspace = request.workspace
    settings_url = reverse("workspace-settings", args=[org_slug, workspace_slug])
    archive = not workspace.archived
    if archive:
        confirmation = {
            "title": f"Archive {workspace.name}?",
            "message": "Everything in it becomes read-only for everyone, keys included.",
            "consequences": ["Nothing is deleted; you can restore it from this page."],
            "confirm_label": "Archive workspace",
        }
    else:
        confirmation = {
            "title": f"Restore {workspace.name}?",
            "message": "Members and keys get their full roles back at once.",
            "confirm_label": "Restore workspace",
        }
    return console.confirm_then(
        request,
        lambda: services.update_workspace(
            actor=request.actor, workspace=workspace, archived=archive
        ),
        success=f"{workspace.name} was {'archived' if archive else 'restored'}.",
        cancel_url=settings_url,
        **confirmation,
    )


class DeleteWorkspaceForm(forms.Form):
    confirmation = forms.CharField(label="Type the workspace's name to confirm", max_length=100)


@requires("workspaces:manage", "organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def workspace_delete(request, org_slug, workspace_slug):
    workspace = request.workspace
    form = DeleteWorkspaceForm(request.POST or None)

    def delete(data):
        services.delete_workspace(
            actor=request.actor, workspace=workspace, confirmation=data["confirmation"]
        )
        message = f"{workspace.name} and everything in it was deleted."
        return message, reverse("org-workspaces", args=[org_slug])

    return console.saved(request, form, delete) or console.form_page(
        request, "workspaces/delete.html", form
    )
