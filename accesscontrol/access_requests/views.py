"""Console pages for access requests: ask (from a 403), decide (admins), follow (requesters)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import console
from accesscontrol.access_requests import services
from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ALL_PERMISSIONS, ORG_ROLES
from accesscontrol.workspaces.models import Workspace
from accesscontrol.workspaces.services import EXPIRY_CHOICES, assignable_roles, grantable_roles

EXPIRY_FIELD_CHOICES = [(k, label) for k, (label, _) in EXPIRY_CHOICES.items()]


class RequestForm(forms.Form):
    workspace = forms.SlugField(required=False, widget=forms.HiddenInput)
    permission = forms.ChoiceField(
        required=False,
        label="Permission needed",
        choices=[("", "—")] + [(c, c) for c in sorted(ALL_PERMISSIONS)],
    )
    role = forms.ModelChoiceField(
        label="Role to ask for", required=False, queryset=Role.objects.none(), empty_label="—"
    )
    reason = forms.CharField(
        label="Why do you need it?",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The admins who can grant it read this.",
    )

    def __init__(self, organization, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = assignable_roles(organization)


def _mine_url(request):
    return reverse("my-access-requests", args=[request.organization.slug])


@requires("organization:read")
@require_http_methods(["GET", "POST"])
def access_request_new(request, org_slug):
    """The 403's "Request access": embedded in the 403 page, and a page of its own (the toast's
    link, and without JavaScript)."""
    organization = request.organization
    data = request.POST if request.method == "POST" else None
    initial = {
        "workspace": request.GET.get("workspace", ""),
        "permission": request.GET.get("permission", ""),
    }
    if initial["permission"] in ALL_PERMISSIONS:
        workspace = Workspace.objects.filter(
            organization=organization, slug=initial["workspace"]
        ).first()
        role = services.suggested_role(organization, initial["permission"])
        initial["role"] = role.pk if role and workspace else None
    form = RequestForm(organization, data, initial=initial)

    def save(cleaned):
        workspace = None
        if cleaned["workspace"]:
            workspace = services.workspace_named(
                request.actor, "workspace", slug=cleaned["workspace"]
            )
        services.create_access_request(
            actor=request.actor,
            workspace=workspace,
            permission=cleaned["permission"],
            role=cleaned["role"],
            reason=cleaned["reason"],
            workspace_field="workspace",
        )
        where = workspace.name if workspace else organization.name
        return f"Your request for access to {where} was sent to its admins.", _mine_url(request)

    return console.saved(request, form, save) or console.form_page(
        request, "access_requests/new.html", form, fragment=None
    )


class ApproveForm(forms.Form):
    role = forms.ModelChoiceField(label="Role", required=False, queryset=Role.objects.none())
    org_role = forms.ChoiceField(
        label="Organization role",
        required=False,
        choices=[(n, s.label) for n, s in ORG_ROLES.items()],
    )
    expiry = forms.ChoiceField(label="For", choices=EXPIRY_FIELD_CHOICES, initial="1d")
    note = forms.CharField(label="Note", required=False, max_length=1000)

    def __init__(self, organization, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = Role.objects.usable_in(organization)


TO_DECIDE = console.Listing(
    sorts={
        "asked": ("Asked", ("created_at",)),
        "requester": ("Requester", ("requester__user__email",)),
        "workspace": ("Workspace", ("workspace__name", "created_at")),
    },
    default="-asked",
    search=(
        "requester__user__email",
        "requester__user__full_name",
        "workspace__name",
        "permission",
        "role__name",
        "reason",
    ),
    per_page=20,
)


@requires("organization:read")
@require_GET
def access_requests(request, org_slug):
    """Pending requests this person may decide, a page at a time, each with its approve and
    deny forms."""
    listed = console.listed(request, services.requests_to_decide(request.actor), TO_DECIDE)
    # Per page, each once: the roles this person may hand out in a workspace (one rule), and
    # the role suggested for a permission.
    grantable, suggested = {}, {}
    for each in listed.page:
        if each.workspace_id and each.workspace_id not in grantable:
            grantable[each.workspace_id] = grantable_roles(request.actor, each.workspace)
        each.roles = grantable.get(each.workspace_id, ())
        each.default_role = None
        if each.workspace_id:
            if each.permission not in suggested:
                suggested[each.permission] = services.suggested_role(
                    request.organization, each.permission
                )
            each.default_role = each.role or suggested[each.permission]
        each.default_org_role = (
            services.suggested_org_role(each.permission) if not each.workspace_id else None
        )
    return render(
        request,
        "access_requests/list.html",
        {
            "list": listed,
            "page": listed.page,
            "q": listed.q,
            "pending": listed.page.object_list,
            "org_roles": ORG_ROLES.values(),
            "expiries": EXPIRY_FIELD_CHOICES,
        },
    )


MINE = console.Listing(
    sorts={
        "asked": ("Asked", ("created_at",)),
        "where": ("Where", (F("workspace__name").asc(nulls_first=True), "-created_at")),
        "status": ("Status", ("status", "-created_at")),
    },
    default="-asked",
    search=("permission", "role__name", "workspace__name", "reason", "note"),
    statuses={
        value: (label, lambda value=value: Q(status=value))
        for value, label in AccessRequest.STATUSES
    },
)


@requires("organization:read")
@require_GET
def my_access_requests(request, org_slug):
    listed = console.listed(request, services.own_requests(request.actor), MINE)
    return render(
        request,
        "access_requests/mine.html",
        {
            "list": listed,
            "page": listed.page,
            "q": listed.q,
            "requests": listed.page.object_list,
        },
    )


def _found(request, request_id):
    try:
        return services.request_by_id(request.actor, request_id)
    except ValidationError:
        raise Http404("No such access request") from None


def _list_url(request):
    return reverse("access-requests", args=[request.organization.slug])


@requires("organization:read")
@require_POST
@sudo_required(return_to=_list_url)
def access_request_approve(request, org_slug, request_id):
    found = _found(request, request_id)
    form = ApproveForm(request.organization, request.POST)
    if not form.is_valid():
        return console.done(
            request,
            console.errors_of(ValidationError(form.errors)),
            _list_url(request),
            messages.ERROR,
        )
    data = form.cleaned_data

    def approve():
        return services.approve_access_request(
            actor=request.actor,
            access_request=found,
            role=data["role"],
            org_role=data["org_role"] or None,
            expiry=data["expiry"],
            note=data["note"],
        )

    def success(decided):
        until = f" until {decided.expires_at:%Y-%m-%d %H:%M} UTC" if decided.expires_at else ""
        return f"Approved: {decided.requester.user.email} is now {decided.granted}{until}."

    return console.attempt(request, approve, success, _list_url(request))


@requires("organization:read")
@require_POST
def access_request_deny(request, org_slug, request_id):
    found = _found(request, request_id)
    note = request.POST.get("note", "")
    return console.attempt(
        request,
        lambda: services.deny_access_request(actor=request.actor, access_request=found, note=note),
        f"Denied the request of {found.requester.user.email}.",
        _list_url(request),
    )
