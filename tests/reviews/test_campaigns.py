"""Access recertification campaigns: the services, the console and the overdue flag.

A campaign snapshots memberships and keys as items, each decided keep or revoke; completing it
applies every revoke in one transaction (all or none), and the revoked principal loses access
on its very next request, checked here with the real console and API.
"""

import datetime
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac import who_has_access
from accesscontrol.reviews import services
from accesscontrol.reviews.models import Campaign, Item
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import pat_for, persona_statuses, service_key_for
from tests.support.api import api_call
from tests.support.pages import open_as

DAY = datetime.timedelta(days=1)
HTMX = {"HTTP_HX_REQUEST": "true"}


def start(world, workspace=None, actor=None, name="Q3 review", deadline=None):
    return services.start_campaign(
        actor=actor or world.org_admin,
        organization=world.org,
        workspace=workspace,
        name=name,
        deadline=deadline or timezone.now() + 7 * DAY,
    )


def key_of(raw):
    return ServiceKey.objects.get(digest=keys.digest(raw))


def items_of(campaign):
    return {(i.kind, i.label): i for i in campaign.items.all()}


def ids(campaign, *labels):
    return [i.pk for i in campaign.items.filter(label__in=labels)]


def decide(world, campaign, labels, decision):
    return services.decide(
        actor=world.org_admin,
        campaign=campaign,
        item_ids=ids(campaign, *labels),
        decision=decision,
    )


def keep_the_rest(world, campaign):
    undecided = list(campaign.items.filter(decision="").values_list("pk", flat=True))
    if undecided:
        services.decide(
            actor=world.org_admin, campaign=campaign, item_ids=undecided, decision="keep"
        )


def actions_since(first_id):
    return list(
        AuditEvent.objects.filter(id__gt=first_id).order_by("id").values_list("action", flat=True)
    )


def last_event_id():
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def is_member(user, workspace):
    return WorkspaceMembership.objects.filter(
        org_membership__user=user, workspace=workspace
    ).exists()


@pytest.fixture
def keys_around(world):
    """Live keys of production, staging and the organization; a revoked and an expired one."""
    made = {
        "production": key_of(service_key_for(world.workspace, "Editor")),
        "staging": key_of(service_key_for(world.other_workspace, "Viewer")),
        "organization": key_of(service_key_for(world.workspace, "Admin", org_scoped=True)),
        "revoked": key_of(service_key_for(world.workspace, "Viewer")),
        "expired": key_of(
            service_key_for(world.workspace, "Annotator", expires_at=timezone.now() + DAY)
        ),
    }
    ServiceKey.objects.filter(pk=made["revoked"].pk).update(revoked_at=timezone.now())
    ServiceKey.objects.filter(pk=made["expired"].pk).update(expires_at=timezone.now() - DAY)
    return made


# Starting: the snapshot ---------------------------------------------------------------------


def test_a_workspace_review_snapshots_its_members_and_keys(world, keys_around):
    campaign = start(world, world.workspace)
    members = {
        world.workspace_admin: "Admin",
        world.editor: "Editor",
        world.viewer: "Viewer",
        world.annotator: "Annotator",
        world.org_viewer: "Editor",
    }
    expected = {
        (Item.WORKSPACE_MEMBER, user.email): f"{role} in production"
        for user, role in members.items()
    } | {(Item.SERVICE_KEY, keys_around["production"].audit_label): "Editor, production"}
    got = items_of(campaign)
    assert {k: i.detail for k, i in got.items()} == expected
    # Org admins are admins everywhere by their org role: the org review covers them.
    assert world.org_admin.email not in {label for _, label in got}
    editor = got[(Item.WORKSPACE_MEMBER, world.editor.email)]
    membership = WorkspaceMembership.objects.get(
        org_membership__user=world.editor, workspace=world.workspace
    )
    assert editor.subject_id == membership.pk
    assert got[(Item.SERVICE_KEY, keys_around["production"].audit_label)].subject_id == (
        keys_around["production"].pk
    )
    assert all(not i.decision and not i.outcome for i in got.values())
    assert (campaign.status, campaign.scope_label) == ("open", "production")
    assert campaign.created_by == world.org_admin
    assert campaign.created_by_label == world.org_admin.email


def test_an_organization_review_snapshots_every_member_and_live_key(world, keys_around):
    campaign = start(world)
    people = {
        world.org_admin: "admin",
        world.workspace_admin: "member",
        world.editor: "member",
        world.viewer: "member",
        world.annotator: "member",
        world.member_without_workspace: "member",
        world.org_viewer: "viewer",
    }
    expected = {
        (Item.ORG_MEMBER, user.email): f"organization {role}" for user, role in people.items()
    } | {
        (Item.SERVICE_KEY, keys_around["production"].audit_label): "Editor, production",
        (Item.SERVICE_KEY, keys_around["staging"].audit_label): "Viewer, staging",
        (Item.SERVICE_KEY, keys_around["organization"].audit_label): "Admin, organization-wide",
    }
    assert {k: i.detail for k, i in items_of(campaign).items()} == expected
    assert campaign.scope_label == "the whole organization"
    assert world.outsider.email not in campaign.items.values_list("label", flat=True)


def make_stale(world):
    """Who has been inactive for more than 90 days, by the review's rules."""
    old = timezone.now() - 200 * DAY
    OrganizationMembership.objects.filter(organization=world.org).update(created_at=old)
    WorkspaceMembership.objects.filter(workspace__organization=world.org).update(created_at=old)
    users = type(world.editor).objects
    users.filter(pk=world.editor.pk).update(last_login=timezone.now() - 100 * DAY)
    users.filter(pk=world.viewer.pk).update(last_login=timezone.now() - 3 * DAY)
    # world.annotator never signed in: inactive since joining 200 days ago
    fresh = key_of(service_key_for(world.workspace, "Viewer"))
    unused = key_of(service_key_for(world.workspace, "Editor"))
    ServiceKey.objects.filter(pk=unused.pk).update(created_at=old)
    used = key_of(service_key_for(world.workspace, "Admin"))
    ServiceKey.objects.filter(pk=used.pk).update(created_at=old, last_used_at=timezone.now() - DAY)
    return fresh, unused, used


def test_the_snapshot_marks_stale_members_and_keys(world):
    fresh, unused, used = make_stale(world)
    got = {label: i.stale for (_, label), i in items_of(start(world, world.workspace)).items()}
    assert got[world.editor.email] is True
    assert got[world.viewer.email] is False
    assert got[world.annotator.email] is True
    assert got[unused.audit_label] is True
    assert got[used.audit_label] is False
    assert got[fresh.audit_label] is False
    org_items = {label: i.stale for (_, label), i in items_of(start(world)).items()}
    assert org_items[world.editor.email] is True
    assert org_items[world.viewer.email] is False


def test_stale_flags_agree_with_who_has_access(world):
    """A member who works through a personal access token is active, as the review says."""
    make_stale(world)
    raw = pat_for(world.editor, world.org)
    PersonalAccessToken.objects.filter(digest=keys.digest(raw)).update(
        last_used_at=timezone.now() - DAY
    )
    reviewed = {r.label: r.stale for r in who_has_access.workspace_access(world.workspace)}
    assert reviewed[world.editor.email] is False
    snapshot = {label: i.stale for (_, label), i in items_of(start(world, world.workspace)).items()}
    for label, stale in snapshot.items():
        assert stale == reviewed[label], label
    org_snapshot = {label: i.stale for (_, label), i in items_of(start(world)).items()}
    assert org_snapshot[world.editor.email] is False


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"deadline": "past"}, "deadline"),
        ({"workspace": "globex"}, "workspace"),
    ],
)
def test_start_refuses_bad_input_and_writes_nothing(world, kwargs, field):
    if kwargs.get("deadline") == "past":
        kwargs["deadline"] = timezone.now() - DAY
    if kwargs.get("workspace") == "globex":
        kwargs["workspace"] = world.other_workspace_of_other_org
    with pytest.raises(ValidationError) as raised:
        start(world, **kwargs)
    assert field in raised.value.message_dict
    assert not Campaign.objects.exists()
    assert not Item.objects.exists()
    assert not AuditEvent.objects.exists()


# Deciding ------------------------------------------------------------------------------------


def test_deciding_one_item_records_who_decided_and_one_event(world):
    campaign = start(world, world.workspace)
    first = last_event_id()
    assert decide(world, campaign, [world.viewer.email], "revoke") == 1
    item = campaign.items.get(label=world.viewer.email)
    assert (item.decision, item.decided_by_label) == ("revoke", world.org_admin.email)
    assert timezone.now() - item.decided_at < datetime.timedelta(minutes=1)
    assert actions_since(first) == ["access_review.decided"]
    event = AuditEvent.objects.get(action="access_review.decided")
    assert event.target_id == str(item.pk)
    assert event.changes == {"before": {"decision": None}, "after": {"decision": "revoke"}}


def test_deciding_in_bulk_records_one_event_per_item(world):
    campaign = start(world, world.workspace)
    labels = [world.viewer.email, world.editor.email, world.annotator.email]
    first = last_event_id()
    assert decide(world, campaign, labels, "keep") == 3
    assert actions_since(first) == ["access_review.decided"] * 3
    targets = set(AuditEvent.objects.filter(id__gt=first).values_list("target_id", flat=True))
    assert targets == {str(pk) for pk in ids(campaign, *labels)}
    assert set(campaign.items.filter(decision="keep").values_list("label", flat=True)) == set(
        labels
    )
    assert campaign.items.filter(decision="").count() == 2


def test_deciding_items_of_another_campaign_changes_nothing(world):
    mine, other = start(world, world.workspace), start(world, world.other_workspace)
    foreign = list(other.items.values_list("pk", flat=True))
    first = last_event_id()
    with pytest.raises(ValidationError, match="Select at least one item"):
        services.decide(actor=world.org_admin, campaign=mine, item_ids=foreign, decision="revoke")
    assert not other.items.exclude(decision="").exists()
    assert actions_since(first) == []


@pytest.mark.parametrize("decision", ["", "delete", "KEEP", None])
def test_only_keep_or_revoke(world, decision):
    campaign = start(world, world.workspace)
    with pytest.raises(ValidationError):
        decide(world, campaign, [world.viewer.email], decision)
    assert not campaign.items.exclude(decision="").exists()


# Completing ----------------------------------------------------------------------------------


def test_completing_with_undecided_items_is_refused(world):
    campaign = start(world, world.workspace)
    decide(world, campaign, [world.viewer.email], "revoke")
    first = last_event_id()
    with pytest.raises(ValidationError, match="4 item"):
        services.complete_campaign(actor=world.org_admin, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.completed_at is None
    assert is_member(world.viewer, world.workspace)
    assert actions_since(first) == []


def test_completing_applies_every_revoke_and_records_the_outcomes(world, keys_around):
    campaign = start(world, world.workspace)
    key = keys_around["production"]
    decide(world, campaign, [world.viewer.email, world.annotator.email, key.audit_label], "revoke")
    keep_the_rest(world, campaign)
    first = last_event_id()

    # Reviews are the organization's (organization:manage), whoever the service is called by.
    with pytest.raises(ValidationError):
        services.complete_campaign(actor=world.workspace_admin, campaign=campaign)
    result = services.complete_campaign(actor=world.org_admin, campaign=campaign)

    assert result == {"kept": 3, "revoked": 3}
    assert not is_member(world.viewer, world.workspace)
    assert not is_member(world.annotator, world.workspace)
    assert is_member(world.editor, world.workspace)
    assert OrganizationMembership.objects.filter(user=world.viewer).exists()  # only the workspace
    key.refresh_from_db()
    assert key.revoked_at is not None
    outcomes = {label: i.outcome for (_, label), i in items_of(campaign).items()}
    assert outcomes == {
        world.workspace_admin.email: "kept",
        world.editor.email: "kept",
        world.org_viewer.email: "kept",
        world.viewer.email: "removed from the workspace",
        world.annotator.email: "removed from the workspace",
        key.audit_label: "revoked",
    }
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    assert campaign.completed_by_label == world.org_admin.email
    # In the items' order (keys before workspace members), then the completion.
    assert actions_since(first) == [
        "service_key.revoked",
        "workspace_member.removed",
        "workspace_member.removed",
        "access_review.completed",
    ]


def test_an_organization_review_removes_people_from_the_organization(world, keys_around):
    campaign = start(world)
    token = pat_for(world.editor, world.org)
    decide(world, campaign, [world.editor.email, keys_around["staging"].audit_label], "revoke")
    keep_the_rest(world, campaign)
    services.complete_campaign(actor=world.org_admin, campaign=campaign)
    assert not OrganizationMembership.objects.filter(user=world.editor).exists()
    assert not WorkspaceMembership.objects.filter(org_membership__user=world.editor).exists()
    assert not PersonalAccessToken.objects.filter(digest=keys.digest(token)).exists()
    assert key_of_pk(keys_around["staging"]).revoked_at is not None
    assert key_of_pk(keys_around["production"]).revoked_at is None


def key_of_pk(key):
    return ServiceKey.objects.get(pk=key.pk)


def test_if_one_revoke_fails_nothing_is_applied(world, keys_around):
    """Revoking the last org admin fails, so the editor and the key are not revoked either."""
    campaign = start(world)
    key = keys_around["organization"]
    decide(world, campaign, [world.editor.email, world.org_admin.email, key.audit_label], "revoke")
    keep_the_rest(world, campaign)
    first = last_event_id()

    with pytest.raises(ValidationError, match="at least one admin") as raised:
        services.complete_campaign(actor=world.org_admin, campaign=campaign)

    assert world.org_admin.email in raised.value.messages[0]
    assert "Nothing was applied" in raised.value.messages[0]
    assert OrganizationMembership.objects.filter(user=world.editor, organization=world.org).exists()
    assert is_member(world.editor, world.workspace)
    assert key_of_pk(key).revoked_at is None
    campaign.refresh_from_db()
    assert campaign.completed_at is None
    assert not campaign.items.exclude(outcome="").exists()
    assert actions_since(first) == []
    # Once the admin is kept, it completes.
    decide(world, campaign, [world.org_admin.email], "keep")
    assert services.complete_campaign(actor=world.org_admin, campaign=campaign) == {
        "kept": 8,
        "revoked": 2,
    }


def test_a_member_removed_meanwhile_is_already_removed(world):
    from accesscontrol.workspaces.services import remove_workspace_member

    campaign = start(world, world.workspace)
    decide(world, campaign, [world.viewer.email], "revoke")
    keep_the_rest(world, campaign)
    remove_workspace_member(
        actor=world.workspace_admin,
        membership=WorkspaceMembership.objects.get(
            org_membership__user=world.viewer, workspace=world.workspace
        ),
    )
    assert services.complete_campaign(actor=world.org_admin, campaign=campaign) == {
        "kept": 4,
        "revoked": 1,
    }
    assert campaign.items.get(label=world.viewer.email).outcome == "already removed"


def test_a_completed_campaign_refuses_new_decisions_and_a_second_completion(world):
    campaign = start(world, world.workspace)
    keep_the_rest(world, campaign)
    services.complete_campaign(actor=world.org_admin, campaign=campaign)
    first = last_event_id()
    with pytest.raises(ValidationError, match="completed"):
        decide(world, campaign, [world.viewer.email], "revoke")
    with pytest.raises(ValidationError, match="completed"):
        services.complete_campaign(actor=world.org_admin, campaign=campaign)
    assert campaign.items.get(label=world.viewer.email).decision == "keep"
    assert actions_since(first) == []


# The revoked lose access on their next request ----------------------------------------------


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_revoked_workspace_member_loses_access_on_the_next_request(world, keys_around):
    viewer = signed_in(world.viewer)
    token = pat_for(world.viewer, world.org)
    raw_key = service_key_for(world.workspace, "Viewer")
    api = Client()
    assert viewer.get("/o/acme/w/production/").status_code == 200
    sessions = ("get", "/sessions")
    assert api_call(api, *sessions, token, tenant=world.workspace.pk).status_code == 200
    assert api_call(api, *sessions, raw_key).status_code == 200

    campaign = start(world, world.workspace)
    decide(world, campaign, [world.viewer.email, key_of(raw_key).audit_label], "revoke")
    keep_the_rest(world, campaign)
    services.complete_campaign(actor=world.org_admin, campaign=campaign)

    assert viewer.get("/o/acme/w/production/").status_code == 403
    assert viewer.get("/o/acme/w/production/members/").status_code == 403
    assert viewer.get("/o/acme/").status_code == 200  # still in the organization
    response = api_call(api, *sessions, token, tenant=world.workspace.pk)
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    response = api_call(api, *sessions, raw_key)
    assert (response.status_code, response.json()["error"]) == (401, "revoked_api_key")
    # Those kept keep their access.
    assert signed_in(world.editor).get("/o/acme/w/production/").status_code == 200


def test_revoked_organization_member_loses_access_on_the_next_request(world):
    editor = signed_in(world.editor)
    token = pat_for(world.editor, world.org)
    assert editor.get("/o/acme/w/production/").status_code == 200
    campaign = start(world)
    decide(world, campaign, [world.editor.email], "revoke")
    keep_the_rest(world, campaign)
    services.complete_campaign(actor=world.org_admin, campaign=campaign)
    assert editor.get("/o/acme/w/production/").status_code == 404
    assert editor.get("/o/acme/").status_code == 404
    response = api_call(Client(), "get", "/auth/whoami", token)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_api_key")


# The console ---------------------------------------------------------------------------------

REVIEWS = "/o/acme/reviews/"


def review_url(campaign, suffix=""):
    return f"/o/{campaign.organization.slug}/reviews/{campaign.pk}/{suffix}"


@pytest.fixture
def admin(client, world):
    client.force_login(world.org_admin)
    return client


@pytest.mark.parametrize(("persona", "status"), persona_statuses("org_admin"))
def test_reviews_are_for_organization_managers_only(client, world, persona, status):
    campaign = start(world, world.workspace)
    for url in (REVIEWS, review_url(campaign), review_url(campaign, "complete/")):
        open_as(client, world, persona, url, status, "organization:manage")


def test_starting_a_review_from_the_console(admin, world):
    deadline = (timezone.now() + 10 * DAY).date()
    response = admin.post(
        REVIEWS,
        {"name": "Production, Q3", "workspace": str(world.workspace.pk), "deadline": deadline},
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == review_url(campaign)
    assert (campaign.name, campaign.workspace, campaign.created_by) == (
        "Production, Q3",
        world.workspace,
        world.org_admin,
    )
    assert campaign.deadline == datetime.datetime.combine(
        deadline, datetime.time(23, 59), tzinfo=datetime.UTC
    )
    page = admin.get(review_url(campaign)).content.decode()
    assert "Review “Production, Q3” started with 5 item(s)." in page
    for user in (world.editor, world.viewer, world.annotator):
        assert user.email in page
    listing = admin.get(REVIEWS).content.decode()
    assert "Production, Q3" in listing and "5 undecided" in listing


def test_starting_a_review_of_the_whole_organization(admin, world):
    deadline = (timezone.now() + 10 * DAY).date()
    admin.post(REVIEWS, {"name": "Everyone", "workspace": "", "deadline": deadline})
    assert Campaign.objects.get().workspace is None
    assert Campaign.objects.get().items.count() == 7


@pytest.mark.parametrize(
    "data",
    [
        {"name": "late", "workspace": "", "deadline": "2020-01-01"},
        {"name": "", "workspace": "", "deadline": "2030-01-01"},
        {"name": "x", "workspace": "globex", "deadline": "2030-01-01"},
    ],
)
def test_a_bad_start_is_a_422_and_starts_nothing(admin, world, data):
    if data["workspace"] == "globex":
        data = data | {"workspace": str(world.other_workspace_of_other_org.pk)}
    response = admin.post(REVIEWS, data)
    assert response.status_code == 422
    assert not Campaign.objects.exists()


def test_an_archived_workspace_cannot_be_chosen(admin, world):
    world.other_workspace.archived = True
    world.other_workspace.save()
    body = admin.get(REVIEWS).content.decode()
    assert f'value="{world.workspace.pk}"' in body
    assert f'value="{world.other_workspace.pk}"' not in body


def globex_campaign(world):
    """A review Globex's admin started, due tomorrow."""
    deadline = timezone.now() + DAY
    return services.start_campaign(
        actor=world.outsider, organization=world.other_org, name="Globex", deadline=deadline
    )


def test_another_organizations_campaign_is_not_found(admin, world):
    globex = globex_campaign(world)
    item = globex.items.first()
    for url in (
        f"/o/acme/reviews/{globex.pk}/",
        f"/o/acme/reviews/{globex.pk}/complete/",
    ):
        assert admin.get(url).status_code == 404
    response = admin.post(
        f"/o/acme/reviews/{globex.pk}/decide/?item={item.pk}&decision=revoke", **HTMX
    )
    assert response.status_code == 404
    assert admin.post(f"/o/acme/reviews/{globex.pk}/complete/").status_code == 404
    assert not globex.items.exclude(decision="").exists()
    globex.refresh_from_db()
    assert globex.completed_at is None
    # And its own admins get it under their organization only.
    other = signed_in(world.outsider)
    assert other.get(review_url(globex)).status_code == 200
    assert other.get(f"/o/globex/reviews/{start(world).pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["editor", "workspace_admin", "org_viewer"])
def test_forged_posts_by_non_managers_are_refused(client, world, persona):
    campaign = start(world, world.workspace)
    item = campaign.items.get(label=world.viewer.email)
    client.force_login(world.persona(persona))
    first = last_event_id()
    posts = [
        (review_url(campaign, f"decide/?item={item.pk}&decision=revoke"), {}),
        (review_url(campaign, "decide/"), {"item": [str(item.pk)], "decision": "revoke"}),
        (review_url(campaign, "decide/"), {"scope": "undecided", "decision": "keep"}),
        (review_url(campaign, "complete/"), {}),
        (REVIEWS, {"name": "mine", "workspace": "", "deadline": "2030-01-01"}),
    ]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert response["X-Required-Permission"] == "organization:manage"
    assert not campaign.items.exclude(decision="").exists()
    assert Campaign.objects.count() == 1
    assert actions_since(first) == []


def test_a_rows_button_swaps_the_row_with_htmx(admin, world):
    campaign = start(world, world.workspace)
    item = campaign.items.get(label=world.viewer.email)
    response = admin.post(review_url(campaign, f"decide/?item={item.pk}&decision=revoke"), **HTMX)
    assert response.status_code == 200
    body = response.content.decode().strip()
    assert body.startswith(f'<tr id="item-{item.pk}">')
    assert body.count("<tr") == 1
    # Out of band, the campaign's progress above the table follows the decision.
    undecided = campaign.items.filter(decision="").count()
    assert body.endswith(
        f'<template><dd id="campaign-progress" hx-swap-oob="true">{undecided} undecided, '
        "1 to revoke</dd></template>"
    )
    assert '<span class="decision decision-revoke">Revoke</span>' in body
    assert world.org_admin.email in body  # who decided
    trigger = json.loads(response["HX-Trigger"])
    assert trigger == {"toast": {"message": f"{world.viewer.email}: revoke.", "level": "success"}}
    item.refresh_from_db()
    assert item.decision == "revoke"


def test_a_rows_button_without_htmx_redirects_back(admin, world):
    campaign = start(world, world.workspace)
    item = campaign.items.get(label=world.viewer.email)
    response = admin.post(review_url(campaign, f"decide/?item={item.pk}&decision=keep"))
    assert (response.status_code, response["Location"]) == (302, review_url(campaign))
    item.refresh_from_db()
    assert item.decision == "keep"


def test_bulk_decisions_from_the_checkboxes_and_keep_everything_undecided(admin, world):
    campaign = start(world, world.workspace)
    chosen = ids(campaign, world.viewer.email, world.editor.email)
    response = admin.post(
        review_url(campaign, "decide/"),
        {"item": [str(pk) for pk in chosen] + ["not-a-uuid"], "decision": "revoke"},
    )
    assert response.status_code == 302
    assert set(campaign.items.filter(decision="revoke").values_list("pk", flat=True)) == set(chosen)
    admin.post(review_url(campaign, "decide/"), {"scope": "undecided", "decision": "keep"})
    assert campaign.items.filter(decision="keep").count() == 3
    assert campaign.items.filter(decision="revoke").count() == 2
    page = admin.get(review_url(campaign)).content.decode()
    assert "0 undecided, 2 to revoke" in page


def test_deciding_nothing_is_a_message_not_an_error(admin, world):
    campaign = start(world, world.workspace)
    response = admin.post(review_url(campaign, "decide/"), {"decision": "keep"}, follow=True)
    assert response.status_code == 200
    assert "Select at least one item of this review." in response.content.decode()


def test_completing_from_the_console(admin, world):
    campaign = start(world, world.workspace)
    decide(world, campaign, [world.viewer.email], "revoke")

    response = admin.post(review_url(campaign, "complete/"), follow=True)
    assert "4 item(s) have no decision yet" in response.content.decode()
    assert is_member(world.viewer, world.workspace)

    keep_the_rest(world, campaign)
    confirm = admin.get(review_url(campaign, "complete/"), **HTMX).content.decode()
    assert "1 revocation(s) are applied at once, all or none" in confirm
    assert f"{world.viewer.email} — Viewer in production" in confirm
    assert 'id="modal-title"' in confirm and "<html" not in confirm

    response = admin.post(review_url(campaign, "complete/"), **HTMX)
    assert (response.status_code, response["HX-Redirect"]) == (204, review_url(campaign))
    page = admin.get(review_url(campaign)).content.decode()
    assert "Review completed: 1 revoked, 4 kept." in page
    assert "removed from the workspace" in page
    assert "Complete review…" not in page
    assert 'name="decision"' not in page  # no more buttons
    assert not is_member(world.viewer, world.workspace)


def test_a_failed_completion_is_a_message_and_applies_nothing(admin, world):
    campaign = start(world)
    decide(world, campaign, [world.editor.email, world.org_admin.email], "revoke")
    keep_the_rest(world, campaign)
    response = admin.post(review_url(campaign, "complete/"), follow=True)
    body = response.content.decode()
    assert "An organization must keep at least one admin." in body
    assert "Nothing was applied." in body
    assert OrganizationMembership.objects.filter(user=world.editor).exists()
    campaign.refresh_from_db()
    assert campaign.completed_at is None


# Overdue reviews on the organization overview ---------------------------------------------------


def overdue_alerts(client):
    body = client.get("/o/acme/").content.decode()
    return re.findall(r'<div class="alert alert-warning" role="alert">(.*?)</div>', body, re.S)


def past_deadline(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(deadline=timezone.now() - DAY)


def test_an_overdue_review_with_undecided_items_is_flagged_on_the_overview(admin, world):
    campaign = start(world, world.workspace, name="Late review")
    decide(world, campaign, [world.viewer.email], "keep")
    assert overdue_alerts(admin) == []  # not yet due
    past_deadline(campaign)
    (alert,) = overdue_alerts(admin)
    assert "Late review" in alert
    assert f'href="{review_url(campaign)}"' in alert
    assert "4 undecided items" in alert
    campaign.refresh_from_db()
    assert campaign.status == "overdue"


def test_overdue_reviews_are_shown_to_organization_managers_only(client, world):
    past_deadline(start(world, world.workspace, name="Late review"))
    for persona in ("editor", "workspace_admin", "org_viewer"):
        client.force_login(world.persona(persona))
        assert overdue_alerts(client) == [], persona


def test_decided_or_completed_reviews_are_not_flagged(admin, world):
    decided = start(world, world.workspace, name="All decided")
    keep_the_rest(world, decided)
    completed = start(world, world.other_workspace, name="Completed")
    keep_the_rest(world, completed)
    services.complete_campaign(actor=world.org_admin, campaign=completed)
    past_deadline(decided)
    past_deadline(completed)
    assert overdue_alerts(admin) == []


def test_a_globex_overdue_review_is_not_flagged_at_acme(admin, world):
    globex = globex_campaign(world)
    past_deadline(globex)
    assert overdue_alerts(admin) == []
    assert len(overdue_alerts_of(signed_in(world.outsider), "globex")) == 1


def overdue_alerts_of(client, slug):
    body = client.get(f"/o/{slug}/").content.decode()
    return re.findall(r'<div class="alert alert-warning" role="alert">', body)
