"""An organization's "require MFA" on every way into it: a person it covers who has no second
factor is walked through enrolment whichever path brought them in, signing up through an
invitation or signing in with an existing account to accept one (accounts/mfa.py)."""

import pytest
from django.urls import reverse

from accesscontrol.organizations.models import OrganizationMembership, RequireMfa
from accesscontrol.organizations.services import invite_member
from tests.accounts.test_mfa import SECURITY, require, sign_in

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("org-overview", args=["acme"])


def invitation_path(world, capture, email):
    with capture(execute=True):
        _invitation, raw = invite_member(actor=world.org_admin, organization=world.org, email=email)
    return reverse("invitation-accept", args=[raw])


def test_signing_up_through_an_invitation_walks_through_enrolment(
    client, world, django_capture_on_commit_callbacks
):
    require(world.org, RequireMfa.EVERYONE)
    path = invitation_path(world, django_capture_on_commit_callbacks, "new.person@example.test")
    password = "violet-otter-harbour-91"
    client.post(path, {"full_name": "New", "password": password, "password_again": password})

    response = client.get(OVERVIEW)
    assert (response.status_code, response["Location"]) == (302, SECURITY)


def test_an_existing_account_accepting_an_invitation_is_walked_through_enrolment(
    client, world, django_capture_on_commit_callbacks
):
    """They sign in first (their other organization requires nothing, so the flag is down),
    then accept: from then on they are a member of an organization that requires MFA."""
    require(world.org, RequireMfa.EVERYONE)
    person = world.outsider  # of Globex only, which requires nothing
    path = invitation_path(world, django_capture_on_commit_callbacks, person.email)
    sign_in(client, person)
    assert client.post(path).status_code == 302
    assert OrganizationMembership.objects.filter(user=person, organization=world.org).exists()

    response = client.get(OVERVIEW)
    assert (response.status_code, response.get("Location")) == (302, SECURITY)
