"""apikeys.services: who may create which key, for how long, and what the audit log keeps."""

import datetime
from functools import partial

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import (
    create_personal_access_token,
    create_service_key,
    revoke_personal_access_token,
    revoke_service_key,
)
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import remove_org_member
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ALL_PERMISSIONS,
    SYSTEM_ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import effective_permissions, resolve_access
from tests.factories import (
    OrganizationFactory,
    RoleFactory,
    WorkspaceFactory,
    actor_with,
    system_role,
)
from tests.support.api import api_call
from tests.support.db import row_counts

EDITOR_PERMISSIONS = SYSTEM_ROLE_PERMISSIONS["Editor"]
# A custom "key manager": everything an Editor holds, plus managing the workspace's settings and
# keys, but not its members.
KEY_MANAGER_PERMISSIONS = EDITOR_PERMISSIONS | {"workspaces:manage"}


def codes_of(exc: ValidationError) -> set:
    if hasattr(exc, "error_dict"):
        return {e.code for errors in exc.error_dict.values() for e in errors}
    return {e.code for e in exc.error_list}


# What these services may write, counted.
snapshot = partial(row_counts, PersonalAccessToken, ServiceKey, AuditEvent)


def assert_not_in_audit(raw):
    secret = raw.split("_")[2]
    for event in AuditEvent.objects.all():
        for field in AuditEvent._meta.concrete_fields:
            value = str(field.value_from_object(event))
            assert raw not in value, (event.action, field.name)
            assert secret[:12] not in value, (event.action, field.name)


def in_days(days, **extra):
    return timezone.now() + datetime.timedelta(days=days, **extra)


def role(name, org=None):
    return Role.objects.get(Q(organization=None) | Q(organization=org), name=name)


def workspace_admin_permissions(world):
    return effective_permissions(world.workspace_admin, world.workspace)


def key_of_the_workspace_admin(world, **kwargs):
    """A key of 'production' that its workspace admin makes."""
    return create_service_key(
        actor=actor_with(workspace_admin_permissions(world), world.workspace_admin),
        organization=world.org,
        workspace=world.workspace,
        **kwargs,
    )


def org_admin_permissions(world):
    return resolve_access(world.org_admin, world.org.pk).permissions


# Personal access tokens


def test_create_pat_returns_a_working_key_and_stores_only_its_digest(world):
    token, raw = create_personal_access_token(user=world.editor, organization=world.org, name="ci")
    parsed = keys.parse(raw)
    assert parsed is not None
    assert parsed.kind == keys.PERSONAL
    assert token.digest == parsed.digest
    assert token.org_membership.user == world.editor
    assert token.org_membership.organization == world.org
    assert token.name == "ci"
    assert token.expires_at is None
    assert token.revoked_at is None
    stored = PersonalAccessToken.objects.get(pk=token.pk)
    secret = raw.split("_")[2]
    for field in PersonalAccessToken._meta.concrete_fields:
        assert secret[:12] not in str(field.value_from_object(stored)), field.name


def test_create_pat_is_audited_with_the_hint_but_never_the_key(world):
    token, raw = create_personal_access_token(
        user=world.editor, organization=world.org, name="laptop"
    )
    event = AuditEvent.objects.get(action="personal_access_token.created")
    assert event.target_id == str(token.pk)
    assert event.organization_id == world.org.pk
    assert event.actor_user_id == world.editor.pk
    assert event.changes["after"]["hint"] == token.hint
    assert event.changes["after"]["name"] == "laptop"
    assert_not_in_audit(raw)


def test_org_viewers_cannot_create_pats(world):
    before = snapshot()
    with pytest.raises(ValidationError) as excinfo:
        create_personal_access_token(user=world.org_viewer, organization=world.org, name="no")
    assert codes_of(excinfo.value) == {"permission"}
    assert snapshot() == before


@pytest.mark.parametrize("persona", ["org_admin", "member_without_workspace", "viewer"])
def test_org_admins_and_members_can_create_pats(world, persona):
    user = world.persona(persona)
    token, _ = create_personal_access_token(user=user, organization=world.org, name="mine")
    assert token.org_membership.user == user


def test_a_non_member_cannot_create_a_pat_in_the_org(world):
    before = snapshot()
    with pytest.raises(ValidationError):
        create_personal_access_token(user=world.outsider, organization=world.org, name="no")
    assert snapshot() == before


def test_an_org_can_disable_pats(world):
    world.org.allow_personal_access_tokens = False
    world.org.save()
    before = snapshot()
    for persona in ("org_admin", "editor"):
        with pytest.raises(ValidationError) as excinfo:
            create_personal_access_token(
                user=world.persona(persona), organization=world.org, name="no"
            )
        assert codes_of(excinfo.value) == {"disabled"}
    assert snapshot() == before
    # Only this organization.
    create_personal_access_token(user=world.outsider, organization=world.other_org, name="ok")


def test_the_org_caps_pat_lifetime(world):
    world.org.max_key_lifetime_days = 30
    world.org.save()
    before = snapshot()
    with pytest.raises(ValidationError) as excinfo:
        create_personal_access_token(
            user=world.editor, organization=world.org, name="too long", expires_at=in_days(31)
        )
    assert "expires_at" in excinfo.value.message_dict
    assert snapshot() == before

    token, _ = create_personal_access_token(user=world.editor, organization=world.org, name="cap")
    assert token.expires_at is not None
    assert abs(token.expires_at - in_days(30)) < datetime.timedelta(minutes=1)

    wanted = in_days(10)
    token, _ = create_personal_access_token(
        user=world.editor, organization=world.org, name="short", expires_at=wanted
    )
    assert token.expires_at == wanted


def test_the_lifetime_cap_applies_to_service_keys_too(world):
    world.org.max_key_lifetime_days = 7
    world.org.save()
    with pytest.raises(ValidationError) as excinfo:
        key_of_the_workspace_admin(world, name="too long", expires_at=in_days(8))
    assert "expires_at" in excinfo.value.message_dict
    key, _ = key_of_the_workspace_admin(world, name="capped")
    assert abs(key.expires_at - in_days(7)) < datetime.timedelta(minutes=1)


@pytest.mark.parametrize("delta", [datetime.timedelta(seconds=-1), datetime.timedelta(days=-30)])
def test_an_expiry_in_the_past_is_refused(world, delta):
    before = snapshot()
    with pytest.raises(ValidationError) as excinfo:
        create_personal_access_token(
            user=world.editor,
            organization=world.org,
            name="past",
            expires_at=timezone.now() + delta,
        )
    assert "expires_at" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        key_of_the_workspace_admin(world, name="past", expires_at=timezone.now() + delta)
    assert "expires_at" in excinfo.value.message_dict
    assert snapshot() == before


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_key_needs_a_sensible_name(world, name):
    with pytest.raises(ValidationError) as excinfo:
        create_personal_access_token(user=world.editor, organization=world.org, name=name)
    assert "name" in excinfo.value.message_dict


def test_revoking_a_pat_is_idempotent_and_audited_once(world):
    token, raw = create_personal_access_token(user=world.editor, organization=world.org, name="t")
    first = revoke_personal_access_token(actor=world.editor, token=token)
    assert first.revoked_at is not None
    second = revoke_personal_access_token(actor=world.editor, token=token)
    assert second.revoked_at == first.revoked_at
    events = AuditEvent.objects.filter(action="personal_access_token.revoked")
    assert [e.target_id for e in events] == [str(token.pk)]
    assert PersonalAccessToken.objects.get(pk=token.pk).status == "revoked"
    assert_not_in_audit(raw)


# Service keys


def test_a_service_key_defaults_to_the_admin_role(world):
    key, raw = key_of_the_workspace_admin(world, name="ci")
    assert key.role == system_role("Admin")
    assert key.workspace == world.workspace
    assert key.legacy is False
    assert keys.parse(raw).kind == keys.SERVICE
    assert key.digest == keys.digest(raw)
    event = AuditEvent.objects.get(action="service_key.created")
    assert event.target_id == str(key.pk)
    assert event.workspace_id == world.workspace.pk
    assert event.changes["after"]["role"] == "Admin"
    assert event.changes["after"]["hint"] == key.hint
    assert_not_in_audit(raw)


@pytest.mark.parametrize("persona", ["editor", "viewer", "annotator", "member_without_workspace"])
def test_a_grantor_without_workspaces_manage_is_refused(world, persona):
    grantor = effective_permissions(world.persona(persona), world.workspace)
    assert "workspaces:manage" not in grantor
    before = snapshot()
    for role_name in ("Admin", "Viewer"):
        with pytest.raises(ValidationError) as excinfo:
            create_service_key(
                actor=actor_with(grantor, world.persona(persona)),
                organization=world.org,
                workspace=world.workspace,
                name="no",
                role=system_role(role_name),
            )
        assert codes_of(excinfo.value) == {"permission"}
    assert snapshot() == before


def test_an_editor_level_grantor_cannot_mint_an_admin_key(world):
    before = snapshot()
    for admin in (None, system_role("Admin")):
        with pytest.raises(ValidationError) as excinfo:
            create_service_key(
                actor=actor_with(KEY_MANAGER_PERMISSIONS, world.editor),
                organization=world.org,
                workspace=world.workspace,
                name="stronger than me",
                role=admin,
            )
        assert codes_of(excinfo.value) == {"escalation"}
        assert "workspaces:manage-members" in str(excinfo.value)
    assert snapshot() == before

    # Within its own permissions it may.
    for role_name in ("Editor", "Viewer", "Annotator"):
        key, _ = create_service_key(
            actor=actor_with(KEY_MANAGER_PERMISSIONS, world.editor),
            organization=world.org,
            workspace=world.workspace,
            name=role_name,
            role=role(role_name, world.org),
        )
        assert key.role.name == role_name


def test_a_key_cannot_mint_a_stronger_key_over_the_api(client, world):
    manager = RoleFactory(
        organization=world.org, name="Key manager", permissions=sorted(KEY_MANAGER_PERMISSIONS)
    )
    _, raw = create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=world.org,
        workspace=world.workspace,
        name="manager",
        role=manager,
    )
    before = ServiceKey.objects.count()
    response = api_call(client, "post", "/api-key", raw, json={"name": "admin please"})
    assert response.status_code == 403, response.content
    assert response.json()["error"] == "escalation"
    assert ServiceKey.objects.count() == before

    viewer = system_role("Viewer")
    response = api_call(
        client, "post", "/api-key", raw, json={"name": "viewer", "role_id": str(viewer.pk)}
    )
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "Viewer"


@pytest.mark.parametrize("role_name", ["Admin", "Editor", "Viewer", "Annotator"])
def test_a_workspace_admin_can_mint_any_role_including_custom(world, role_name):
    key, _ = key_of_the_workspace_admin(world, name=role_name, role=role(role_name, world.org))
    assert key.role.name == role_name
    assert key.created_by == world.workspace_admin


@pytest.mark.parametrize("plan", ["developer", "plus"])
def test_below_enterprise_only_admin_keys_can_be_made(db, plan):
    org = OrganizationFactory(plan=plan)
    workspace = WorkspaceFactory(organization=org)
    custom = RoleFactory(organization=org, name="Reader", permissions=["datasets:read"])
    before = snapshot()
    for refused in (custom, system_role("Viewer"), system_role("Editor")):
        with pytest.raises(ValidationError) as excinfo:
            create_service_key(
                actor=actor_with(ALL_PERMISSIONS),
                organization=org,
                workspace=workspace,
                name="no",
                role=refused,
            )
        assert "role" in excinfo.value.message_dict
    assert snapshot() == before
    key, _ = create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=org,
        workspace=workspace,
        name="admin",
        role=system_role("Admin"),
    )
    assert key.role.name == "Admin"


def test_org_scoped_keys_need_organization_manage(world):
    before = snapshot()
    for grantor in (workspace_admin_permissions(world), WORKSPACE_PERMISSIONS):
        with pytest.raises(ValidationError) as excinfo:
            create_service_key(
                actor=actor_with(grantor, world.workspace_admin),
                organization=world.org,
                workspace=None,
                name="org key",
            )
        assert codes_of(excinfo.value) == {"permission"}
    assert snapshot() == before

    key, _ = create_service_key(
        actor=actor_with(org_admin_permissions(world), world.org_admin),
        organization=world.org,
        workspace=None,
        name="org key",
    )
    assert key.is_org_scoped
    assert key.organization == world.org
    assert key.role.name == "Admin"
    event = AuditEvent.objects.get(action="service_key.created")
    assert event.changes["after"]["scope"] == "organization"


def test_a_role_of_another_org_is_refused(world):
    foreign = RoleFactory(organization=world.other_org, name="Globex reader")
    before = snapshot()
    for workspace in (world.workspace, None):
        with pytest.raises(ValidationError) as excinfo:
            create_service_key(
                actor=actor_with(ALL_PERMISSIONS),
                organization=world.org,
                workspace=workspace,
                name="no",
                role=foreign,
            )
        assert "role" in excinfo.value.message_dict
    assert snapshot() == before


def test_a_workspace_of_another_org_is_refused(world):
    before = snapshot()
    with pytest.raises(ValidationError):
        create_service_key(
            actor=actor_with(ALL_PERMISSIONS),
            organization=world.org,
            workspace=world.other_workspace_of_other_org,
            name="no",
        )
    assert snapshot() == before


def test_the_key_outlives_its_creators_membership(client, world):
    key, raw = key_of_the_workspace_admin(world, name="deploy", role=system_role("Editor"))
    assert key.created_by == world.workspace_admin
    assert key.created_by_label == world.workspace_admin.email

    membership = OrganizationMembership.objects.get(
        user=world.workspace_admin, organization=world.org
    )
    remove_org_member(actor=world.org_admin, membership=membership)

    response = api_call(client, "get", "/auth/whoami", raw)
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "Editor"
    assert response.json()["workspace"]["id"] == str(world.workspace.pk)
    key.refresh_from_db()
    assert key.created_by_label == world.workspace_admin.email
    assert key.revoked_at is None

    # Even when the account itself goes, the label stays and the key works.
    email = world.workspace_admin.email
    world.workspace_admin.delete()
    key.refresh_from_db()
    assert key.created_by is None
    assert key.created_by_label == email
    assert api_call(client, "get", "/auth/whoami", raw).status_code == 200


def test_a_key_made_by_a_key_is_labelled_with_that_key(world):
    parent, _ = create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=world.org,
        workspace=world.workspace,
        name="bootstrap",
    )
    child, _ = create_service_key(
        actor=actor_with(WORKSPACE_PERMISSIONS, parent),
        organization=world.org,
        workspace=world.workspace,
        name="child",
    )
    assert child.created_by is None
    assert child.created_by_label == "service key 'bootstrap'"
    assert parent.created_by_label == "system"


def test_revoking_a_service_key_is_idempotent_and_audited_once(world):
    key, raw = key_of_the_workspace_admin(world, name="ci")
    first = revoke_service_key(actor=world.workspace_admin, key=key)
    assert first.revoked_at is not None
    second = revoke_service_key(actor=world.org_admin, key=key)
    assert second.revoked_at == first.revoked_at
    events = AuditEvent.objects.filter(action="service_key.revoked")
    assert [(e.target_id, e.actor_user_id) for e in events] == [
        (str(key.pk), world.workspace_admin.pk)
    ]
    assert ServiceKey.objects.get(pk=key.pk).status == "revoked"
    assert_not_in_audit(raw)
