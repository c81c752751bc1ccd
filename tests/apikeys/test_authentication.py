"""API keys: the format module, then authentication through the real API (ARCHITECTURE §6, §7, §9).

Every request here goes through the test client and the whole middleware stack: the key in a
header, the workspace in X-Tenant-Id, the answer from `GET /api/v1/auth/whoami`.
"""

import csv
import datetime
import hashlib
import io
import logging
import re
import uuid
import zlib
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.authentication import LAST_USED_RESOLUTION
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import (
    create_service_key,
    revoke_personal_access_token,
    revoke_service_key,
)
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import remove_org_member
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ALL_PERMISSIONS, READ_PERMISSIONS
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import add_workspace_member, change_workspace_role
from tests.factories import (
    OrganizationMembershipFactory,
    UserFactory,
    WorkspaceMembershipFactory,
    actor_with,
    pat_for,
    secret_of,
    service_key_for,
    system_role,
)
from tests.support.api import api_call
from tests.support.db import assert_no_key_in_audit

KEY_FORMAT = re.compile(r"^lsv2_(pt|sk)_([0-9a-f]{32})_([0-9a-f]{8})$")
SUNSET_MESSAGE = (
    "legacy ls__ API keys are no longer supported since {date}; "
    "create a service key or a personal access token"
)


def flip(raw: str, index: int) -> str:
    """The key with one hex character changed (still well-formed)."""
    replacement = "0" if raw[index] != "0" else "1"
    return raw[:index] + replacement + raw[index + 1 :]


def assert_error(response, status, error):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error, body
    assert body["detail"]
    return body


def whoami(client, key, **kwargs):
    response = api_call(client, "get", "/auth/whoami", key, **kwargs)
    assert response.status_code == 200, response.content
    return response.json()


def key_row(raw):
    digest = keys.digest(raw)
    model = PersonalAccessToken if raw.startswith("lsv2_pt_") else ServiceKey
    return model.objects.get(digest=digest)


def role_key(workspace, role_name, **kwargs) -> str:
    """A system-made service key with exactly this role.

    conftest's `service_key_for` looks roles up with `organization__in=[None, org]`, which never
    matches a system role (SQL `IN` skips NULL), so for "Editor" or "Viewer" it silently makes an
    Admin key; this helper asks for the role it means.
    """
    org = workspace.organization
    role = Role.objects.get(Q(organization=None) | Q(organization=org), name=role_name)
    return create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=org,
        workspace=workspace,
        name=f"{role_name} key",
        role=role,
        **kwargs,
    )[1]


def legacy_key() -> str:
    return "ls__" + uuid.uuid4().hex


# The key format


@pytest.mark.parametrize("kind", [keys.PERSONAL, keys.SERVICE])
def test_generated_keys_have_the_documented_format_and_checksum(kind):
    raw = keys.generate(kind)
    match = KEY_FORMAT.match(raw)
    assert match is not None, raw
    assert match.group(1) == kind
    body = raw.rsplit("_", 1)[0]
    assert match.group(3) == f"{zlib.crc32(body.encode()):08x}"
    parsed = keys.parse(raw)
    assert parsed is not None
    assert parsed.kind == kind
    assert parsed.digest == hashlib.sha256(raw.encode()).hexdigest()


def test_generated_keys_are_unique_and_every_one_of_128_secret_bits_varies():
    generated = [keys.generate(kind) for kind in (keys.PERSONAL, keys.SERVICE) for _ in range(150)]
    assert len(set(generated)) == len(generated)
    secrets_ = [int(secret_of(raw), 16) for raw in generated]
    assert len(set(secrets_)) == len(secrets_)
    # 128 random bits: across 300 keys no bit position is stuck at 0 or at 1.
    all_ones = (1 << 128) - 1
    ored = anded = 0
    anded = all_ones
    for value in secrets_:
        ored |= value
        anded &= value
    assert ored == all_ones
    assert anded == 0


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "lsv2_pt_",
        "lsv2_pt",
        "lsv2_xx_" + "0" * 32 + "_00000000",
        "lsv2_pt_" + "0" * 31 + "_00000000",
        "lsv2_pt_" + "0" * 33 + "_00000000",
        "lsv2_pt_" + "g" * 32 + "_00000000",
        "lsv2_pt_" + "0" * 32 + "_0000000",
        "lsv2_pt_" + "0" * 32,
        "lsv1_pt_" + "0" * 32 + "_00000000",
        "sk-" + "0" * 48,
        "Bearer lsv2_pt_" + "0" * 32 + "_00000000",
        "ls__",
        "ls__short",
        "ls__" + "a" * 8 + "-" + "b" * 16,
        "ls_" + "a" * 32,
        "x" * 10_000,
    ],
)
def test_parse_rejects_malformed_keys(raw):
    assert keys.parse(raw) is None


@pytest.mark.parametrize("kind", [keys.PERSONAL, keys.SERVICE])
def test_parse_rejects_a_key_with_one_flipped_character(kind):
    raw = keys.generate(kind)
    assert keys.parse(raw) is not None
    assert keys.parse(flip(raw, len(raw) - 1)) is None  # the checksum
    assert keys.parse(flip(raw, len(raw) - 8)) is None
    assert keys.parse(flip(raw, len("lsv2_pt_"))) is None  # the secret
    assert keys.parse(flip(raw, len("lsv2_pt_") + 31)) is None
    assert keys.parse(raw.upper()) is None
    other = keys.SERVICE if kind == keys.PERSONAL else keys.PERSONAL
    assert keys.parse(raw.replace(f"_{kind}_", f"_{other}_")) is None  # the kind is checksummed


def test_a_legacy_key_parses_as_legacy():
    raw = legacy_key()
    parsed = keys.parse(raw)
    assert parsed is not None
    assert parsed.kind == keys.LEGACY
    assert parsed.digest == hashlib.sha256(raw.encode()).hexdigest()


def test_digest_is_sha256_hex():
    raw = keys.generate(keys.SERVICE)
    value = keys.digest(raw)
    assert value == hashlib.sha256(raw.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert keys.digest(flip(raw, 10)) != value


@pytest.mark.parametrize("kind", [keys.PERSONAL, keys.SERVICE, keys.LEGACY])
def test_display_hints_never_contain_the_secret(kind):
    for _ in range(50):
        raw = legacy_key() if kind == keys.LEGACY else keys.generate(kind)
        hint = keys.display_hint(raw)
        secret = secret_of(raw)
        assert len(hint) <= 24  # fits the column
        assert hint.startswith("ls__" if kind == keys.LEGACY else f"lsv2_{kind}_")
        assert hint.endswith(raw[-4:])
        windows = {secret[i : i + 5] for i in range(len(secret) - 4)}
        assert not any(window in hint for window in windows), hint


# Refused keys, through the API


@pytest.mark.parametrize(
    "raw",
    [
        "not-a-key",
        "lsv2_sk_" + "0" * 32 + "_00000000",
        "lsv2_pt_" + "a" * 31 + "_00000000",
        "ls__bad!",
    ],
)
def test_malformed_key_is_refused_without_any_query(client, world, raw, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api_call(client, "get", "/auth/whoami", raw)
    assert_error(response, 401, "invalid_api_key")


@pytest.mark.parametrize("position", ["checksum", "secret"])
@pytest.mark.parametrize("bearer", [False, True])
def test_key_with_a_wrong_checksum_is_refused_without_any_query(
    client, world, position, bearer, django_assert_num_queries
):
    raw = service_key_for(world.workspace)
    assert whoami(client, raw)["kind"] == "service_key"
    index = len(raw) - 1 if position == "checksum" else len("lsv2_sk_") + 5
    with django_assert_num_queries(0):
        response = api_call(client, "get", "/auth/whoami", flip(raw, index), bearer=bearer)
    assert_error(response, 401, "invalid_api_key")


@pytest.mark.parametrize("kind", [keys.PERSONAL, keys.SERVICE])
def test_unknown_well_formed_key_is_invalid(client, world, kind):
    pat_for(world.editor, world.org)
    service_key_for(world.workspace)
    response = api_call(client, "get", "/auth/whoami", keys.generate(kind))
    assert_error(response, 401, "invalid_api_key")


def test_unknown_legacy_key_is_invalid_before_the_sunset(client, world, settings):
    settings.LEGACY_API_KEY_SUNSET = timezone.now().date() + datetime.timedelta(days=30)
    assert_error(api_call(client, "get", "/auth/whoami", legacy_key()), 401, "invalid_api_key")


def test_revoked_service_key_fails_on_the_very_next_request(client, world):
    raw = service_key_for(world.workspace)
    assert whoami(client, raw)["role"] == "Admin"
    revoke_service_key(actor=world.workspace_admin, key=key_row(raw))
    assert_error(api_call(client, "get", "/auth/whoami", raw), 401, "revoked_api_key")
    assert_error(api_call(client, "get", "/auth/whoami", raw, bearer=True), 401, "revoked_api_key")


def test_revoked_personal_access_token_fails_on_the_very_next_request(client, world):
    raw = pat_for(world.editor, world.org)
    assert whoami(client, raw)["user_email"] == world.editor.email
    revoke_personal_access_token(actor=world.editor, token=key_row(raw))
    assert_error(api_call(client, "get", "/auth/whoami", raw), 401, "revoked_api_key")


@pytest.mark.parametrize("kind", ["pat", "service_key"])
def test_expired_key_fails_with_expired_api_key(client, world, kind):
    soon = timezone.now() + datetime.timedelta(hours=1)
    if kind == "pat":
        raw = pat_for(world.editor, world.org, expires_at=soon)
    else:
        raw = role_key(world.workspace, "Editor", expires_at=soon)
    assert whoami(client, raw)["expires_at"] is not None
    row = key_row(raw)
    type(row).objects.filter(pk=row.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert_error(api_call(client, "get", "/auth/whoami", raw), 401, "expired_api_key")


# Where the key may come from


def test_bearer_header_works_like_x_api_key(client, world):
    raw = role_key(world.workspace, "Editor")
    by_header = whoami(client, raw)
    by_bearer = whoami(client, raw, bearer=True)
    assert by_bearer == by_header
    assert by_bearer["role"] == "Editor"
    response = api_call(client, "get", "/auth/whoami", flip(raw, len(raw) - 1), bearer=True)
    assert_error(response, 401, "invalid_api_key")


@pytest.mark.parametrize("param", ["api_key", "x-api-key", "X-API-Key", "token", "key"])
def test_a_key_in_the_query_string_is_ignored(client, world, param):
    raw = service_key_for(world.workspace)
    response = client.get(f"/api/v1/auth/whoami?{param}={raw}")
    assert_error(response, 401, "missing_api_key")


def test_the_api_never_uses_the_session(client, world):
    client.force_login(world.org_admin)
    assert_error(api_call(client, "get", "/auth/whoami"), 401, "missing_api_key")
    assert_error(api_call(client, "get", "/workspaces/current/members"), 401, "missing_api_key")
    response = api_call(client, "post", "/api-key", json={"name": "from a session"})
    assert response.status_code == 401
    assert not ServiceKey.objects.exists()


# Selecting the workspace: X-Tenant-Id


def test_pat_without_tenant_acts_in_the_users_default_workspace(client, world):
    body = whoami(client, pat_for(world.editor, world.org))
    assert body["kind"] == "personal_access_token"
    assert body["workspace"]["id"] == str(world.workspace.pk)
    assert body["workspace"]["slug"] == "production"
    assert body["organization"]["id"] == str(world.org.pk)
    assert body["role"] == "Editor"
    assert "datasets:create" in body["permissions"]


def test_pat_default_workspace_is_one_the_user_belongs_to(client, world):
    user = UserFactory()
    membership = OrganizationMembershipFactory(user=user, organization=world.org)
    WorkspaceMembershipFactory(
        org_membership=membership, workspace=world.other_workspace, role=system_role("Viewer")
    )
    body = whoami(client, pat_for(user, world.org))
    assert body["workspace"]["id"] == str(world.other_workspace.pk)
    assert body["role"] == "Viewer"


def test_pat_with_tenant_takes_the_users_role_in_that_workspace(client, world):
    raw = pat_for(world.editor, world.org)
    staging = str(world.other_workspace.pk)
    # Not a member of staging: nothing to do there.
    response = api_call(client, "get", "/workspaces/current/members", raw, tenant=staging)
    assert response.status_code == 403, response.content

    add_workspace_member(
        actor=world.org_admin,
        workspace=world.other_workspace,
        user=world.editor,
        role=system_role("Viewer"),
    )
    body = whoami(client, raw, tenant=staging)
    assert body["workspace"]["id"] == staging
    assert body["role"] == "Viewer"
    workspace_codes = {c for c in body["permissions"] if not c.startswith("organization:")}
    assert workspace_codes == set(READ_PERMISSIONS)
    response = api_call(client, "get", "/workspaces/current/members", raw, tenant=staging)
    assert response.status_code == 200
    assert [m["email"] for m in response.json()] == [world.editor.email]
    response = api_call(client, "post", "/api-key", raw, tenant=staging, json={"name": "x"})
    assert_error(response, 403, "permission_denied")

    # Without the header, still Editor in the default workspace.
    body = whoami(client, raw)
    assert body["workspace"]["id"] == str(world.workspace.pk)
    assert body["role"] == "Editor"


@pytest.mark.parametrize("kind", ["pat", "service_key", "org_service_key"])
def test_a_workspace_of_another_org_is_not_accessible(client, world, kind):
    raw = {
        "pat": lambda: pat_for(world.org_admin, world.org),
        "service_key": lambda: service_key_for(world.workspace),
        "org_service_key": lambda: service_key_for(world.workspace, org_scoped=True),
    }[kind]()
    foreign = world.other_workspace_of_other_org.pk
    for path in ("/auth/whoami", "/workspaces/current/members"):
        response = api_call(client, "get", path, raw, tenant=foreign)
        assert_error(response, 403, "workspace_not_accessible")
    random_id = uuid.uuid4()
    response = api_call(client, "get", "/auth/whoami", raw, tenant=random_id)
    assert_error(response, 403, "workspace_not_accessible")


@pytest.mark.parametrize("tenant", ["not-a-uuid", "production", "1234", "' OR 1=1 --"])
def test_a_malformed_tenant_is_a_400(client, world, tenant):
    raw = pat_for(world.editor, world.org)
    response = api_call(client, "get", "/auth/whoami", raw, tenant=tenant)
    assert_error(response, 400, "invalid_tenant")


def test_org_scoped_key_must_name_the_workspace_for_workspace_operations(client, world):
    raw = service_key_for(world.workspace, org_scoped=True)
    body = whoami(client, raw)
    assert body["kind"] == "service_key"
    assert body["workspace"] is None
    assert body["organization"]["id"] == str(world.org.pk)

    response = api_call(client, "get", "/workspaces/current/members", raw)
    refused = assert_error(response, 403, "org_scoped_key_requires_workspace")
    assert refused["alias"] == "workspace_required"
    assert "X-Tenant-Id" in refused["detail"]
    assert refused["required"] == "workspaces:read"

    for workspace in (world.workspace, world.other_workspace):
        body = whoami(client, raw, tenant=workspace.pk)
        assert body["workspace"]["id"] == str(workspace.pk)
        assert body["role"] == "Admin"
        response = api_call(client, "get", "/workspaces/current/members", raw, tenant=workspace.pk)
        assert response.status_code == 200
        expected = sorted(
            m.org_membership.user.email
            for m in WorkspaceMembership.objects.filter(workspace=workspace)
        )
        assert [m["email"] for m in response.json()] == expected


def test_workspace_key_cannot_select_another_workspace(client, world):
    raw = service_key_for(world.workspace)
    assert whoami(client, raw, tenant=world.workspace.pk)["workspace"]["slug"] == "production"
    for path in ("/auth/whoami", "/workspaces/current/members"):
        response = api_call(client, "get", path, raw, tenant=world.other_workspace.pk)
        assert_error(response, 403, "workspace_not_accessible")


# A PAT is its user, as they are now


def test_pat_follows_the_users_current_role(client, world):
    raw = pat_for(world.editor, world.org)
    before = whoami(client, raw)
    assert before["role"] == "Editor"
    assert "datasets:create" in before["permissions"]

    membership = WorkspaceMembership.objects.get(
        workspace=world.workspace, org_membership__user=world.editor
    )
    change_workspace_role(actor=world.org_admin, membership=membership, role=system_role("Viewer"))
    after = whoami(client, raw)
    assert after["role"] == "Viewer"
    assert "datasets:create" not in after["permissions"]
    assert "datasets:read" in after["permissions"]

    change_workspace_role(actor=world.org_admin, membership=membership, role=system_role("Admin"))
    assert "workspaces:manage" in whoami(client, raw)["permissions"]


def test_removing_the_user_from_the_org_deletes_their_pats(client, world):
    first = pat_for(world.editor, world.org)
    second = pat_for(world.editor, world.org)
    other_user = pat_for(world.viewer, world.org)
    token_ids = {str(key_row(first).pk), str(key_row(second).pk)}
    assert whoami(client, first)["role"] == "Editor"

    membership = OrganizationMembership.objects.get(user=world.editor, organization=world.org)
    remove_org_member(actor=world.org_admin, membership=membership)

    for raw in (first, second):
        assert_error(api_call(client, "get", "/auth/whoami", raw), 401, "invalid_api_key")
    assert not PersonalAccessToken.objects.filter(org_membership__user=world.editor).exists()
    assert whoami(client, other_user)["role"] == "Viewer"
    events = AuditEvent.objects.filter(action="personal_access_token.deleted")
    assert sorted(e.target_id for e in events) == sorted(token_ids)
    assert all(e.organization_id == world.org.pk for e in events)
    assert all(e.actor_user_id == world.org_admin.pk for e in events)


# Legacy ls__ keys


def write_csv(path, rows, header=("key", "workspace", "name")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def run_import(path):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_legacy_keys", path, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def future(days=30):
    return timezone.now().date() + datetime.timedelta(days=days)


def test_imported_legacy_keys_authenticate_before_the_sunset(client, world, settings, tmp_path):
    settings.LEGACY_API_KEY_SUNSET = future()
    by_slug, by_id = legacy_key(), legacy_key()
    path = write_csv(
        tmp_path / "legacy.csv",
        [
            (by_slug, "acme/production", "old ingest"),
            (by_id, str(world.other_workspace.pk), "old eval"),
        ],
    )
    output = run_import(path)
    assert "Imported 2" in output

    for raw, workspace, name in (
        (by_slug, world.workspace, "old ingest"),
        (by_id, world.other_workspace, "old eval"),
    ):
        body = whoami(client, raw)
        assert body["kind"] == "service_key"
        assert body["legacy"] is True
        assert body["role"] == "Admin"
        assert body["workspace"]["id"] == str(workspace.pk)
        assert name in body["principal"]
        assert whoami(client, raw, bearer=True)["legacy"] is True


@pytest.mark.parametrize("days_ago", [0, 1, 365])
def test_legacy_keys_are_refused_after_the_sunset(client, world, settings, tmp_path, days_ago):
    raw = legacy_key()
    run_import(write_csv(tmp_path / "legacy.csv", [(raw, "acme/production", "old")]))
    settings.LEGACY_API_KEY_SUNSET = future()
    assert whoami(client, raw)["legacy"] is True

    sunset = timezone.now().date() - datetime.timedelta(days=days_ago)
    settings.LEGACY_API_KEY_SUNSET = sunset
    for bearer in (False, True):
        response = api_call(client, "get", "/auth/whoami", raw, bearer=bearer)
        body = assert_error(response, 401, "legacy_api_key_sunset")
        assert body["detail"] == SUNSET_MESSAGE.format(date=sunset.isoformat())


def test_the_default_sunset_has_passed(client, world, tmp_path):
    raw = legacy_key()
    run_import(write_csv(tmp_path / "legacy.csv", [(raw, "acme/production", "old")]))
    response = api_call(client, "get", "/auth/whoami", raw)
    body = assert_error(response, 401, "legacy_api_key_sunset")
    assert body["detail"] == SUNSET_MESSAGE.format(date="2024-07-01")


def test_import_stores_only_the_digest_as_an_admin_legacy_service_key(world, tmp_path, capsys):
    raw = legacy_key()
    output = run_import(write_csv(tmp_path / "legacy.csv", [(raw, "acme/production", "old")]))
    printed = capsys.readouterr()
    for text in (output, printed.out, printed.err):
        assert raw not in text
        assert secret_of(raw)[:12] not in text

    key = ServiceKey.objects.get()
    assert key.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert key.legacy is True
    assert key.role.name == "Admin"
    assert key.role.organization_id is None
    assert key.workspace_id == world.workspace.pk
    assert key.organization_id == world.org.pk
    assert key.name == "old"
    assert key.revoked_at is None
    assert key.expires_at is None
    for field in ServiceKey._meta.concrete_fields:
        value = str(field.value_from_object(key))
        assert secret_of(raw)[:12] not in value, field.name

    event = AuditEvent.objects.get(action="service_key.legacy_imported")
    assert event.target_id == str(key.pk)
    assert event.organization_id == world.org.pk
    assert event.workspace_id == world.workspace.pk
    assert_no_key_in_audit([raw])


def test_rerunning_the_import_skips_rows_already_imported(world, tmp_path):
    first, second = legacy_key(), legacy_key()
    path = write_csv(tmp_path / "legacy.csv", [(first, "acme/production", "one")])
    run_import(path)
    path = write_csv(
        tmp_path / "legacy2.csv",
        [(first, "acme/production", "one"), (second, "acme/staging", "two")],
    )
    output = run_import(path)
    assert "Imported 1" in output
    assert "1 already imported" in output
    output = run_import(path)
    assert "Imported 0" in output
    assert "2 already imported" in output
    assert ServiceKey.objects.filter(legacy=True).count() == 2
    assert AuditEvent.objects.filter(action="service_key.legacy_imported").count() == 2


def snapshot():
    return ServiceKey.objects.count(), AuditEvent.objects.count()


@pytest.mark.parametrize(
    ("bad_row", "header"),
    [
        (("ls__bad!", "acme/production", "typo"), None),
        (("lsv2_sk_" + "0" * 32 + "_00000000", "acme/production", "not legacy"), None),
        (("LEGACY", "acme/nowhere", "unknown workspace"), None),
        (("LEGACY", "globex/nowhere", "unknown workspace"), None),
        (("LEGACY", str(uuid.uuid4()), "unknown workspace id"), None),
        (("LEGACY", "", "no workspace"), None),
        (("LEGACY", "acme/production", ""), None),
        (None, ("key", "name")),
        (None, ("secret", "workspace", "name")),
    ],
)
def test_a_bad_csv_fails_and_writes_nothing(world, tmp_path, bad_row, header):
    good = legacy_key()
    before = snapshot()
    if header is None:
        bad = tuple(legacy_key() if cell == "LEGACY" else cell for cell in bad_row)
        path = write_csv(tmp_path / "bad.csv", [(good, "acme/production", "good"), bad])
    else:
        path = write_csv(tmp_path / "bad.csv", [(good, "acme/production")], header=header)
        bad = ()
    with pytest.raises(CommandError) as excinfo:
        run_import(path)
    assert snapshot() == before
    message = str(excinfo.value)
    assert good not in message
    for cell in bad:
        if cell.startswith(("ls", "LS")) and len(cell) > 8:
            assert cell not in message  # a mistyped secret is still a secret


def test_import_into_an_archived_workspace_fails_and_writes_nothing(world, tmp_path):
    # As creating a key there is refused (console and API alike): archived is read-only.
    world.other_workspace.archived = True
    world.other_workspace.save(update_fields=["archived"])
    path = write_csv(
        tmp_path / "legacy.csv",
        [(legacy_key(), "acme/production", "good"), (legacy_key(), "acme/staging", "archived")],
    )
    before = snapshot()
    with pytest.raises(CommandError) as excinfo:
        run_import(path)
    assert snapshot() == before
    assert "line 3" in str(excinfo.value) and "archived" in str(excinfo.value)


def test_import_of_a_missing_file_is_a_command_error(world, tmp_path):
    with pytest.raises(CommandError):
        run_import(str(tmp_path / "nope.csv"))


# The query budget and last_used_at


def measured_keys(world):
    return {
        "workspace service key": (role_key(world.workspace, "Editor"), None),
        "org-scoped service key with tenant": (
            service_key_for(world.workspace, org_scoped=True),
            world.other_workspace.pk,
        ),
        "personal access token": (pat_for(world.editor, world.org), None),
        "personal access token with tenant": (
            pat_for(world.org_admin, world.org),
            world.other_workspace.pk,
        ),
    }


@pytest.mark.parametrize(
    "which",
    [
        "workspace service key",
        "org-scoped service key with tenant",
        "personal access token",
        "personal access token with tenant",
    ],
)
def test_a_key_authenticated_request_takes_at_most_two_queries(
    client, world, which, django_assert_max_num_queries
):
    raw, tenant = measured_keys(world)[which]
    whoami(client, raw, tenant=tenant)  # the first use writes last_used_at
    with django_assert_max_num_queries(2):
        body = whoami(client, raw, tenant=tenant)
    assert body["workspace"] is not None
    assert body["permissions"]


def test_last_used_at_is_written_at_most_once_a_minute(client, world):
    raw = service_key_for(world.workspace)
    row = key_row(raw)
    assert row.last_used_at is None

    whoami(client, raw)
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    assert timezone.now() - first < datetime.timedelta(seconds=30)

    whoami(client, raw)
    row.refresh_from_db()
    assert row.last_used_at == first

    stale = timezone.now() - LAST_USED_RESOLUTION - datetime.timedelta(seconds=5)
    later = timezone.now() + LAST_USED_RESOLUTION + datetime.timedelta(seconds=5)
    with mock.patch("django.utils.timezone.now", return_value=later):
        whoami(client, raw)  # a minute on, from the same (cached) principal
    row.refresh_from_db()
    assert row.last_used_at > stale + LAST_USED_RESOLUTION


def test_pat_last_used_at_is_written_on_use_and_not_on_refusal(client, world):
    raw = pat_for(world.editor, world.org)
    token = key_row(raw)
    assert token.last_used_at is None
    response = api_call(client, "get", "/auth/whoami", raw, tenant="not-a-uuid")
    assert response.status_code == 400
    whoami(client, raw)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    whoami(client, raw)
    token.refresh_from_db()
    assert token.last_used_at == first

    later = timezone.now() + datetime.timedelta(minutes=5)
    with mock.patch("django.utils.timezone.now", return_value=later):
        whoami(client, raw)
    token.refresh_from_db()
    assert token.last_used_at == later


# Keys never reach the logs or the audit log


def test_requests_never_log_the_key(client, world, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    caplog.set_level(logging.DEBUG, logger="django.request")
    caplog.set_level(logging.DEBUG, logger="django.db.backends")

    admin_key = service_key_for(world.workspace)
    viewer_key = role_key(world.workspace, "Viewer")
    pat = pat_for(world.editor, world.org)
    revoked = role_key(world.workspace, "Editor")
    ServiceKey.objects.filter(pk=key_row(revoked).pk).update(revoked_at=timezone.now())
    unknown = keys.generate(keys.SERVICE)
    caplog.clear()

    # Capturing queries turns on SQL logging (with parameters) in django.db.backends.
    with CaptureQueriesContext(connection):
        responses = [
            api_call(client, "get", "/auth/whoami", revoked),
            api_call(client, "get", "/auth/whoami", unknown, bearer=True),
            api_call(client, "get", "/auth/whoami", flip(pat, len(pat) - 1)),
            api_call(client, "post", "/api-key", viewer_key, json={"name": "not allowed"}),
            api_call(
                client,
                "get",
                f"/workspaces/{world.other_workspace_of_other_org.pk}",
                admin_key,
            ),
            api_call(client, "post", "/api-key", admin_key, json={"name": "minted"}),
            api_call(
                client, "post", "/orgs/current/personal-access-tokens", pat, json={"name": "t"}
            ),
            api_call(client, "get", "/auth/whoami", pat),
        ]
    assert [r.status_code for r in responses] == [401, 401, 401, 403, 404, 201, 201, 200]
    minted = [responses[5].json()["key"], responses[6].json()["key"]]
    assert caplog.records, "DEBUG logging was not captured"

    every_key = [admin_key, viewer_key, pat, revoked, unknown, *minted]
    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    for raw in every_key:
        assert raw not in text
        assert secret_of(raw) not in text
        assert secret_of(raw)[:12] not in text
    assert_no_key_in_audit(every_key)


def test_a_warm_key_costs_no_query_and_reads_only_the_version(
    client, world, django_assert_num_queries
):
    """The hot path (ARCHITECTURE §9): the principal is cached in the process and checked
    against its organization's version, here read from the in-process cache; no rate-limit
    counter is read for a key proven in this process. (With Redis the version is pushed to the
    process and nothing is read: tests/rbac/test_warm_path.py.)"""
    from django.core.cache import cache

    raw = service_key_for(world.workspace, "Editor")
    for _ in range(2):  # the first request learns the key's organization, the second caches
        assert api_call(client, "GET", "/auth/whoami", raw).status_code == 200
    calls, inside = [], []
    real_get_many, real_get = cache.get_many, cache.get

    def get_many(*args, **kwargs):
        calls.append("get_many")
        inside.append(True)  # the local-memory cache answers get_many with get, key by key
        try:
            return real_get_many(*args, **kwargs)
        finally:
            inside.pop()

    def get(*args, **kwargs):
        if not inside:
            calls.append("get")
        return real_get(*args, **kwargs)

    with (
        mock.patch.object(cache, "get_many", side_effect=get_many),
        mock.patch.object(cache, "get", side_effect=get),
        django_assert_num_queries(0),
    ):
        assert api_call(client, "GET", "/auth/whoami", raw).status_code == 200
    assert calls == ["get"]


def test_an_imported_legacy_key_lives_no_longer_than_the_organization_allows(world, tmp_path):
    """The organization's key lifetime cap holds for every key it gets, imported ones too
    (apikeys.services.clean_expiry, as the console, the API and rotation apply it)."""
    world.org.max_key_lifetime_days = 30
    world.org.save(update_fields=["max_key_lifetime_days"])

    run_import(write_csv(tmp_path / "legacy.csv", [(legacy_key(), "acme/production", "old")]))

    key = ServiceKey.objects.get()
    assert key.expires_at is not None
    lives = key.expires_at - timezone.now()
    assert datetime.timedelta(days=29) < lives <= datetime.timedelta(days=30)
