"""Enrolment first: a person an organization requires MFA of, who has no second factor, reaches
only the enrolment pages and signing out until they have one (accounts/mfa.py).

Whether that is so is decided when they sign in and again whenever they add or remove a factor,
and kept in the session: the check costs a page nothing, except one query while the flag is up.
API keys are not sessions; the gate's API routes are never sent here.
"""

from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accesscontrol.accounts import mfa
from accesscontrol.rbac import gate


class MfaEnrolmentMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        rule = gate.rule_of(view_func)
        if rule is None or rule.kind in (gate.PUBLIC, gate.API):
            return None  # before the session is read: an API request never loads one
        if not request.session.get(mfa.MUST_ENROL) or not request.user.is_authenticated:
            return None
        if request.resolver_match.url_name in mfa.ENROLMENT_PAGES:
            return None
        if not mfa.must_enrol(request.user):
            # Enrolled since (or no longer required): one query, only while the flag is up.
            request.session.pop(mfa.MUST_ENROL, None)
            return None
        url = reverse(mfa.ENROL_URL)
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
