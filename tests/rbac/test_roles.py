"""Custom roles (enterprise only, workspace permissions only, audited) and the catalog."""

import pytest
from django.core.exceptions import ValidationError

from accesscontrol.audit.models import AuditEvent
from accesscontrol.rbac import permissions
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.services import (
    ROLE_USAGE_SHOWN,
    create_role,
    delete_role,
    role_usage,
    update_role,
)
from accesscontrol.workspaces.services import add_workspace_member, change_workspace_role
from tests.factories import (
    CATALOG,
    ORG_ADMIN_CODES,
    READ,
    SYSTEM,
    WS,
    OrganizationFactory,
    RoleFactory,
    WorkspaceMembershipFactory,
    system_role,
)

# ARCHITECTURE §5, written out by hand (tests/factories.py) so the code's catalog is checked
# against the design.
WORKSPACE_CODES = set(WS)
READ_CODES = set(READ)
ORG_CODES = set(ORG_ADMIN_CODES)


def snapshot():
    return Role.objects.count(), AuditEvent.objects.count()


def stored(role):
    return Role.objects.values("name", "description", "permissions").get(pk=role.pk)


def row(name, description, permissions):
    """A role's own fields, as `stored` reads them and the services take them."""
    return {"name": name, "description": description, "permissions": permissions}


@pytest.fixture
def reviewer(world):
    """A custom role made through the service, unused, with the creation event cleared away."""
    role = create_role(
        actor=world.org_admin,
        organization=world.org,
        name="Reviewer",
        description="Reads and comments.",
        permissions=["feedback:create", "datasets:read"],
    )
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["role.created"]
    return role


def events_after_creation():
    return list(AuditEvent.objects.exclude(action="role.created").order_by("id"))


# create_role


def test_create_role_stores_sorted_unique_codes_and_records_the_event(world):
    untidy = row("  Curator  ", " Looks after datasets. ", ["datasets:update", "datasets:read"] * 2)
    role = create_role(actor=world.org_admin, organization=world.org, **untidy)

    assert stored(role) == row(
        "Curator", "Looks after datasets.", ["datasets:read", "datasets:update"]
    )
    assert role.organization == world.org
    assert not role.is_system
    assert role.permission_set == {"datasets:read", "datasets:update"}
    (event,) = AuditEvent.objects.all()
    assert event.action == "role.created"
    assert event.organization_id == world.org.pk
    assert event.workspace_id is None
    assert (event.actor_kind, event.actor_label) == ("user", world.org_admin.email)
    assert (event.target_type, event.target_id, event.target_label) == (
        "role",
        str(role.pk),
        "Curator",
    )
    assert event.changes == {
        "after": {"name": "Curator", "permissions": ["datasets:read", "datasets:update"]}
    }


def test_create_role_may_hold_every_workspace_permission(world):
    role = create_role(
        actor=world.org_admin,
        organization=world.org,
        name="Almost admin",
        permissions=WORKSPACE_CODES,
    )
    assert role.permission_set == WORKSPACE_CODES


@pytest.mark.parametrize("plan", ["developer", "plus"])
def test_create_role_needs_the_enterprise_plan(db, plan):
    org = OrganizationFactory(plan=plan)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_role(actor=SYSTEM, organization=org, name="Curator", permissions=["datasets:read"])

    assert exc.value.code == "plan"
    assert snapshot() == before


@pytest.mark.parametrize(
    "codes",
    [
        ["datasets:read", "organization:manage"],
        ["organization:read"],
        ["organization:pats:create"],
        ["datasets:explode"],
        ["datasets"],
        ["*"],
        ["Datasets:Read"],
    ],
)
def test_create_role_accepts_only_workspace_permission_codes(world, codes):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_role(actor=world.org_admin, organization=world.org, name="Sneaky", permissions=codes)

    message = exc.value.message_dict["permissions"][0]
    for code in set(codes) - WORKSPACE_CODES:
        assert code in message
    assert "datasets:read" not in message.split("allowed:")[-1]
    assert snapshot() == before


@pytest.mark.parametrize("name", ["Admin", "admin", "ADMIN", " Editor ", "viewer"])
def test_create_role_refuses_system_role_names(world, name):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_role(actor=world.org_admin, organization=world.org, name=name)

    assert "name" in exc.value.message_dict
    assert snapshot() == before


@pytest.mark.parametrize(
    ("name", "description", "field"),
    [
        ("", "", "name"),
        ("   ", "", "name"),
        (None, "", "name"),
        ("x" * 61, "", "name"),
        ("Fine", "d" * 301, "description"),
    ],
    ids=["empty", "blank", "none", "long-name", "long-description"],
)
def test_create_role_rejects_bad_fields(world, name, description, field):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_role(
            actor=world.org_admin, organization=world.org, name=name, description=description
        )

    assert field in exc.value.message_dict
    assert snapshot() == before


def test_create_role_refuses_a_name_taken_in_the_organization(world):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_role(actor=world.org_admin, organization=world.org, name="Annotator")

    assert "already exists" in exc.value.message_dict["name"][0]
    assert snapshot() == before


def test_the_same_custom_role_name_may_exist_in_two_organizations(world):
    role = create_role(actor=world.outsider, organization=world.other_org, name="Annotator")

    assert role.organization == world.other_org
    assert Role.objects.filter(name="Annotator").count() == 2
    (event,) = AuditEvent.objects.all()
    assert event.organization_id == world.other_org.pk


# update_role


def test_update_role_records_before_after_and_the_permission_diff(world, reviewer):
    senior = row(
        "Senior reviewer",
        "Reads, comments, fixes examples.",
        ["datasets:read", "datasets:update", "prompts:read"],
    )
    update_role(actor=world.org_admin, role=reviewer, **senior)

    assert stored(reviewer) == senior
    (event,) = events_after_creation()
    assert event.action == "role.updated"
    assert event.organization_id == world.org.pk
    assert event.actor_label == world.org_admin.email
    assert (event.target_id, event.target_label) == (str(reviewer.pk), "Senior reviewer")
    assert event.changes == {
        "before": {
            "name": "Reviewer",
            "description": "Reads and comments.",
            "permissions": ["datasets:read", "feedback:create"],
        },
        "after": {
            "name": "Senior reviewer",
            "description": "Reads, comments, fixes examples.",
            "permissions": ["datasets:read", "datasets:update", "prompts:read"],
            "added": ["datasets:update", "prompts:read"],
            "removed": ["feedback:create"],
        },
    }


def test_update_role_changes_only_what_is_given(world, reviewer):
    update_role(actor=world.org_admin, role=reviewer, description="Just reads.")

    assert stored(reviewer) == row("Reviewer", "Just reads.", ["datasets:read", "feedback:create"])
    (event,) = events_after_creation()
    assert event.changes["after"]["added"] == []
    assert event.changes["after"]["removed"] == []


def test_update_role_takes_effect_for_its_members(world, reviewer):
    add_workspace_member(
        actor=world.org_admin,
        workspace=world.workspace,
        user=world.member_without_workspace,
        role=reviewer,
    )
    update_role(actor=world.org_admin, role=reviewer, permissions=["prompts:read"])

    member_role = Role.objects.get(memberships__org_membership__user=world.member_without_workspace)
    assert member_role.permission_set == {"prompts:read"}


def test_update_role_without_a_change_records_nothing(world, reviewer):
    before = snapshot()

    update_role(
        actor=world.org_admin,
        role=reviewer,
        name="Reviewer",
        description="Reads and comments.",
        permissions=["feedback:create", "datasets:read"],
    )

    assert snapshot() == before


def test_update_role_may_change_only_the_case_of_its_name(world, reviewer):
    update_role(actor=world.org_admin, role=reviewer, name="reviewer")
    assert stored(reviewer)["name"] == "reviewer"


@pytest.mark.parametrize("name", ["admin", "Viewer", " EDITOR "])
def test_update_role_refuses_a_system_role_name(world, reviewer, name):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        update_role(actor=world.org_admin, role=reviewer, name=name)

    assert "name" in exc.value.message_dict
    assert snapshot() == before
    assert stored(reviewer)["name"] == "Reviewer"


def test_update_role_refuses_a_name_taken_in_the_organization(world, reviewer):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        update_role(actor=world.org_admin, role=reviewer, name="Annotator", description="new")

    assert "already exists" in exc.value.message_dict["name"][0]
    assert snapshot() == before
    assert stored(reviewer) == row(
        "Reviewer", "Reads and comments.", ["datasets:read", "feedback:create"]
    )


def test_a_refused_update_leaves_the_callers_role_object_as_it_was(world, reviewer):
    with pytest.raises(ValidationError):
        update_role(
            actor=world.org_admin, role=reviewer, name="Annotator", permissions=["runs:read"]
        )

    # The caller (a view re-rendering its form, say) must not see values that were not saved.
    assert (reviewer.name, reviewer.permissions) == (
        "Reviewer",
        ["datasets:read", "feedback:create"],
    )


@pytest.mark.parametrize("codes", [["organization:manage"], ["datasets:explode"]])
def test_update_role_accepts_only_workspace_permission_codes(world, reviewer, codes):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        update_role(actor=world.org_admin, role=reviewer, permissions=["datasets:read", *codes])

    assert codes[0] in exc.value.message_dict["permissions"][0]
    assert snapshot() == before
    assert stored(reviewer)["permissions"] == ["datasets:read", "feedback:create"]


def test_update_role_needs_the_enterprise_plan(world, reviewer):
    world.org.plan = "plus"
    world.org.save()
    reviewer.refresh_from_db()
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        update_role(actor=world.org_admin, role=reviewer, permissions=["runs:read"])

    assert exc.value.code == "plan"
    assert snapshot() == before
    assert stored(reviewer)["permissions"] == ["datasets:read", "feedback:create"]


@pytest.mark.parametrize("name", ["Admin", "Editor", "Viewer"])
def test_system_roles_cannot_be_updated(world, name):
    role = system_role(name)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        update_role(actor=world.org_admin, role=role, permissions=["datasets:read"])

    assert exc.value.code == "system_role"
    assert snapshot() == before
    assert stored(role)["name"] == name
    assert system_role(name).permission_set == permissions.SYSTEM_ROLE_PERMISSIONS[name]


# delete_role


def test_delete_role_deletes_an_unused_role_and_records_it(world, reviewer):
    pk = reviewer.pk

    delete_role(actor=world.org_admin, role=reviewer)

    assert not Role.objects.filter(pk=pk).exists()
    (event,) = events_after_creation()
    assert event.action == "role.deleted"
    assert event.organization_id == world.org.pk
    assert event.actor_label == world.org_admin.email
    assert (event.target_type, event.target_id, event.target_label) == ("role", str(pk), "Reviewer")
    assert event.changes == {
        "before": {"name": "Reviewer", "permissions": ["datasets:read", "feedback:create"]}
    }


def test_a_role_in_use_is_kept_and_the_error_says_where(world):
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    add_workspace_member(
        actor=world.org_admin,
        workspace=world.other_workspace,
        user=world.member_without_workspace,
        role=annotator,
    )
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        delete_role(actor=world.org_admin, role=annotator)

    assert exc.value.code == "role_in_use"
    message = exc.value.messages[0]
    assert f"{world.annotator.email} in production" in message
    assert f"{world.member_without_workspace.email} in staging" in message
    assert world.editor.email not in message
    assert snapshot() == before


def test_a_role_held_widely_is_described_by_counts_and_its_first_holders(
    world, django_assert_max_num_queries
):
    """Thousands may hold a role: where it is in use is counted, and only the first holders are
    named (every page and message that says so reads role_usage)."""
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    for _ in range(ROLE_USAGE_SHOWN + 5):
        WorkspaceMembershipFactory(workspace=world.other_workspace, role=annotator)

    with django_assert_max_num_queries(4):
        usage = role_usage(annotator)
    assert (usage.members, usage.keys) == (ROLE_USAGE_SHOWN + 6, 0)
    assert len(usage.where) == ROLE_USAGE_SHOWN
    assert usage.more == 6

    with pytest.raises(ValidationError) as exc:
        delete_role(actor=world.org_admin, role=annotator)
    assert exc.value.messages[0].count(" in ") == ROLE_USAGE_SHOWN
    assert "and 6 more" in exc.value.messages[0]


def test_a_role_can_be_deleted_once_nobody_holds_it(world):
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    change_workspace_role(
        actor=world.org_admin,
        membership=annotator.memberships.get(),
        role=system_role("Viewer"),
    )

    delete_role(actor=world.org_admin, role=annotator)

    assert not Role.objects.filter(pk=annotator.pk).exists()
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "workspace_member.role_changed",
        "role.deleted",
    ]


@pytest.mark.parametrize("name", ["Admin", "Editor", "Viewer"])
def test_system_roles_cannot_be_deleted(world, name):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        delete_role(actor=world.org_admin, role=system_role(name))

    assert exc.value.code == "system_role"
    assert snapshot() == before


# The permission catalog


def test_the_workspace_codes_are_the_designed_ones():
    assert permissions.WORKSPACE_PERMISSIONS == WORKSPACE_CODES
    assert permissions.ORGANIZATION_PERMISSIONS == ORG_CODES
    assert permissions.ALL_PERMISSIONS == WORKSPACE_CODES | ORG_CODES


def test_the_catalog_lists_every_workspace_code_exactly_once():
    entries = permissions.catalog()
    codes = [code for entry in entries for code in entry["codes"]]

    assert len(codes) == len(set(codes))
    assert set(codes) == WORKSPACE_CODES
    assert {e["resource"]: e["actions"] for e in entries} == CATALOG
    for entry in entries:
        assert entry["codes"] == [f"{entry['resource']}:{a}" for a in entry["actions"]]
        assert entry["label"]


def test_viewer_is_every_read_code():
    assert permissions.SYSTEM_ROLE_PERMISSIONS["Viewer"] == READ_CODES
    assert {code for code in WORKSPACE_CODES if code.endswith(":read")} == READ_CODES


def test_editor_is_everything_but_managing_the_workspace():
    assert permissions.SYSTEM_ROLE_PERMISSIONS["Editor"] == WORKSPACE_CODES - {
        "workspaces:manage",
        "workspaces:manage-members",
    }


def test_admin_is_every_workspace_code():
    assert permissions.SYSTEM_ROLE_PERMISSIONS["Admin"] == WORKSPACE_CODES


def test_no_workspace_role_grants_an_organization_code():
    for codes in permissions.SYSTEM_ROLE_PERMISSIONS.values():
        assert not codes & ORG_CODES


def test_system_roles_in_the_database_take_their_codes_from_the_catalog(db):
    for name in ("Admin", "Editor", "Viewer"):  # after a transactional test's flush, too
        Role.objects.system(name)
    assert {r.name: r.permission_set for r in Role.objects.filter(organization=None)} == {
        "Admin": WORKSPACE_CODES,
        "Editor": WORKSPACE_CODES - {"workspaces:manage", "workspaces:manage-members"},
        "Viewer": READ_CODES,
    }


def test_a_stored_code_outside_the_catalog_grants_nothing(db):
    role = RoleFactory(permissions=["datasets:read", "datasets:explode", "organization:manage"])
    assert role.permission_set == {"datasets:read"}


def test_unknown_codes_are_reported():
    assert permissions.unknown_codes(["datasets:read", "organization:read", "nope:x"]) == {"nope:x"}
