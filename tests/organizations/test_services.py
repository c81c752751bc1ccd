"""Organizations and their members: every change is atomic, audited, and keeps an admin."""

import threading
import time
from functools import partial

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from accesscontrol.audit import context
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.organizations.services import (
    add_org_member,
    change_org_role,
    create_organization,
    remove_org_member,
)
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import (
    SYSTEM,
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    WorkspaceMembershipFactory,
    system_role,
)
from tests.support.db import audit_actions, row_counts

# Everything these services may write, counted.
snapshot = partial(
    row_counts, Organization, OrganizationMembership, WorkspaceMembership, AuditEvent
)


def membership_of(user, org):
    return OrganizationMembership.objects.get(user=user, organization=org)


def admins_of(org):
    return set(
        OrganizationMembership.objects.filter(organization=org, org_role="admin").values_list(
            "user__email", flat=True
        )
    )


# create_organization


def test_create_organization_makes_the_creator_its_only_admin_and_records_both_events(db):
    creator = UserFactory()

    org = create_organization(creator=creator, name="  Initech  ", plan="plus")

    org.refresh_from_db()
    assert (org.name, org.slug, org.plan) == ("Initech", "initech", "plus")
    assert list(org.memberships.values_list("user", "org_role")) == [(creator.pk, "admin")]

    created, added = AuditEvent.objects.order_by("id")
    assert created.action == "organization.created"
    assert created.organization_id == org.pk
    assert created.workspace_id is None
    assert (created.actor_kind, created.actor_label, created.actor_user_id) == (
        "user",
        creator.email,
        creator.pk,
    )
    assert (created.target_type, created.target_id, created.target_label) == (
        "organization",
        str(org.pk),
        "Initech",
    )
    assert created.changes == {"after": {"name": "Initech", "slug": "initech", "plan": "plus"}}

    membership = membership_of(creator, org)
    assert added.action == "org_member.added"
    assert added.organization_id == org.pk
    assert added.actor_label == creator.email
    assert (added.target_type, added.target_id, added.target_label) == (
        "organizationmembership",
        str(membership.pk),
        creator.email,
    )
    assert added.changes == {"after": {"org_role": "admin"}}


def test_create_organization_defaults_to_the_developer_plan(db):
    org = create_organization(creator=UserFactory(), name="Hooli")
    assert org.plan == "developer"


def test_create_organization_picks_a_free_slug_when_none_is_given(db):
    OrganizationFactory(name="Acme", slug="acme")
    OrganizationFactory(name="Acme 2", slug="acme-2")

    org = create_organization(creator=UserFactory(), name="Acme")

    assert org.slug == "acme-3"


def test_create_organization_slug_for_a_name_without_latin_letters(db):
    org = create_organization(creator=UserFactory(), name="测试")
    assert org.slug == "item"


def test_create_organization_keeps_an_explicit_slug_lowercased(db):
    org = create_organization(creator=UserFactory(), name="Acme Labs", slug=" Acme-LABS_1 ")
    assert org.slug == "acme-labs_1"


BAD_SLUGS = {
    "space": "not a slug",
    "slash": "acme/evil",
    "non-ascii": "ünïcode",
    "dot": "acme.labs",
    "too-long": "a" * 61,
}
BAD_INPUT = [
    *(pytest.param("slug", {"slug": slug}, id=f"slug-{name}") for name, slug in BAD_SLUGS.items()),
    *(pytest.param("name", {"name": name}, id=f"name-{name!r}") for name in ["", "   ", None]),
    pytest.param("name", {"name": "x" * 101}, id="name-too-long"),
    *(
        pytest.param("plan", {"plan": plan}, id=f"plan-{plan!r}")
        for plan in ["free", "Enterprise", ""]
    ),
]


@pytest.mark.parametrize(("field", "given"), BAD_INPUT)
def test_create_organization_rejects_bad_input_and_writes_nothing(db, field, given):
    creator = UserFactory()
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_organization(creator=creator, **{"name": "Acme Labs", **given})

    assert field in exc.value.message_dict
    assert snapshot() == before


# "oidc-acme": an organization's OIDC provider is named "oidc-<slug>" and its SAML provider
# "<slug>" (sso/models.py), so that slug would share its SAML provider's name, and the people
# it links (allauth's SocialAccount), with Acme's OIDC provider.
@pytest.mark.parametrize(("slug", "says"), [("acme", "taken"), ("oidc-acme", "oidc-")])
def test_create_organization_rejects_a_taken_or_reserved_slug_and_writes_nothing(world, slug, says):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_organization(creator=UserFactory(), name="Another Acme", slug=slug)

    assert says in exc.value.message_dict["slug"][0]
    assert snapshot() == before


def test_a_slug_made_from_a_name_never_begins_with_oidc(db):
    org = create_organization(creator=UserFactory(), name="OIDC Acme")

    assert not org.slug.startswith("oidc-")
    assert org.slug == "org-oidc-acme"
    assert not Organization.objects.filter(name="Another Acme").exists()


# add_org_member


def test_add_org_member_creates_the_membership_and_records_it(world):
    newcomer = UserFactory()

    membership = add_org_member(
        actor=world.org_admin, organization=world.org, user=newcomer, org_role="viewer"
    )

    assert membership_of(newcomer, world.org) == membership
    assert membership.org_role == "viewer"
    (event,) = AuditEvent.objects.all()
    assert event.action == "org_member.added"
    assert event.organization_id == world.org.pk
    assert event.workspace_id is None
    assert event.actor_label == world.org_admin.email
    assert event.actor_user_id == world.org_admin.pk
    assert (event.target_id, event.target_label) == (str(membership.pk), newcomer.email)
    assert event.changes == {"after": {"org_role": "viewer"}}


def test_add_org_member_defaults_to_member(world):
    membership = add_org_member(actor=world.org_admin, organization=world.org, user=UserFactory())
    assert membership.org_role == "member"


def test_add_org_member_can_add_someone_who_belongs_to_another_org(world):
    membership = add_org_member(actor=world.org_admin, organization=world.org, user=world.outsider)
    assert membership.organization == world.org
    assert membership_of(world.outsider, world.other_org).org_role == "admin"


def test_add_org_member_twice_is_a_validation_error_and_writes_nothing(world):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        add_org_member(
            actor=world.org_admin, organization=world.org, user=world.editor, org_role="admin"
        )

    assert "already a member" in exc.value.messages[0]
    assert snapshot() == before
    assert membership_of(world.editor, world.org).org_role == "member"


def test_add_org_member_rejects_an_unknown_role_and_writes_nothing(world):
    newcomer = UserFactory()
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        add_org_member(
            actor=world.org_admin, organization=world.org, user=newcomer, org_role="owner"
        )

    assert "org_role" in exc.value.message_dict
    assert snapshot() == before


# change_org_role


def test_change_org_role_changes_the_role_and_records_before_and_after(world):
    membership = membership_of(world.editor, world.org)

    changed = change_org_role(actor=world.org_admin, membership=membership, org_role="admin")

    assert changed.org_role == "admin"
    assert membership_of(world.editor, world.org).org_role == "admin"
    (event,) = AuditEvent.objects.all()
    assert event.action == "org_member.role_changed"
    assert event.organization_id == world.org.pk
    assert event.actor_label == world.org_admin.email
    assert (event.target_id, event.target_label) == (str(membership.pk), world.editor.email)
    assert event.changes == {"before": {"org_role": "member"}, "after": {"org_role": "admin"}}


def test_change_org_role_to_the_same_role_changes_and_records_nothing(world):
    membership = membership_of(world.viewer, world.org)
    before = snapshot()

    change_org_role(actor=world.org_admin, membership=membership, org_role="member")

    assert snapshot() == before
    assert membership_of(world.viewer, world.org).org_role == "member"


def test_change_org_role_rejects_an_unknown_role(world):
    membership = membership_of(world.editor, world.org)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        change_org_role(actor=world.org_admin, membership=membership, org_role="superuser")

    assert "org_role" in exc.value.message_dict
    assert snapshot() == before
    assert membership_of(world.editor, world.org).org_role == "member"


def test_change_org_role_reads_the_current_role_not_a_stale_copy(world):
    stale = membership_of(world.editor, world.org)
    OrganizationMembership.objects.filter(pk=stale.pk).update(org_role="viewer")

    change_org_role(actor=world.org_admin, membership=stale, org_role="admin")

    (event,) = AuditEvent.objects.all()
    assert event.changes == {"before": {"org_role": "viewer"}, "after": {"org_role": "admin"}}


# remove_org_member


def test_remove_org_member_removes_every_workspace_membership_too(world):
    membership = membership_of(world.editor, world.org)
    WorkspaceMembershipFactory(
        org_membership=membership, workspace=world.other_workspace, role=system_role("Viewer")
    )
    others = WorkspaceMembership.objects.exclude(org_membership=membership).count()

    remove_org_member(actor=world.org_admin, membership=membership)

    assert not OrganizationMembership.objects.filter(pk=membership.pk).exists()
    assert not WorkspaceMembership.objects.filter(org_membership_id=membership.pk).exists()
    assert WorkspaceMembership.objects.count() == others
    world.editor.refresh_from_db()  # the person stays; only the membership goes
    (event,) = AuditEvent.objects.all()
    assert event.action == "org_member.removed"
    assert event.organization_id == world.org.pk
    assert event.actor_label == world.org_admin.email
    assert (event.target_type, event.target_id, event.target_label) == (
        "organizationmembership",
        str(membership.pk),
        world.editor.email,
    )
    assert event.changes == {
        "before": {"org_role": "member", "workspaces": ["production", "staging"]}
    }


def test_remove_org_member_twice_is_a_validation_error(world):
    membership = membership_of(world.viewer, world.org)
    remove_org_member(actor=world.org_admin, membership=membership)
    before = snapshot()

    with pytest.raises(ValidationError):
        remove_org_member(actor=world.org_admin, membership=membership)

    assert snapshot() == before


def test_audit_events_carry_the_request_context(world):
    token = context.bind(
        context.RequestContext(ip_address="203.0.113.7", user_agent="pytest", request_id="req-1")
    )
    try:
        remove_org_member(actor=world.org_admin, membership=membership_of(world.viewer, world.org))
    finally:
        context.reset(token)

    (event,) = AuditEvent.objects.all()
    assert (event.ip_address, event.user_agent, event.request_id) == (
        "203.0.113.7",
        "pytest",
        "req-1",
    )


# The last admin


@pytest.mark.parametrize("new_role", ["member", "viewer"])
def test_the_only_admin_cannot_be_demoted(world, new_role):
    membership = membership_of(world.org_admin, world.org)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        change_org_role(actor=SYSTEM, membership=membership, org_role=new_role)

    assert exc.value.code == "last_admin"
    assert snapshot() == before
    assert admins_of(world.org) == {world.org_admin.email}


def test_the_only_admin_cannot_be_removed(world):
    membership = membership_of(world.org_admin, world.org)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        remove_org_member(actor=world.org_admin, membership=membership)

    assert exc.value.code == "last_admin"
    assert snapshot() == before
    assert admins_of(world.org) == {world.org_admin.email}


def test_the_admin_of_another_org_does_not_count(world):
    # world.outsider is admin of Globex; Acme still has a single admin.
    add_org_member(actor=world.org_admin, organization=world.org, user=world.outsider)
    with pytest.raises(ValidationError) as exc:
        change_org_role(
            actor=SYSTEM,
            membership=membership_of(world.org_admin, world.org),
            org_role="member",
        )
    assert exc.value.code == "last_admin"


def test_with_two_admins_one_can_be_demoted_but_then_not_the_other(world):
    first = membership_of(world.org_admin, world.org)
    second = change_org_role(
        actor=world.org_admin, membership=membership_of(world.editor, world.org), org_role="admin"
    )

    change_org_role(actor=world.editor, membership=first, org_role="member")

    assert admins_of(world.org) == {world.editor.email}
    with pytest.raises(ValidationError) as exc:
        change_org_role(actor=SYSTEM, membership=second, org_role="viewer")
    assert exc.value.code == "last_admin"
    assert admins_of(world.org) == {world.editor.email}
    assert audit_actions() == ["org_member.role_changed", "org_member.role_changed"]


def test_with_two_admins_one_can_be_removed(world):
    change_org_role(
        actor=world.org_admin, membership=membership_of(world.editor, world.org), org_role="admin"
    )

    remove_org_member(actor=world.editor, membership=membership_of(world.org_admin, world.org))

    assert admins_of(world.org) == {world.editor.email}
    assert audit_actions() == ["org_member.role_changed", "org_member.removed"]


DEMOTE = "demote"
REMOVE = "remove"


def _apply(operation, membership, actor):
    if operation == DEMOTE:
        change_org_role(actor=actor, membership=membership, org_role="member")
    else:
        remove_org_member(actor=actor, membership=membership)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "operations", [(DEMOTE, DEMOTE), (REMOVE, DEMOTE), (REMOVE, REMOVE)], ids="-".join
)
def test_concurrent_changes_cannot_remove_the_last_admin(on_postgres, operations):
    """Two admins; each of two overlapping transactions takes away a different one.

    Each thread holds its transaction open a moment after the service call, so without the
    organization row lock both would read "there is another admin" and both would commit.
    """
    org = OrganizationFactory(plan="enterprise")
    admin_a = OrganizationMembershipFactory(organization=org, org_role="admin")
    admin_b = OrganizationMembershipFactory(organization=org, org_role="admin")
    start = threading.Barrier(2, timeout=10)
    outcomes = {}

    def run(name, operation, membership, actor):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '10s'")  # fail rather than hang
            start.wait()
            with transaction.atomic():
                _apply(operation, membership, actor)
                time.sleep(0.3)
            outcomes[name] = "ok"
        except ValidationError as exc:
            outcomes[name] = exc.code
        except Exception as exc:
            outcomes[name] = repr(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=("a", operations[0], admin_a, admin_b.user)),
        threading.Thread(target=run, args=("b", operations[1], admin_b, admin_a.user)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["last_admin", "ok"], outcomes
    remaining = OrganizationMembership.objects.filter(organization=org, org_role="admin")
    assert remaining.count() == 1
    winner = "a" if outcomes["a"] == "ok" else "b"
    loser_membership = admin_b if winner == "a" else admin_a
    assert remaining.get().pk == loser_membership.pk  # the one the winner left alone
    expected_action = {
        DEMOTE: "org_member.role_changed",
        REMOVE: "org_member.removed",
    }[operations[0 if winner == "a" else 1]]
    assert audit_actions() == [expected_action]


def test_nobody_changes_their_own_org_role(world):
    membership = membership_of(world.editor, world.org)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        change_org_role(actor=world.editor, membership=membership, org_role="admin")
    assert exc.value.code == "permission"
    assert snapshot() == before
