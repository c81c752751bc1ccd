"""Rotating a key with overlap (issue #17 item 2): the successor at once, the old key until the
grace expiry its rotator picked, then refused with a detail that names the successor.

Time is moved by patching django.utils.timezone.now, never slept through.
"""

import datetime
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from accesscontrol.apikeys import keys, rotation
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import (
    create_personal_access_token,
    revoke_service_key,
    set_service_key_ip_allow_list,
)
from accesscontrol.audit.models import AuditEvent
from tests.factories import pat_for, service_key_for
from tests.support.api import api_call
from tests.support.db import assert_no_key_in_audit


def row_of(raw):
    model = PersonalAccessToken if raw.startswith("lsv2_pt_") else ServiceKey
    return model.objects.get(digest=keys.digest(raw))


def whoami(client, raw):
    return api_call(client, "get", "/auth/whoami", raw)


def later(**delta):
    """Patch the clock to now + delta (every timezone.now() in the app reads it)."""
    return mock.patch("django.utils.timezone.now", return_value=timezone.now() + delta_of(delta))


def delta_of(delta):
    return datetime.timedelta(**delta)


def rotate_over_api(client, raw_admin, key, grace_hours=24, *, tenant=None):
    path = f"/api-key/{key.pk}/rotate"
    if isinstance(key, PersonalAccessToken):
        path = f"/orgs/current/personal-access-tokens/{key.pk}/rotate"
    return api_call(
        client, "post", path, raw_admin, json={"grace_hours": grace_hours}, tenant=tenant
    )


# Overlap, then refusal that names the successor


def test_a_rotated_service_key_works_in_its_grace_period_and_is_refused_after_it(client, world):
    admin = pat_for(world.workspace_admin, world.org)
    old_raw = service_key_for(world.workspace, "Editor")
    assert whoami(client, old_raw).status_code == 200  # cached in this process from here on

    response = rotate_over_api(client, admin, row_of(old_raw), grace_hours=2)

    assert response.status_code == 201, response.content
    body = response.json()
    new_raw = body["key"]
    assert new_raw != old_raw and keys.parse(new_raw).kind == keys.SERVICE
    assert body["rotated_from"]["rotated_to_id"] == body["id"]
    # Both work during the overlap, with the same role.
    assert whoami(client, old_raw).json()["role"] == "Editor"
    assert whoami(client, new_raw).json()["role"] == "Editor"
    with later(hours=1, minutes=59):
        assert whoami(client, old_raw).status_code == 200
    with later(hours=2, seconds=1):
        refused = whoami(client, old_raw)
        assert whoami(client, new_raw).status_code == 200
    assert refused.status_code == 401
    assert refused.json()["error"] == "expired_api_key"
    successor = row_of(new_raw)
    assert successor.hint in refused.json()["detail"]
    assert "rotated" in refused.json()["detail"]


def test_a_rotated_token_works_in_its_grace_period_and_is_refused_after_it(client, world):
    old_raw = pat_for(world.editor, world.org)

    response = rotate_over_api(client, old_raw, row_of(old_raw), grace_hours=1)

    assert response.status_code == 201, response.content
    new_raw = response.json()["key"]
    assert keys.parse(new_raw).kind == keys.PERSONAL
    assert whoami(client, new_raw).json()["user_email"] == world.editor.email
    with later(minutes=59):
        assert whoami(client, old_raw).status_code == 200
    with later(hours=1, seconds=1):
        refused = whoami(client, old_raw).json()
    assert refused["error"] == "expired_api_key"
    assert row_of(new_raw).hint in refused["detail"]


def test_a_key_that_expires_before_its_grace_ends_keeps_its_earlier_expiry(world):
    soon = timezone.now() + datetime.timedelta(minutes=30)
    raw = service_key_for(world.workspace, expires_at=soon)
    successor, _, old = rotation.rotate_service_key(
        actor=world.org_admin, key=row_of(raw), grace_hours=24
    )
    assert old.expires_at == soon
    # The successor gets the life its predecessor was given, from now.
    assert successor.expires_at > soon


# What the successor carries over


def test_the_successor_carries_every_field_but_its_own_identity(world):
    raw = service_key_for(world.workspace, "Viewer")
    old = row_of(raw)
    successor, _, _ = rotation.rotate_service_key(actor=world.org_admin, key=old, grace_hours=24)
    old.refresh_from_db()
    successor.refresh_from_db()
    # Generic on purpose: a field another change adds to keys (a token's limits, an allow list)
    # must carry over unless it is part of a key's own identity or history.
    for field in ServiceKey._meta.concrete_fields:
        if field.name in rotation.OWN_FIELDS:
            continue
        assert getattr(successor, field.attname) == getattr(old, field.attname), field.name
    assert successor.name == old.name and successor.role.name == "Viewer"
    assert successor.workspace_id == world.workspace.pk
    assert successor.digest != old.digest and successor.hint != old.hint
    assert old.rotated_to_id == successor.pk and successor.rotated_to_id is None


def test_the_successor_of_a_token_acts_as_the_same_user(world):
    raw = pat_for(world.viewer, world.org)
    old = row_of(raw)
    successor, _, _ = rotation.rotate_personal_access_token(
        actor=world.viewer, token=old, grace_hours=1
    )
    assert successor.org_membership_id == old.org_membership_id
    assert successor.name == old.name


def test_a_narrowed_tokens_successor_keeps_its_limits_and_a_keys_its_allow_list(world):
    token, _ = create_personal_access_token(
        user=world.viewer,
        organization=world.org,
        name="reader",
        preset="read-only",
        workspaces=[world.workspace.pk],
    )
    successor, _, _ = rotation.rotate_personal_access_token(
        actor=world.viewer, token=token, grace_hours=1
    )
    successor.refresh_from_db()
    assert successor.permission_limit == token.permission_limit
    assert successor.permission_limit and "datasets:read" in successor.permission_limit
    assert successor.workspace_limit == [str(world.workspace.pk)]

    key = row_of(service_key_for(world.workspace, "Viewer"))
    set_service_key_ip_allow_list(actor=world.org_admin, key=key, ip_allow_list=["10.0.0.0/8"])
    key.refresh_from_db()
    new_key, _, _ = rotation.rotate_service_key(actor=world.org_admin, key=key, grace_hours=1)
    new_key.refresh_from_db()
    assert new_key.ip_allow_list == ["10.0.0.0/8"]


# One audit event, never the key


def test_a_rotation_is_one_audit_event_with_before_and_after(client, world):
    admin = pat_for(world.workspace_admin, world.org)
    old_raw = service_key_for(world.workspace)
    old = row_of(old_raw)
    before = AuditEvent.objects.count()

    new_raw = rotate_over_api(client, admin, old, grace_hours=6).json()["key"]

    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("id")
    assert event.action == "service_key.rotated"
    assert event.target_id == str(old.pk)
    assert event.actor_kind == "personal_access_token"
    assert event.changes["before"] == {"hint": old.hint, "expires_at": None}
    after = event.changes["after"]
    assert after["grace_hours"] == 6
    assert after["successor"]["hint"] == row_of(new_raw).hint
    assert after["expires_at"] == row_of(old_raw).expires_at.isoformat()
    assert_no_key_in_audit([old_raw, new_raw, admin])


# The grace period: 1 hour to 7 days


@pytest.mark.parametrize("grace", [0, -1, 169, 24 * 365, "1d", None, 1.5])
def test_a_grace_period_outside_1_hour_to_7_days_is_refused(client, world, grace):
    admin = pat_for(world.workspace_admin, world.org)
    old = row_of(service_key_for(world.workspace))

    response = rotate_over_api(client, admin, old, grace_hours=grace)

    assert response.status_code == 422, response.content
    assert "grace_hours" in str(response.json())
    old.refresh_from_db()
    assert old.rotated_to_id is None and old.expires_at is None
    assert ServiceKey.objects.count() == 1


@pytest.mark.parametrize("grace", [1, 168])
def test_the_ends_of_the_grace_range_are_accepted(world, grace):
    old = row_of(service_key_for(world.workspace))
    _, _, old = rotation.rotate_service_key(actor=world.org_admin, key=old, grace_hours=grace)
    expected = timezone.now() + datetime.timedelta(hours=grace)
    assert abs(old.expires_at - expected) < datetime.timedelta(minutes=1)


# Who may rotate: who may revoke the key and make its successor


def test_who_cannot_manage_the_workspace_cannot_rotate_its_keys(client, world):
    editor = pat_for(world.editor, world.org)
    old = row_of(service_key_for(world.workspace))
    response = rotate_over_api(client, editor, old)
    assert response.status_code == 403
    assert response.json()["required"] == "workspaces:manage"
    assert ServiceKey.objects.count() == 1


def test_an_org_admin_cannot_rotate_someone_elses_token(world):
    token = row_of(pat_for(world.editor, world.org))
    with pytest.raises(Exception, match="Only its owner") as refused:
        rotation.rotate_personal_access_token(actor=world.org_admin, token=token, grace_hours=1)
    assert refused.value.code == "permission"
    assert PersonalAccessToken.objects.count() == 1


def test_another_organizations_key_is_not_found(client, world):
    outsider = pat_for(world.outsider, world.other_org)
    old = row_of(service_key_for(world.workspace))
    assert rotate_over_api(client, outsider, old).status_code == 404
    token = row_of(pat_for(world.editor, world.org))
    assert rotate_over_api(client, outsider, token).status_code == 404


def test_a_key_rotates_once_and_a_dead_key_not_at_all(client, world):
    admin = pat_for(world.workspace_admin, world.org)
    old = row_of(service_key_for(world.workspace))
    assert rotate_over_api(client, admin, old).status_code == 201
    again = rotate_over_api(client, admin, old)
    assert again.status_code == 422
    assert "rotate its successor" in again.json()["detail"]
    revoked = row_of(service_key_for(world.workspace))
    revoke_service_key(actor=world.org_admin, key=revoked)
    assert rotate_over_api(client, admin, revoked).status_code == 422


def test_no_token_is_rotated_where_the_organization_disallows_tokens(world):
    token = row_of(pat_for(world.editor, world.org))
    world.org.allow_personal_access_tokens = False
    world.org.save()
    token.refresh_from_db()
    with pytest.raises(Exception, match="does not allow personal access tokens"):
        rotation.rotate_personal_access_token(actor=world.editor, token=token, grace_hours=1)


# The console


def test_rotating_in_the_console_shows_the_new_key_once_and_marks_the_old_one(client, world):
    raw = service_key_for(world.workspace)
    old = row_of(raw)
    client.force_login(world.workspace_admin)
    url = reverse("service-key-rotate", args=["acme", "production", old.pk])

    form = client.get(url)
    assert form.status_code == 200
    assert b"grace_hours" in form.content

    posted = client.post(url, {"grace_hours": "72"})

    # The POST redirects to the list, which shows the successor this once.
    listing = reverse("service-keys", args=["acme", "production"])
    assert (posted.status_code, posted["Location"]) == (302, listing)
    assert not keys.IN_TEXT.search(posted.content.decode())
    old.refresh_from_db()
    successor = ServiceKey.objects.get(pk=old.rotated_to_id)
    text = client.get(listing).content.decode()
    new_raw = keys.IN_TEXT.search(text).group(0)
    assert keys.digest(new_raw) == successor.digest
    assert old.hint in text
    assert f"{old.name} was rotated" in text
    before = ServiceKey.objects.count()
    page = client.get(listing).content.decode()  # a reload
    assert new_raw not in page
    assert "rotated: works until" in page
    assert ServiceKey.objects.count() == before


def test_the_console_refuses_a_grace_period_it_does_not_offer(client, world):
    token = row_of(pat_for(world.editor, world.org))
    client.force_login(world.editor)
    url = reverse("personal-token-rotate", args=["acme", token.pk])
    response = client.post(url, {"grace_hours": "500"})
    assert response.status_code == 422
    assert b"grace_hours" in response.content
    assert PersonalAccessToken.objects.count() == 1


def test_a_token_rotated_in_the_console_is_refused_after_its_grace(client, world):
    old_raw = pat_for(world.editor, world.org)
    client.force_login(world.editor)
    url = reverse("personal-token-rotate", args=["acme", row_of(old_raw).pk])
    response = client.post(url, {"grace_hours": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("personal-tokens", args=["acme"])
    page = client.get(response["HX-Redirect"]).content.decode()
    new_raw = keys.IN_TEXT.search(page).group(0)
    with later(hours=2):
        refused = whoami(client, old_raw).json()
        assert whoami(client, new_raw).status_code == 200
    assert refused["error"] == "expired_api_key"
    assert row_of(new_raw).hint in refused["detail"]


def test_the_console_grace_period_defaults_to_a_day_as_the_api_does(client, world):
    old = row_of(service_key_for(world.workspace))
    client.force_login(world.org_admin)
    url = reverse("service-key-rotate", args=["acme", "production", old.pk])
    assert client.post(url, {}).status_code == 302
    old.refresh_from_db()
    expected = timezone.now() + datetime.timedelta(hours=24)
    assert abs(old.expires_at - expected) < datetime.timedelta(minutes=1)
