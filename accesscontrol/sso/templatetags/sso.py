from django import template

from accesscontrol.sso import services

register = template.Library()


@register.inclusion_tag("sso/reauthenticate.html", takes_context=True)
def sso_reauthenticate(context):
    """The confirm page's "Re-authenticate with <provider>" button, for people signed in to an
    organization's SSO."""
    request = context["request"]
    user = request.user
    return {
        "sso": services.sso_of_user(user) if user.is_authenticated else None,
        "next": context.get("next"),
        "csrf_token": context.get("csrf_token"),
    }
