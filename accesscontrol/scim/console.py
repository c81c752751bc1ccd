"""Settings → Provisioning: the SCIM base URL and token, the group mappings, the last sync
events. Org managers only; every change asks for sudo (a SCIM token provisions people)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accesscontrol import console
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.apikeys import shown_once
from accesscontrol.audit.sentences import described
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.permissions import ORG_ROLES, PROVISIONABLE_ORG_ROLES
from accesscontrol.rbac.services import role_by_id
from accesscontrol.scim import selectors, services
from accesscontrol.workspaces.models import Workspace
from accesscontrol.workspaces.services import assignable_roles


def _page_url(request):
    return reverse("org-provisioning", args=[request.organization.slug])


MAPPINGS = console.Listing(
    sorts={
        "group": ("Group", ("group__display_name", "workspace__name")),
        "workspace": ("Workspace", ("workspace__name", "group__display_name")),
        "role": ("Role", ("role__name", "group__display_name")),
    },
    default="group",
    search=("group__display_name", "workspace__name", "role__name"),
)


@requires("organization:manage")
@require_http_methods(["GET"])
@never_cache
def provisioning(request, org_slug):
    actor = request.actor
    mappings = console.listed(request, selectors.group_mappings(actor), MAPPINGS)
    response = render(
        request,
        "scim/provisioning.html",
        {
            "base_url": request.build_absolute_uri(reverse("scim-root")),
            "token": selectors.active_token(actor),
            "created": shown_once.take(request, request.path, selectors.tokens(actor)),
            "list": mappings,
            "page": mappings.page,
            "q": mappings.q,
            "mappings": mappings.page.object_list,
            "groups": selectors.scim_groups(actor, with_members=False).count(),
            "events": described(selectors.recent_sync_events(actor)),
            "default_role_form": DefaultRoleForm(
                initial={"default_org_role": services.default_org_role(request.organization)}
            ),
        },
    )
    return shown_once.drop(request, response, request.path)


class DefaultRoleForm(forms.Form):
    default_org_role = forms.ChoiceField(
        label="Organization role of people it provisions",
        choices=[(r, ORG_ROLES[r].label) for r in PROVISIONABLE_ORG_ROLES],
        help_text="People already provisioned keep theirs. Organization admins are named here, "
        "by hand.",
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def default_role(request, org_slug):
    form = DefaultRoleForm(
        request.POST or None,
        initial={"default_org_role": services.default_org_role(request.organization)},
    )

    def save(data):
        services.set_default_org_role(
            actor=request.actor,
            organization=request.organization,
            org_role=data["default_org_role"],
        )
        return "The default organization role was saved.", _page_url(request)

    return console.form_dialog(
        request,
        form,
        save,
        title="Default organization role",
        submit_label="Save",
        cancel_url=_page_url(request),
    )


@requires("organization:manage")
@require_POST
@sudo_required
def token_issue(request, org_slug):
    return _hold_new_token(
        request,
        lambda: services.issue_token(actor=request.actor, organization=request.organization),
    )


def _hold_new_token(request, make):
    """`make()` answers (token, raw) or, rotating, (token, raw, old): held for the page's one
    read (apikeys/shown_once.py)."""
    try:
        token, raw, *old = make()
    except ValidationError as exc:
        return console.done(request, console.errors_of(exc), _page_url(request), messages.ERROR)
    response = redirect(_page_url(request))
    page = _page_url(request)
    shown_once.hold(request, response, page=page, key=token, raw=raw, old=old[0] if old else None)
    return response


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def token_rotate(request, org_slug):
    if request.method == "POST":
        return _hold_new_token(
            request,
            lambda: services.rotate_token(actor=request.actor, organization=request.organization),
        )
    return console.confirm(
        request,
        title="Rotate the SCIM token?",
        message="A new token replaces the current one, which is refused from the next request: "
        "paste the new one into your identity provider right away.",
        action=request.path,
        cancel_url=_page_url(request),
        confirm_label="Rotate the SCIM token",
        cancel_label="Keep the current token",
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def token_revoke(request, org_slug):
    return console.confirm_then(
        request,
        lambda: services.revoke_token(actor=request.actor, organization=request.organization),
        success="The SCIM token was revoked.",
        cancel_url=_page_url(request),
        title="Revoke the SCIM token?",
        message="Your identity provider can no longer create, change or remove anyone here.",
        consequences=["People it provisioned keep their access until someone changes it."],
        confirm_label="Revoke the SCIM token",
        cancel_label="Keep the token",
    )


class MappingForm(forms.Form):
    group = forms.ModelChoiceField(queryset=None, empty_label=None)
    workspace = forms.ModelChoiceField(queryset=None, empty_label=None)
    role = forms.ChoiceField(
        help_text="Members of the group get this role there; someone in several groups mapped "
        "to the workspace gets the strongest."
    )

    def __init__(self, actor, *args, mapping=None, **kwargs):
        super().__init__(*args, **kwargs)
        organization = actor.organization
        self.actor = actor
        self.fields["group"].queryset = selectors.scim_groups(actor, with_members=False)
        self.fields["workspace"].queryset = Workspace.objects.filter(
            organization=organization, archived=False
        )
        self.fields["role"].choices = [(str(r.pk), r.name) for r in assignable_roles(organization)]
        if mapping is not None:
            del self.fields["group"], self.fields["workspace"]
            self.initial["role"] = str(mapping.role_id)

    def clean_role(self):
        return role_by_id(self.actor, self.cleaned_data["role"], field="role")


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def mapping_add(request, org_slug):
    form = MappingForm(request.actor, request.POST or None)

    def save(data):
        services.add_group_mapping(
            actor=request.actor, group=data["group"], workspace=data["workspace"], role=data["role"]
        )
        return f"{data['group']} now maps to {data['workspace']}.", _page_url(request)

    return console.form_dialog(
        request,
        form,
        save,
        title="Map a group to a workspace role",
        intro="Members of the group (as your identity provider sends them) get the role in the "
        "workspace, and lose it when they leave the group.",
        submit_label="Add mapping",
        cancel_url=_page_url(request),
    )


def _mapping(request, mapping_id):
    return get_object_or_404(selectors.group_mappings(request.actor), pk=mapping_id)


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def mapping_edit(request, org_slug, mapping_id):
    mapping = _mapping(request, mapping_id)
    form = MappingForm(request.actor, request.POST or None, mapping=mapping)

    def save(data):
        services.change_group_mapping(actor=request.actor, mapping=mapping, role=data["role"])
        return f"{mapping.group} now maps to {data['role']} in {mapping.workspace}.", _page_url(
            request
        )

    return console.form_dialog(
        request,
        form,
        save,
        title=f"{mapping.group} in {mapping.workspace}",
        submit_label="Save role",
        cancel_url=_page_url(request),
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def mapping_remove(request, org_slug, mapping_id):
    mapping = _mapping(request, mapping_id)
    return console.confirm_then(
        request,
        lambda: services.remove_group_mapping(actor=request.actor, mapping=mapping),
        success=f"{mapping.group} no longer maps to {mapping.workspace}.",
        cancel_url=_page_url(request),
        title=f"Remove the mapping of {mapping.group} to {mapping.workspace}?",
        message=f"Its members lose the {mapping.role} role it gave them there (memberships "
        "added by hand stay).",
        confirm_label="Remove mapping",
        cancel_label="Keep mapping",
    )
