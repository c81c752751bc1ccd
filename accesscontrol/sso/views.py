"""Single sign-on in the console: the organization's settings (Settings → Authentication → SSO),
"Sign in with SSO", and re-authenticating at the identity provider for sudo mode."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accesscontrol import console
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.organizations.services import org_members
from accesscontrol.rbac.gate import authenticated, public, requires
from accesscontrol.rbac.permissions import (
    ADMIN_EVERYWHERE_ROLES,
    ORG_ROLES,
    PROVISIONABLE_ORG_ROLES,
)
from accesscontrol.sso import services
from accesscontrol.sso.adapter import provider_for
from accesscontrol.sso.models import Protocol
from accesscontrol.workspaces.services import assignable_roles

SETTINGS_URL = "org-sso"


def _safe_next(request):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return ""


# Sign in with SSO


def _to_identity_provider(request, response):
    """The provider's redirect, as a page that goes there (templates/sso/redirect.html says why
    not a 302); an error page allauth rendered instead is passed on."""
    if response.status_code != 302:
        return response
    return render(request, "sso/redirect.html", {"url": response["Location"]})


class SsoEmailForm(forms.Form):
    email = forms.EmailField(
        label="Work email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


@public
@require_http_methods(["GET", "POST"])
def sso_sign_in(request):
    """Your work email → your organization's identity provider."""
    form = SsoEmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        sso = services.sso_for_email(form.cleaned_data["email"])
        if sso is not None:
            provider = provider_for(request, sso)
            redirect_to = provider.redirect(request, "login", next_url=_safe_next(request) or None)
            return _to_identity_provider(request, redirect_to)
        form.add_error(
            "email",
            "No organization has set up single sign-on for this email's domain. Sign in with "
            "your password instead.",
        )
    return render(
        request,
        "sso/sign_in.html",
        {"form": form, "next": _safe_next(request)},
        status=400 if form.errors else 200,
    )


@authenticated
@require_POST
def sso_reauthenticate(request):
    """Sudo mode through a fresh sign-in at the identity provider (for people without a
    password, or who would rather not type it)."""
    sso = services.sso_of_user(request.user)
    if sso is None:
        messages.error(request, "Your account is not linked to an identity provider here.")
        return redirect(reverse("sudo"))
    provider = provider_for(request, sso)
    redirect_to = provider.redirect(
        request, "redirect", next_url=_safe_next(request) or "/", sudo_for=request.user.pk
    )
    return _to_identity_provider(request, redirect_to)


# Settings → Authentication → Single sign-on


class SsoForm(forms.Form):
    protocol = forms.ChoiceField(label="Protocol", choices=Protocol.choices)
    oidc_issuer = forms.URLField(
        label="OIDC issuer URL",
        required=False,
        max_length=500,
        help_text="Where /.well-known/openid-configuration is found, e.g. https://acme.okta.com.",
    )
    oidc_client_id = forms.CharField(label="OIDC client id", required=False, max_length=255)
    oidc_client_secret = forms.CharField(
        label="OIDC client secret",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Write-only: leave empty to keep the stored secret.",
    )
    saml_metadata_xml = forms.CharField(
        label="SAML IdP metadata (XML)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Paste your identity provider's metadata, or give its URL and entity id below.",
    )
    saml_metadata_url = forms.URLField(label="SAML IdP metadata URL", required=False)
    saml_entity_id = forms.CharField(label="SAML IdP entity id", required=False, max_length=500)
    jit_provisioning = forms.BooleanField(
        label="Just-in-time provisioning: people at your domains join when they first sign in",
        required=False,
    )
    default_org_role = forms.ChoiceField(
        label="Organization role of people provisioned just in time",
        choices=[(name, ORG_ROLES[name].label) for name in PROVISIONABLE_ORG_ROLES],
    )
    invitations_enabled = forms.BooleanField(label="Invitations by email allowed", required=False)
    require_sso = forms.BooleanField(
        label="Require single sign-on: members cannot sign in with a password",
        required=False,
    )
    break_glass_user = forms.TypedChoiceField(
        label="Break-glass admin (may still use a password)",
        required=False,
        coerce=int,
        empty_value=None,
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        organization = actor.organization
        admins = list(org_members(actor).filter(org_role__in=ADMIN_EVERYWHERE_ROLES))
        self.fields["break_glass_user"].choices = [("", "Nobody")] + [
            (m.user_id, m.user.email) for m in admins
        ]
        self.admins = {m.user_id: m.user for m in admins}
        self.roles = {str(r.pk): r for r in assignable_roles(organization)}
        roles = [("", "No role")] + [(pk, r.name) for pk, r in self.roles.items()]
        self.workspaces = {}
        for workspace in organization.workspaces.filter(archived=False).order_by("name"):
            name = f"ws_{workspace.pk.hex}"
            self.fields[name] = forms.ChoiceField(
                label=f"Default role in {workspace.name}", choices=roles, required=False
            )
            self.workspaces[name] = workspace

    def service_arguments(self) -> dict:
        data = dict(self.cleaned_data)
        pairs = [
            (workspace, self.roles[data.pop(name)])
            for name, workspace in self.workspaces.items()
            if data.get(name)
        ]
        for name in self.workspaces:
            data.pop(name, None)
        data["default_workspace_roles"] = pairs
        data["break_glass_user"] = self.admins.get(data["break_glass_user"])
        data["oidc_client_secret"] = data["oidc_client_secret"] or None
        return data


def _initial(sso) -> dict:
    if sso is None:
        return {
            "protocol": Protocol.OIDC,
            "invitations_enabled": True,
            "default_org_role": "member",
        }
    initial = {
        "protocol": sso.protocol,
        "oidc_issuer": sso.oidc_issuer,
        "oidc_client_id": sso.oidc_client_id,
        "saml_metadata_xml": sso.saml_metadata_xml,
        "saml_metadata_url": sso.saml_metadata_url,
        "saml_entity_id": sso.saml_entity_id,
        "jit_provisioning": sso.jit_provisioning,
        "default_org_role": sso.default_org_role,
        "invitations_enabled": sso.invitations_enabled,
        "require_sso": sso.require_sso,
        "break_glass_user": sso.break_glass_user_id,
    }
    for default in sso.default_workspace_roles.all():
        initial[f"ws_{default.workspace_id.hex}"] = str(default.role_id)
    return initial


def service_provider_urls(request, sso) -> dict:
    """What the identity provider's admin copies into it: our URLs for this organization."""
    if sso is None:
        return {}
    absolute = request.build_absolute_uri
    slug = sso.organization.slug
    if sso.protocol == Protocol.SAML:
        return {
            "SP metadata URL (entity id)": absolute(reverse("saml_metadata", args=[slug])),
            "Assertion consumer service (ACS) URL": absolute(reverse("saml_acs", args=[slug])),
        }
    callback = reverse("openid_connect_callback", kwargs={"provider_id": sso.provider_id})
    return {"Redirect (callback) URL": absolute(callback)}


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def org_sso(request, org_slug):
    org = request.organization
    sso = services.sso_of(request.actor)
    form = SsoForm(request.POST or None, initial=_initial(sso), actor=request.actor)

    def save(data):
        services.save_sso(actor=request.actor, organization=org, **form.service_arguments())
        return "Single sign-on saved.", reverse(SETTINGS_URL, args=[org.slug])

    return console.saved(request, form, save) or console.form_page(
        request,
        "sso/settings.html",
        form,
        {
            "sso": sso,
            "domains": services.email_domains(request.actor),
            "domain_form": DomainForm(),
            "sp_urls": service_provider_urls(request, sso),
            "secret_set": bool(sso and sso.oidc_client_secret),
        },
        fragment=None,
    )


class DomainForm(forms.Form):
    domain = forms.CharField(label="Email domain", max_length=253)


@requires("organization:manage")
@require_POST
@sudo_required
def org_sso_domains(request, org_slug):
    """Claim an email domain (the admin's own email must be at it)."""
    url = reverse(SETTINGS_URL, args=[org_slug])
    form = DomainForm(request.POST)
    if not form.is_valid():
        return console.done(request, "Enter an email domain.", url, messages.ERROR)
    return console.attempt(
        request,
        lambda: services.claim_domain(
            actor=request.actor,
            organization=request.organization,
            domain=form.cleaned_data["domain"],
        ),
        lambda claimed: f"{claimed.domain} claimed.",
        url,
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
def org_sso_domain_release(request, org_slug, domain_id):
    email_domain = get_object_or_404(services.email_domains(request.actor), pk=domain_id)
    return console.confirm_then(
        request,
        lambda: services.release_domain(actor=request.actor, email_domain=email_domain),
        success=f"{email_domain.domain} released.",
        cancel_url=reverse(SETTINGS_URL, args=[org_slug]),
        title=f"Release {email_domain.domain}?",
        message="People at this domain will no longer sign in through your identity provider.",
        confirm_label=f"Release {email_domain.domain}",
        cancel_label="Keep domain",
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def org_sso_remove(request, org_slug):
    url = reverse(SETTINGS_URL, args=[org_slug])
    return console.confirm_then(
        request,
        lambda: services.remove_sso(actor=request.actor, organization=request.organization),
        success="Single sign-on removed.",
        cancel_url=url,
        title="Remove single sign-on?",
        message="Nobody will sign in through your identity provider; members sign in with "
        "passwords again (people provisioned by SSO have none until they reset it).",
        confirm_label="Remove single sign-on",
        cancel_label="Keep single sign-on",
    )
