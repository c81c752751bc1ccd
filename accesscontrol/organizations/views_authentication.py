"""Settings → Authentication: how the organization's members sign in (require MFA; the single
sign-on card is added beside it by the SSO settings)."""

from django import forms
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accesscontrol import console
from accesscontrol.accounts.sudo import sudo_required
from accesscontrol.organizations import services
from accesscontrol.organizations.models import RequireMfa
from accesscontrol.rbac.gate import requires


class RequireMfaForm(forms.Form):
    require_mfa = forms.ChoiceField(
        label="Require two-factor sign-in of",
        choices=RequireMfa.choices,
        widget=forms.RadioSelect,
        help_text="Those it covers who have no second factor are taken to set one up at their "
        "next page and can do nothing else until they have. API keys are not affected.",
    )


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
@sudo_required
def org_authentication(request, org_slug):
    org = request.organization
    form = RequireMfaForm(request.POST or None, initial={"require_mfa": org.require_mfa})

    def save(data):
        services.set_require_mfa(
            actor=request.actor, organization=org, require_mfa=data["require_mfa"]
        )
        return "Authentication settings saved.", reverse("org-authentication", args=[org.slug])

    return console.saved(request, form, save) or console.form_page(
        request, "organizations/authentication.html", form, fragment=None
    )
