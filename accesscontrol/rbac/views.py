"""Roles in the console (system roles read-only, custom roles with a grid) and who has access."""

from django import forms
from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accesscontrol import console, csv_export
from accesscontrol.accounts import mfa
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.apikeys import limits as token_limits
from accesscontrol.apikeys.authentication import service_key_access
from accesscontrol.apikeys.services import visible_service_keys
from accesscontrol.rbac import services, who_has_access
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ACTIONS, WORKSPACE_PERMISSIONS, permission_matrix
from accesscontrol.sso import services as sso_services
from accesscontrol.workspaces.models import in_effect

PAGE_SIZE = 100  # principals per page on who-has-access; the CSV export has them all


class RoleForm(forms.Form):
    name = forms.CharField(label="Name", max_length=60)
    description = forms.CharField(
        label="Description",
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    permissions = forms.MultipleChoiceField(
        choices=[(c, c) for c in sorted(WORKSPACE_PERMISSIONS)], required=False
    )


def _roles_url(org):
    return reverse("roles", args=[org.slug])


def _with_usage(roles):
    return roles.annotate(
        member_count=Count("memberships", distinct=True),
        key_count=Count(
            "service_keys", filter=Q(service_keys__revoked_at__isnull=True), distinct=True
        ),
    )


CUSTOM_ROLES = console.Listing(
    sorts={
        "name": ("Role", ("name",)),
        "members": ("Used by", ("member_count", "key_count", "name")),
    },
    default="name",
    search=("name", "description"),
)


@requires("organization:read")
@require_GET
def roles(request, org_slug):
    org = request.organization
    system = list(Role.objects.filter(organization__isnull=True).order_by("name"))
    custom = console.listed(request, _with_usage(org.roles.all()), CUSTOM_ROLES)
    return render(
        request,
        "rbac/roles.html",
        {
            "system_roles": [(r, permission_matrix(r.permission_set)) for r in system],
            "custom_roles": custom.page.object_list,
            "list": custom,
            "page": custom.page,
            "q": custom.q,
            "actions": ACTIONS,
            "can_manage": "organization:manage" in request.access.permissions,
            "enterprise": org.has_workspace_rbac,
        },
    )


def _role_form_page(request, form, role=None, usage=None):
    granted = set(form["permissions"].value() or [])
    return render(
        request,
        # A new role's form also opens in the dialog (the roles page's "New custom role").
        console.page_or_fragment(request, "rbac/role_form.html", "form")
        if role is None
        else "rbac/role_form.html",
        {
            "form": form,
            "role": role,
            "usage": usage,
            "actions": ACTIONS,
            "matrix": permission_matrix(granted),
        },
        status=422 if form.errors else 200,
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def role_create(request, org_slug):
    org = request.organization
    if not org.has_workspace_rbac:
        return console.done(
            request,
            "Custom roles are available on the Enterprise plan.",
            _roles_url(org),
            messages.ERROR,
        )
    form = RoleForm(request.POST or None)

    def create(data):
        role = services.create_role(actor=request.actor, organization=org, **data)
        return f"Role {role.name} created.", _roles_url(org)

    return console.saved(request, form, create) or _role_form_page(request, form)


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def role_edit(request, org_slug, role_id):
    org = request.organization
    role = get_object_or_404(org.roles, pk=role_id)
    usage = services.role_usage(role)
    form = RoleForm(
        request.POST or None,
        initial={
            "name": role.name,
            "description": role.description,
            "permissions": role.permissions,
        },
    )

    def save(data):
        saved = services.update_role(actor=request.actor, role=role, **data)
        message = (
            f"Role {saved.name} saved; it applies at once to the "
            f"{usage.total} member(s) and key(s) holding it."
        )
        return message, _roles_url(org)

    return console.saved(request, form, save) or _role_form_page(request, form, role, usage)


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
def role_delete(request, org_slug, role_id):
    org = request.organization
    role = get_object_or_404(org.roles, pk=role_id)
    usage = services.role_usage(role)
    if request.method == "GET" and usage:
        return render(
            request,
            console.page_or_fragment(request, "rbac/role_in_use.html", "dialog"),
            {"role": role, "usage": usage},
        )
    return console.confirm_then(
        request,
        lambda: services.delete_role(actor=request.actor, role=role),
        success=f"Role {role.name} deleted.",
        cancel_url=_roles_url(org),
        title=f"Delete the role {role.name}?",
        message="Nobody holds it. This cannot be undone.",
        confirm_label=f"Delete role “{role.name}”",
        cancel_label="Keep role",
    )


# Who has access (a workspace page; recertification campaigns are the reviews app)


def _principals(request):
    code = request.GET.get("permission", "").strip()
    if code and code not in WORKSPACE_PERMISSIONS:
        code = ""
    return who_has_access.Review(request.workspace, code), code


@requires("workspaces:manage")
@require_GET
def workspace_access(request, org_slug, workspace_slug):
    principals, code = _principals(request)
    page = console.page_of(request, principals, PAGE_SIZE)
    return render(
        request,
        console.page_or_fragment(request, "rbac/workspace_access.html", "principals"),
        {
            "principals": page.object_list,
            "total": len(principals),
            "page": page,
            "code": code,
            "codes": sorted(WORKSPACE_PERMISSIONS),
            "stale_days": who_has_access.STALE_AFTER.days,
        },
    )


@requires("workspaces:manage")
@require_GET
def workspace_access_export(request, org_slug, workspace_slug):
    principals, code = _principals(request)

    header = [
        "principal",
        "kind",
        "role",
        "why",
        "permissions",
        "last_active",
        "stale",
        "active_personal_tokens",
    ]
    rows = (
        [
            r.label,
            r.kind,
            r.role or "",
            r.reason,
            " ".join(r.workspace_permissions),
            r.last_active.isoformat() if r.last_active else "",
            "yes" if r.stale else "no",
            r.tokens,
        ]
        for r in principals
    )
    suffix = f"-{code.replace(':', '-')}" if code else ""
    filename = f"access-{request.organization.slug}-{request.workspace.slug}{suffix}.csv"
    return csv_export.download(filename, csv_export.lines(header, rows))


@requires("organization:manage")
@require_GET
def member_access(request, org_slug, member_id):
    membership = get_object_or_404(
        mfa.with_mfa_flag(request.organization.memberships.select_related("user", "organization")),
        pk=member_id,
    )
    tokens = membership.personal_access_tokens.order_by("revoked_at", "-created_at")
    rows = who_has_access.user_access(membership)
    held = membership.workspace_memberships.filter(in_effect())  # an ended grant gives nothing
    sources = {wm.workspace_id: wm.get_source_display() for wm in held}
    for workspace, _ in rows:
        workspace.membership_source = sources.get(workspace.pk)
    return render(
        request,
        "rbac/member_access.html",
        {
            "member": membership,
            "sign_in_methods": sso_services.sign_in_methods(membership.user, request.organization),
            "rows": rows,
            # Each token with where it acts and with what: its user's access, narrowed.
            "tokens": [(k, token_limits.reach(k.limits, rows)) for k in tokens],
        },
    )


@requires("workspaces:manage")
@require_GET
def key_access(request, org_slug, workspace_slug, key_id):
    key = get_object_or_404(
        visible_service_keys(request.actor, request.workspace).select_related(
            "organization", "workspace"
        ),
        pk=key_id,
    )
    access = service_key_access(key, request.workspace) if key.role else None
    return render(
        request,
        "rbac/key_access.html",
        {
            "key": key,
            "access": access,
            "matrix": permission_matrix(access.permissions if access else frozenset()),
            "actions": ACTIONS,
        },
    )
