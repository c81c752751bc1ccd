"""Service keys (workspace settings) and personal access tokens (user settings) in the console.

A new key is shown once: the POST that makes it redirects to the list, which shows it this once
(apikeys/shown_once.py: held between the two requests as two halves useless alone, the session
and a short-lived cookie). A reload shows no key and makes none. The pages are not cached.

Each list's "New …" button opens its form in the dialog (`?new` of the list's URL); without
JavaScript the same URL is a page with only the form.
"""

import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accesscontrol import console
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.apikeys import rotation, services, shown_once
from accesscontrol.apikeys.authentication import personal_token_access
from accesscontrol.apikeys.forms import IpAllowListForm, as_text, ip_allow_list_field
from accesscontrol.apikeys.limits import (
    CUSTOM,
    PRESET_LABELS,
    PRESETS,
    limit_workspaces,
    limitable_workspaces_of,
)
from accesscontrol.rbac.gate import deny, requires
from accesscontrol.rbac.permissions import ACTIONS, ORG_PATS_CREATE, ORG_READ, permission_matrix
from accesscontrol.workspaces.services import assignable_roles

PAGE_SIZE = 50


def _key_statuses():
    """`?status=` of a key list; the instant is taken when the list is drawn."""
    return {
        "active": ("Active", lambda: Q(revoked_at__isnull=True) & _unexpired()),
        "expired": ("Expired", lambda: Q(revoked_at__isnull=True) & ~_unexpired()),
        "revoked": ("Revoked", lambda: Q(revoked_at__isnull=False)),
    }


def _unexpired():
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


_KEY_SORTS = {
    # Revoked keys last (PostgreSQL puts NULLs last in ascending order), newest first.
    "status": ("Status", (F("revoked_at").asc(nulls_first=True), "-created_at")),
    "name": ("Name", ("name",)),
    "created": ("Created", ("created_at",)),
    "last_used": ("Last used", (F("last_used_at").asc(nulls_first=True),)),
    "expires": ("Expires", (F("expires_at").asc(nulls_last=True),)),
}
SERVICE_KEYS = console.Listing(
    sorts={**_KEY_SORTS, "role": ("Role", ("role__name", "name"))},
    default="status",
    search=("name", "hint", "created_by_label"),
    statuses=_key_statuses(),
    per_page=PAGE_SIZE,
)
PERSONAL_TOKENS = console.Listing(
    sorts=_KEY_SORTS,
    default="status",
    search=("name", "hint"),
    statuses=_key_statuses(),
    per_page=PAGE_SIZE,
)

LIFETIMES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]


def lifetime_choices(organization):
    cap = organization.max_key_lifetime_days
    choices = [(str(days), label) for days, label in LIFETIMES if not cap or days <= cap]
    if cap and all(int(value) != cap for value, _ in choices):
        choices.append((str(cap), f"{cap} days (the organization's limit)"))
    if not cap:
        choices.append(("", "Never"))
    return choices


def expiry_from(value):
    if not value:
        return None
    return timezone.now() + datetime.timedelta(days=int(value))


class KeyForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="What it is for, e.g. “CI pipeline”."
    )
    expires_in = forms.ChoiceField(label="Expires", required=False)

    def __init__(self, organization, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = lifetime_choices(organization)
        self.fields["expires_in"].choices = choices
        self.fields["expires_in"].initial = (
            "90" if any(v == "90" for v, _ in choices) else choices[0][0]
        )


class PersonalTokenForm(KeyForm):
    """A token, narrowed if asked to some workspaces and some permissions (apikeys/limits.py).
    A custom pick comes from the permission grid below the fields (named `permissions`)."""

    workspaces = forms.MultipleChoiceField(
        label="Limit to workspaces",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every workspace you can act in, now and later.",
    )
    limit = forms.ChoiceField(
        label="Permissions",
        required=False,
        widget=forms.RadioSelect,
        choices=[
            ("", "Everything your role allows, as your role changes"),
            *PRESET_LABELS.items(),
            (CUSTOM, "Only the permissions ticked below"),
        ],
        initial="",
    )

    def __init__(self, organization, workspaces, *args, **kwargs):
        super().__init__(organization, *args, **kwargs)
        self.fields["workspaces"].choices = [(str(w.pk), w.name) for w in workspaces]

    @property
    def custom_permissions(self) -> list[str]:
        return self.data.getlist("permissions") if self.is_bound else []

    def clean(self):
        data = super().clean()
        limit = data.get("limit")
        data["preset"] = limit if limit in PRESETS else None
        data["permissions"] = self.custom_permissions if limit == CUSTOM else None
        return data


KEY_ALLOW_LIST_HELP = (
    "Optional: networks this key may be used from, one per line (203.0.113.0/24, "
    "2001:db8::/32), within the organization's IP allow list. Empty: wherever the "
    "organization allows."
)


class ServiceKeyForm(KeyForm):
    """The role is a choice the creator makes (nothing preselected); the weakest role is
    offered first and recommended. The API keeps its documented default (Admin)."""

    role = forms.ModelChoiceField(
        label="Role",
        queryset=None,
        empty_label="Choose a role…",
        help_text="Pick the weakest role that does the job: Viewer for a program that only "
        "reads, Editor for one that writes runs, datasets or feedback; Admin only for one "
        "that manages this workspace.",
    )
    ip_allow_list = ip_allow_list_field("IP allow list", KEY_ALLOW_LIST_HELP)

    def __init__(self, organization, *args, **kwargs):
        super().__init__(organization, *args, **kwargs)
        roles = assignable_roles(organization)
        weakest = roles.first()
        self.fields["role"].queryset = roles
        self.fields["role"].label_from_instance = lambda role: (
            f"{role.name} (recommended)" if role == weakest else role.name
        )
        self.order_fields(["name", "role", "expires_in", "ip_allow_list"])


def _keys_url(request):
    return reverse("service-keys", args=[request.organization.slug, request.workspace.slug])


def _workspace_keys(request):
    return services.visible_service_keys(request.actor, request.workspace)


@requires("workspaces:manage")
@require_http_methods(["GET", "POST"])
@never_cache
@sudo_required
def service_keys(request, org_slug, workspace_slug):
    """The workspace's keys; `?new` (or a refused POST) the form that makes one."""
    asked = request.method == "POST" or "new" in request.GET
    form = ServiceKeyForm(request.organization, request.POST or None) if asked else None

    def create(data):
        return services.create_service_key(
            actor=request.actor,
            organization=request.organization,
            workspace=request.workspace,
            name=data["name"],
            role=data["role"],
            expires_at=expiry_from(data["expires_in"]),
            ip_allow_list=data["ip_allow_list"],
        )

    if created := _created(request, form, create, _keys_url(request)):
        return created
    if asked:
        return console.form_page(
            request,
            "form_dialog.html",
            form,
            {
                "title": "New service key",
                "intro": f"A key for one program, acting in {request.workspace.name} with the "
                "role you choose. It is shown once.",
                "action": _keys_url(request),
                "cancel_url": _keys_url(request),
                "submit_label": "Create key",
            },
        )
    keys = console.listed(request, _workspace_keys(request), SERVICE_KEYS)
    response = render(
        request,
        "apikeys/service_keys.html",
        {
            "keys": keys.page.object_list,
            "page": keys.page,
            "list": keys,
            "q": keys.q,
            "created": shown_once.take(request, request.path, _workspace_keys(request)),
            "new_url": f"{_keys_url(request)}?new",
        },
    )
    return shown_once.drop(request, response, request.path)


@requires("workspaces:manage")
@require_http_methods(["GET", "POST"])
def service_key_revoke(request, org_slug, workspace_slug, key_id):
    key = get_object_or_404(_workspace_keys(request).filter(revoked_at__isnull=True), pk=key_id)
    return _revoke_page(
        request,
        key,
        lambda: services.revoke_service_key(actor=request.actor, key=key),
        _keys_url(request),
        "key",
        consequences=[
            "Programs using it stop working until they get a new key.",
            "This cannot be undone.",
        ],
    )


@requires("workspaces:manage")
@require_http_methods(["GET", "POST"])
@never_cache
@sudo_required
def service_key_rotate(request, org_slug, workspace_slug, key_id):
    key = get_object_or_404(_workspace_keys(request).active(), pk=key_id)
    return _rotate_page(
        request,
        key,
        lambda hours: rotation.rotate_service_key(actor=request.actor, key=key, grace_hours=hours),
        _keys_url(request),
    )


GRACE_CHOICES = [(1, "1 hour"), (24, "1 day"), (72, "3 days"), (168, "7 days")]


class RotateForm(forms.Form):
    grace_hours = forms.TypedChoiceField(
        label="The old key keeps working for",
        coerce=int,
        choices=GRACE_CHOICES,
        initial=24,
        required=False,
        empty_value=24,  # left out: a day, as the API's default
        help_text="Time to put the new key everywhere the old one is used: 1 hour to 7 days.",
    )


def _rotate_page(request, key, rotate, back_url):
    """Rotating a service key or a token: the grace period asked, then back to the list,
    which shows the successor this once."""
    form = RotateForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            successor, raw, old = rotate(form.cleaned_data["grace_hours"])
        except ValidationError as exc:
            console.add_errors(form, exc)
        else:
            response = _to(request, back_url)
            shown_once.hold(request, response, page=back_url, key=successor, raw=raw, old=old)
            return response
    return console.form_page(
        request,
        "form_dialog.html",
        form,
        {
            "title": f"Rotate {key.name}?",
            "intro": f"A new key replaces {key.hint}, with the same access; it is shown once. "
            "The old key keeps working until the grace period ends, then it is refused.",
            "action": request.path,
            "cancel_url": back_url,
            "submit_label": f"Rotate {key.name}",
            "cancel_label": "Keep the current key",
        },
    )


@requires("workspaces:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def service_key_ip_allow_list(request, org_slug, workspace_slug, key_id):
    key = get_object_or_404(_workspace_keys(request).filter(revoked_at__isnull=True), pk=key_id)
    form = IpAllowListForm(
        request.POST or None,
        initial={"ip_allow_list": as_text(key.ip_allow_list)},
        label="Networks (one per line)",
        help_text=KEY_ALLOW_LIST_HELP,
    )

    def save(data):
        services.set_service_key_ip_allow_list(
            actor=request.actor, key=key, ip_allow_list=data["ip_allow_list"]
        )
        return f"The IP allow list of {key.name} was saved.", _keys_url(request)

    return console.form_dialog(
        request,
        form,
        save,
        page_title="IP allow list",
        title=f"Where may {key.name} be used from?",
        intro="Requests with this key from outside these networks (or outside the "
        "organization's own list) get 403 ip_not_allowed, from the next request on.",
        submit_label="Save allow list",
        cancel_url=_keys_url(request),
    )


def _revoke_page(request, key, revoke, cancel_url, what, consequences=()):
    """Revoking a service key or a token (`what`: "key" or "token"): the same question, the
    safe answer first and focused, the destructive one naming what it revokes."""
    return console.confirm_then(
        request,
        revoke,
        success=f"{key.name} was revoked.",
        cancel_url=cancel_url,
        title=f"Revoke {key.name}?",
        message=f"Requests with {key.hint} fail with 401 from the next one on.",
        consequences=consequences,
        confirm_label=f"Revoke {what} “{key.name}”",
        cancel_label=f"Keep {what}",
    )


def _created(request, form, create, list_url):
    """On a valid POST, `create(cleaned_data)` makes a key and answers (key, raw key): hold the
    raw key for the list's one read and go there. A refusal goes on the form; None then."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        key, raw = create(form.cleaned_data)
    except ValidationError as exc:
        console.add_errors(form, exc)
        return None
    response = _to(request, list_url)
    shown_once.hold(request, response, page=list_url, key=key, raw=raw)
    return response


def _to(request, url):
    """A redirect, also out of the dialog (htmx follows HX-Redirect with a full page load)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _own_tokens(request):
    return services.own_tokens(request.actor)


def _tokens_url(request):
    return reverse("personal-tokens", args=[request.organization.slug])


def _token_form(request, data=None):
    workspaces = limitable_workspaces_of(request.actor)
    return PersonalTokenForm(request.organization, workspaces, data)


@requires("organization:read")
@require_http_methods(["GET", "POST"])
@never_cache
@sudo_required
def personal_tokens(request, org_slug):
    """Your tokens; `?new` (or a refused POST) the form that makes one."""
    org = request.organization
    can_create = ORG_PATS_CREATE in request.access.permissions and org.allow_personal_access_tokens
    asked = request.method == "POST" or "new" in request.GET
    form = _token_form(request, request.POST or None) if can_create and asked else None
    if request.method == "POST":
        if ORG_PATS_CREATE not in request.access.permissions:
            return deny(request, [ORG_PATS_CREATE])
        if form is None:
            return console.done(
                request,
                "You cannot create personal access tokens here.",
                _tokens_url(request),
                messages.ERROR,
            )
        created = _created(
            request,
            form,
            lambda data: services.create_personal_access_token(
                user=request.user,
                organization=org,
                name=data["name"],
                expires_at=expiry_from(data["expires_in"]),
                preset=data["preset"],
                permissions=data["permissions"],
                workspaces=data["workspaces"] or None,
            ),
            _tokens_url(request),
        )
        if created:
            return created
    if form is not None:
        return console.form_page(
            request,
            "apikeys/personal_token_new.html",
            form,
            {
                "actions": ACTIONS,
                "matrix": permission_matrix(set(form.custom_permissions)),
                "org_read": ORG_READ,
                "org_read_ticked": ORG_READ in form.custom_permissions,
                "cancel_url": _tokens_url(request),
            },
        )
    tokens = console.listed(request, _own_tokens(request), PERSONAL_TOKENS)
    response = render(
        request,
        "apikeys/personal_tokens.html",
        {
            "created": shown_once.take(request, request.path, _own_tokens(request)),
            "can_create": can_create,
            "new_url": f"{_tokens_url(request)}?new",
            "list": tokens,
            "page": tokens.page,
            "q": tokens.q,
            "tokens": tokens.page.object_list,
            "pats_disabled": not org.allow_personal_access_tokens,
        },
    )
    return shown_once.drop(request, response, request.path)


@requires("organization:read")
@require_GET
def personal_token(request, org_slug, token_id):
    """One of your tokens: its limits, and what it may do in each workspace right now."""
    token = get_object_or_404(
        _own_tokens(request).select_related("org_membership__user", "org_membership__organization"),
        pk=token_id,
    )
    rows = personal_token_access(token) if token.status == "active" else []
    return render(
        request,
        "apikeys/personal_token.html",
        {
            "token": token,
            "limit_workspaces": limit_workspaces(token),
            "rows": [(ws, access, permission_matrix(access.permissions)) for ws, access in rows],
            "actions": ACTIONS,
        },
    )


@requires("organization:read")
@require_http_methods(["GET", "POST"])
def personal_token_revoke(request, org_slug, token_id):
    token = get_object_or_404(_own_tokens(request).filter(revoked_at__isnull=True), pk=token_id)
    return _revoke_page(
        request,
        token,
        lambda: services.revoke_personal_access_token(actor=request.actor, token=token),
        _tokens_url(request),
        "token",
    )


@requires(ORG_PATS_CREATE)  # it makes a token, as creating one does
@require_http_methods(["GET", "POST"])
@never_cache
@sudo_required
def personal_token_rotate(request, org_slug, token_id):
    token = get_object_or_404(_own_tokens(request).active(), pk=token_id)
    return _rotate_page(
        request,
        token,
        lambda hours: rotation.rotate_personal_access_token(
            actor=request.actor, token=token, grace_hours=hours
        ),
        _tokens_url(request),
    )
