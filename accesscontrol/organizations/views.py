from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accesscontrol.accounts.models import User
from accesscontrol.accounts.services import sign_up
from accesscontrol.organizations.services import accept_invitation as accept_invitation_service
from accesscontrol.organizations.services import find_invitation
from accesscontrol.rbac.context_processors import switcher_workspaces
from accesscontrol.rbac.gate import public, requires

PAGE_SIZE = 50


@requires("organization:read")
@require_GET
def org_overview(request, org_slug):
    org = request.organization
    counts = org.memberships.aggregate(
        members=Count("id"), admins=Count("id", filter=Q(org_role="admin"))
    )
    return render(
        request,
        "organizations/overview.html",
        {
            "counts": counts,
            "workspace_count": org.workspaces.filter(archived=False).count(),
            "workspaces": switcher_workspaces(request.user, org, request.access),
        },
    )


@requires("organization:read")
@require_GET
def org_members(request, org_slug):
    query = request.GET.get("q", "").strip()
    memberships = (
        request.organization.memberships.select_related("user")
        .annotate(workspace_count=Count("workspace_memberships"))
        .order_by("user__email")
    )
    if query:
        memberships = memberships.filter(
            Q(user__email__icontains=query) | Q(user__full_name__icontains=query)
        )
    page = Paginator(memberships, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "organizations/members.html"
    if request.htmx:
        template += "#member-rows"
    return render(request, template, {"page": page, "q": query})


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
        "account_exists": account_exists,
        "form": form,
        "wrong_user": user is not None and user.email != invitation.email,
    }
    if request.method == "POST" and not context["wrong_user"]:
        try:
            if user is None:
                if form is None or not form.is_valid():
                    return render(request, "organizations/invitation.html", context, status=400)
                with transaction.atomic():
                    user = sign_up(
                        email=invitation.email,
                        full_name=form.cleaned_data["full_name"],
                        password=form.cleaned_data["password"],
                    )
                    accept_invitation_service(invitation=invitation, user=user)
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                accept_invitation_service(invitation=invitation, user=user)
        except ValidationError as exc:
            if form is not None and hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.error(request, " ".join(exc.messages))
            return render(request, "organizations/invitation.html", context, status=400)
        messages.success(request, f"Welcome to {invitation.organization.name}.")
        return redirect("org-overview", invitation.organization.slug)
    return render(request, "organizations/invitation.html", context)
