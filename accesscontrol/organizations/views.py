from allauth.account.utils import perform_login
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q, prefetch_related_objects
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import console, throttle
from accesscontrol.accounts import mfa
from accesscontrol.accounts.models import User
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.apikeys import ip_allow_lists
from accesscontrol.apikeys.forms import IpAllowListForm, as_text
from accesscontrol.organizations import services
from accesscontrol.organizations.models import OrgRole, Plan
from accesscontrol.organizations.services import accept_invitation as accept_invitation_service
from accesscontrol.organizations.services import find_invitation
from accesscontrol.rbac.gate import public, requires
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ADMIN_EVERYWHERE_ROLES
from accesscontrol.rbac.permissions import org_role as org_role_spec
from accesscontrol.reviews.services import overdue_campaigns
from accesscontrol.workspaces import services as workspace_services
from accesscontrol.workspaces.models import (
    Workspace,
    WorkspaceMembership,
    in_effect,
)


@requires("organization:read")
@require_GET
def org_overview(request, org_slug):
    org = request.organization
    counts = org.memberships.aggregate(
        members=Count("id"), admins=Count("id", filter=Q(org_role__in=ADMIN_EVERYWHERE_ROLES))
    )
    return render(
        request,
        "organizations/overview.html",
        {
            "counts": counts,
            "workspace_count": org.workspaces.filter(archived=False).count(),
            "workspaces": workspace_services.enterable_workspaces(request.actor),
            "overdue_reviews": overdue_campaigns(request.actor, request.organization),
        },
    )


MEMBERS = console.Listing(
    sorts={
        "name": ("Member", ("user__full_name", "user__email")),
        "role": ("Organization role", ("org_role", "user__email")),
        "joined": ("Joined", ("created_at",)),
    },
    default="name",
    search=("user__email", "user__full_name"),
)
INVITATIONS = console.Listing(
    sorts={
        "email": ("Email", ("email",)),
        "role": ("Role", ("org_role", "email")),
        "invited_by": ("Invited by", ("created_by_label", "email")),
        "expires": ("Expires", ("expires_at",)),
    },
    default="email",
    search=("email", "created_by_label"),
    per_page=20,
    prefix="inv_",
)


@requires("organization:read")
@require_GET
def org_members(request, org_slug):
    can_manage = "organization:manage" in request.access.permissions
    invitations, pending = None, ()
    if can_manage and not request.htmx:
        invitations = console.listed(
            request, services.pending_invitations(request.actor), INVITATIONS
        )
        # Each with the workspaces accepting it adds the person to (as its link's page says).
        pending = [(inv, services.invited_workspaces(inv)) for inv in invitations.page]
    return console.members_page(
        request,
        "organizations/members.html",
        services.org_members(request.actor).prefetch_related(_workspaces_held()),
        MEMBERS,
        invitations=invitations,
        pending=pending,
        can_manage=can_manage,
        org_roles=OrgRole.choices,
    )


def _workspaces_held():
    """Each member's workspaces as `workspaces_held`, read as the resolver reads them: an ended
    grant is none, an ended upgrade its fallback role (the row shows `role_in_effect`)."""
    return Prefetch(
        "workspace_memberships",
        queryset=WorkspaceMembership.objects.filter(in_effect())
        .select_related("workspace", "role", "role_after_expiry")
        .order_by("workspace__name"),
        to_attr="workspaces_held",
    )


def _members_url(org):
    return reverse("org-members", args=[org.slug])


def _member(request, member_id):
    return get_object_or_404(services.org_members(request.actor), pk=member_id)


@requires("organization:manage")
@require_POST
@sudo_required
def org_member_role(request, org_slug, member_id):
    """Inline change of an organization role: htmx swaps the row, or a plain form redirects."""
    org = request.organization
    membership = _member(request, member_id)
    org_role = request.POST.get("org_role", "")
    promoted, before = org_role_spec(org_role), org_role_spec(membership.org_role)
    # A promotion the actor may make is asked first; one beyond them is refused at once below.
    promotion = promoted and promoted.admin_everywhere and not before.admin_everywhere
    if (
        promotion
        and promoted.permissions <= request.actor.grantable
        and not request.POST.get("confirmed")
    ):
        return console.confirm_promotion(
            request,
            who=membership.user.email,
            role_label=f"organization {promoted.label.lower()}",
            can_do=promoted.description,
            row_id=f"member-{membership.pk}",
            fields={"org_role": org_role},
            cancel_url=_members_url(org),
        )
    error = None
    try:
        membership = services.change_org_role(
            actor=request.actor, membership=membership, org_role=org_role
        )
    except ValidationError as exc:
        error = console.errors_of(exc)
        current = services.org_members(request.actor).filter(pk=member_id).first()
        if current is None:  # removed by someone else meanwhile: the row has nothing to show
            return console.done(request, error, _members_url(org), messages.ERROR)
        membership = current

    def row():
        prefetch_related_objects([membership], _workspaces_held())
        return {"m": membership, "can_manage": True, "org_roles": OrgRole.choices}

    return console.row_changed(
        request,
        "organizations/members.html#member-row",
        row,
        error or f"{membership.user.email} is now {membership.get_org_role_display().lower()}.",
        _members_url(org),
        error,
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
def org_member_remove(request, org_slug, member_id):
    org = request.organization
    membership = _member(request, member_id)
    consequences = []
    if request.method == "GET":
        tokens = membership.personal_access_tokens.filter(revoked_at__isnull=True).count()
        workspaces = membership.workspace_memberships.filter(in_effect()).count()
        consequences = [
            f"Their membership in {workspaces} workspace(s) ends.",
            f"Their {tokens} active personal access token(s) are deleted.",
            "Service keys they created keep working.",
        ]
    return console.confirm_then(
        request,
        lambda: services.remove_org_member(actor=request.actor, membership=membership),
        success=f"{membership.user.email} was removed from {org.name}.",
        cancel_url=_members_url(org),
        title=f"Remove {membership.user.email}?",
        message=f"They lose access to {org.name} at once.",
        consequences=consequences,
        confirm_label=f"Remove {membership.user.email}",
        cancel_label="Keep member",
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    org_role = forms.ChoiceField(
        label="Organization role", choices=OrgRole.choices, initial=OrgRole.MEMBER
    )
    workspaces = forms.ModelMultipleChoiceField(
        label="Workspaces",
        queryset=Workspace.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    workspace_role = forms.ModelChoiceField(
        label="Role in those workspaces", queryset=Role.objects.none(), required=False
    )

    def __init__(self, actor, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspaces"].queryset = services.invitable_workspaces(actor)
        roles = workspace_services.assignable_roles(actor.organization)
        self.fields["workspace_role"].queryset = roles
        self.fields["workspace_role"].initial = roles.filter(name="Viewer").first()


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def org_invite(request, org_slug):
    org = request.organization

    def invite(data):
        services.invite_member(
            actor=request.actor,
            organization=org,
            email=data["email"],
            org_role=data["org_role"],
            workspaces=data["workspaces"],
            workspace_role=data["workspace_role"],
        )
        return f"Invitation sent to {data['email']}.", _members_url(org)

    return console.form_dialog(
        request,
        InviteForm(request.actor, request.POST or None),
        invite,
        page_title="Invite people",
        title=f"Invite someone to {org.name}",
        intro="They get an email with a link that works once and expires in a week.",
        submit_label="Send invitation",
        cancel_url=_members_url(org),
    )


def _pending_invitation(request, invitation_id):
    return get_object_or_404(services.pending_invitations(request.actor), pk=invitation_id)


@requires("organization:manage")
@require_POST
@sudo_required
def invitation_resend(request, org_slug, invitation_id):
    org = request.organization
    invitation = _pending_invitation(request, invitation_id)
    return console.attempt(
        request,
        lambda: services.resend_invitation(actor=request.actor, invitation=invitation),
        f"A new invitation link went to {invitation.email}.",
        _members_url(org),
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
def invitation_cancel(request, org_slug, invitation_id):
    org = request.organization
    invitation = _pending_invitation(request, invitation_id)
    return console.confirm_then(
        request,
        lambda: services.cancel_invitation(actor=request.actor, invitation=invitation),
        success=f"The invitation of {invitation.email} was cancelled.",
        cancel_url=_members_url(org),
        title=f"Cancel the invitation of {invitation.email}?",
        message="The link in their email stops working. You can invite them again later.",
        confirm_label=f"Cancel invitation of {invitation.email}",
        cancel_label="Keep invitation",
    )


class WorkspaceForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    slug = forms.SlugField(
        label="Slug (in URLs)",
        max_length=60,
        required=False,
        help_text="Leave empty to derive it from the name.",
    )


WORKSPACES = console.Listing(
    sorts={
        "name": ("Workspace", ("archived", "name")),
        "members": ("Members", ("member_count", "name")),
        "created": ("Created", ("created_at",)),
    },
    default="name",
    search=("name", "slug"),
    statuses={
        "active": ("Active", lambda: Q(archived=False)),
        "archived": ("Archived", lambda: Q(archived=True)),
    },
)


@requires("organization:read")
@require_GET
def org_workspaces(request, org_slug):
    org = request.organization
    # Linked: every workspace the person acts in, archived ones too (read-only there, as
    # compute_access has it); the switcher alone leaves archived ones out.
    visible = set(workspace_services.acted_in(request.actor).values_list("pk", flat=True))
    members = Count("memberships", filter=in_effect("memberships__"))  # ended grants are none
    workspaces = console.listed(request, org.workspaces.annotate(member_count=members), WORKSPACES)
    return render(
        request,
        "organizations/workspaces.html",
        {
            "list": workspaces,
            "page": workspaces.page,
            "q": workspaces.q,
            "workspaces": workspaces.page.object_list,
            "visible": visible,
            "can_create": "organization:manage" in request.access.permissions,
        },
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
def org_workspace_create(request, org_slug):
    org = request.organization

    def create(data):
        workspace = workspace_services.create_workspace(
            actor=request.actor, organization=org, name=data["name"], slug=data["slug"] or None
        )
        url = reverse("workspace-home", args=[org.slug, workspace.slug])
        return f"Workspace {workspace.name} created.", url

    return console.form_dialog(
        request,
        WorkspaceForm(request.POST or None),
        create,
        title="New workspace",
        submit_label="Create workspace",
        cancel_url=reverse("org-workspaces", args=[org.slug]),
    )


class OrgSettingsForm(forms.Form):
    plan = forms.ChoiceField(
        label="Plan", choices=Plan.choices, help_text="A demo switch: custom roles need Enterprise."
    )
    max_key_lifetime_days = forms.IntegerField(
        label="Longest key lifetime (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Empty: keys may live forever. Applies to new keys and tokens.",
    )
    allow_personal_access_tokens = forms.BooleanField(
        label="Members may create personal access tokens",
        required=False,
        help_text="Off: no new tokens, and existing tokens are refused on their next request "
        "(they work again if this is turned back on).",
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def org_settings(request, org_slug):
    org = request.organization
    initial = {
        "plan": org.plan,
        "max_key_lifetime_days": org.max_key_lifetime_days,
        "allow_personal_access_tokens": org.allow_personal_access_tokens,
    }
    form = OrgSettingsForm(request.POST or None, initial=initial)

    def save(data):
        services.update_organization_settings(actor=request.actor, organization=org, **data)
        return "Settings saved.", reverse("org-settings", args=[org.slug])

    return console.saved(request, form, save) or console.form_page(
        request, "organizations/settings.html", form, fragment=None
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def org_ip_allow_list(request, org_slug):
    """Where the organization's API keys may be used from; the console itself is never
    restricted, so an admin can always undo a list that shuts their own scripts out."""
    org = request.organization
    address = throttle.client_ip(request)
    form = IpAllowListForm(
        request.POST or None,
        initial={"ip_allow_list": as_text(org.ip_allow_list)},
        label="Networks (one per line)",
        help_text="IPv4 or IPv6 in CIDR notation (203.0.113.0/24, 2001:db8::/32); a bare "
        "address means that one address. Empty: keys work from anywhere.",
    )

    def save(data):
        saved = services.set_ip_allow_list(
            actor=request.actor, organization=org, ip_allow_list=data["ip_allow_list"]
        )
        if not ip_allow_lists.admits(saved.ip_allow_list, address):
            messages.warning(
                request,
                f"Your current address {address} is outside the list: API keys used from here "
                "are now refused.",
            )
        return "IP allow list saved.", reverse("org-ip-allow-list", args=[org.slug])

    return console.saved(request, form, save) or console.form_page(
        request,
        "organizations/ip_allow_list.html",
        form,
        {"address": address, "admits_you": ip_allow_lists.admits(org.ip_allow_list, address)},
        fragment=None,
    )


class SignUpForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150, required=False)
    password = forms.CharField(
        label="Choose a password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_again = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        data = super().clean()
        if data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


@public
@require_http_methods(["GET", "POST"])
def accept_invitation(request, token):
    """The link from the invitation email. Works once, until it expires."""
    invitation = find_invitation(token)
    if invitation is None:
        return render(request, "organizations/invitation_invalid.html", status=404)
    account_exists = User.objects.filter(email=invitation.email).exists()
    user = request.user if request.user.is_authenticated else None
    form = SignUpForm(request.POST or None) if user is None and not account_exists else None
    context = {
        "invitation": invitation,
        "joining": services.invited_workspaces(invitation),
        "account_exists": account_exists,
        "form": form,
        "wrong_user": user is not None and user.email != invitation.email,
    }
    if request.method == "POST" and not context["wrong_user"]:
        landing = reverse("org-overview", args=[invitation.organization.slug])
        signed_in = None
        try:
            if user is None:
                if form is None or not form.is_valid():
                    return render(request, "organizations/invitation.html", context, status=400)
                user = services.sign_up_and_accept(
                    invitation=invitation,
                    full_name=form.cleaned_data["full_name"],
                    password=form.cleaned_data["password"],
                )
                # allauth's sign-in, like every other path: its stages, audit and throttle.
                user.backend = settings.AUTHENTICATION_BACKENDS[0]  # sso.backends.PasswordBackend
                signed_in = perform_login(request, user, redirect_url=landing)
            else:
                accept_invitation_service(invitation=invitation, user=user)
                # Signed in already: the sign-in's decision whether they must enrol in MFA
                # predates this organization's requirement, so it is taken again now.
                mfa.remember_whether_to_enrol(request, user)
        except ValidationError as exc:
            if form is not None and hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.error(request, " ".join(exc.messages))
            return render(request, "organizations/invitation.html", context, status=400)
        messages.success(request, f"Welcome to {invitation.organization.name}.")
        return signed_in or redirect(landing)
    return render(request, "organizations/invitation.html", context)
