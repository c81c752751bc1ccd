"""Property tests for the resolver and for key authentication.

The rules (ARCHITECTURE §4-5, README "How access works", rbac/resolver.py), stated once here
as the oracle `expected_workspace_codes` and checked against `compute_access` for arbitrary
inputs, against `resolve_access` and key authentication on real rows, and as the separate
safety invariants they imply:

- A principal's workspace permissions come only from the roles it holds there: its workspace
  role (a system role's catalog set, or a custom role's stored codes that are in the catalog);
  Admin if it is an organization admin (in every workspace, member or not); Admin if it has a
  workspace role and the plan is below Enterprise (no workspace RBAC there: every member is
  Admin, and so is every service key). Nothing else grants a workspace code.
- An organization viewer holds no workspace code that is not `:read`, whatever its role says.
- An archived workspace grants no write code except `workspaces:manage` (to restore it).
- Organization codes come from the organization role alone (for a service key: from the key's
  scope); no workspace role, custom or system, grants one.
- A key authenticates if and only if it exists, is not revoked and has not expired, through
  the principal cache too; anything else, random text or a one-character edit of a real key,
  is refused with KeyRejected (and a malformed or mistyped key without a database query).
"""

import datetime
import string
import uuid
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accesscontrol.apikeys import authentication, keys
from accesscontrol.apikeys.authentication import KeyRejected, authenticate
from accesscontrol.apikeys.services import (
    create_personal_access_token,
    create_service_key,
    revoke_personal_access_token,
    revoke_service_key,
)
from accesscontrol.organizations.models import Plan
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ADMIN,
    ALL_PERMISSIONS,
    ORG_MANAGE,
    ORG_READ,
    ORG_ROLE_PERMISSIONS,
    ORGANIZATION_PERMISSIONS,
    READ_PERMISSIONS,
    SYSTEM_ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import compute_access, effective_permissions, resolve_access
from tests.factories import (
    SYSTEM,
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    WorkspaceFactory,
    WorkspaceMembershipFactory,
    actor_with,
)
from tests.support.db import rolled_back

WRITE_PERMISSIONS = WORKSPACE_PERMISSIONS - READ_PERMISSIONS
RESTORE = frozenset({"workspaces:manage"})
SYSTEM_ROLES = sorted(SYSTEM_ROLE_PERMISSIONS)

# Workspace roles, as the resolver sees them: (name, organization id or None, stored codes).
# Custom roles may store anything (a code later dropped from the catalog, an org code written
# past the service's validation): only catalogued workspace codes may count.
STORED_CODES = st.frozensets(
    st.sampled_from(
        [*sorted(ALL_PERMISSIONS), "datasets:destroy", "organization:owner", "", "runs:*"]
    )
)
system_roles = st.builds(lambda name: (name, None, None), st.sampled_from(SYSTEM_ROLES))
unknown_system_roles = st.just(("Superuser", None, None))
SOME_ORG = uuid.UUID("00000000-0000-4000-8000-0000000000ac")
custom_roles = st.builds(
    lambda name, codes: (name, SOME_ORG, sorted(codes)),
    st.sampled_from([*SYSTEM_ROLES, "Annotator", "Auditor"]),  # a custom "Admin" is no Admin
    STORED_CODES,
)
workspace_roles = st.one_of(st.none(), system_roles, custom_roles, unknown_system_roles)
PLANS = st.sampled_from(Plan.values)
ORG_ROLES = st.sampled_from(sorted(ORG_ROLE_PERMISSIONS))
SERVICE_KEY_ORG_PERMISSIONS = st.sampled_from(
    [frozenset({ORG_READ}), frozenset({ORG_READ, ORG_MANAGE})]
)

PURE = settings(max_examples=400, deadline=None, derandomize=True, database=None)
WITH_ROWS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def role_grants(role) -> frozenset[str]:
    """What holding `role` grants in a workspace, from the catalog alone."""
    if role is None:
        return frozenset()
    name, organization_id, codes = role
    if organization_id is None:
        return SYSTEM_ROLE_PERMISSIONS.get(name, frozenset())
    return frozenset(codes or ()) & WORKSPACE_PERMISSIONS


def roles_held(org_role, plan, role) -> list:
    """Every role the principal holds in the workspace, by the rules above."""
    held = [role] if role is not None else []
    if org_role == "admin":
        held.append((ADMIN, None, None))
    if role is not None and plan != Plan.ENTERPRISE:
        held.append((ADMIN, None, None))
    return held


def expected_workspace_codes(org_role, plan, archived, role) -> frozenset[str]:
    if org_role == "admin":
        codes = WORKSPACE_PERMISSIONS
    elif role is None:
        codes = frozenset()
    elif plan != Plan.ENTERPRISE:
        codes = WORKSPACE_PERMISSIONS
    else:
        codes = role_grants(role)
    if org_role == "viewer":
        codes &= READ_PERMISSIONS
    if archived:
        codes &= READ_PERMISSIONS | RESTORE
    return codes


def access_for(org_role, plan, archived, role, **extra):
    """compute_access for a role drawn by the strategies: (name, organization id, codes) or None."""
    fields = dict(zip(("role_name", "role_org_id", "role_codes"), role or (None, None, None)))
    return compute_access(org_role=org_role, plan=plan, archived=archived, **fields, **extra)


def check_invariants(access, *, org_role, plan, archived, role, org_permissions=None):
    """What must hold whatever the inputs; `org_permissions` default to the org role's."""
    if org_permissions is None:
        org_permissions = ORG_ROLE_PERMISSIONS[org_role]
    codes = access.permissions
    workspace_codes = codes & WORKSPACE_PERMISSIONS
    held = roles_held(org_role, plan, role)
    granted_by_some_role = frozenset().union(*(role_grants(r) for r in held))

    assert codes <= ALL_PERMISSIONS, f"codes outside the catalog: {codes - ALL_PERMISSIONS}"
    assert workspace_codes <= granted_by_some_role, (
        f"granted by none of {held}: {sorted(workspace_codes - granted_by_some_role)}"
    )
    if org_role == "viewer":
        assert workspace_codes <= READ_PERMISSIONS, sorted(workspace_codes - READ_PERMISSIONS)
    if archived:
        assert not (workspace_codes & WRITE_PERMISSIONS) - RESTORE, "write in an archived ws"
    assert codes & ORGANIZATION_PERMISSIONS == org_permissions, "org codes from a ws role"
    assert workspace_codes == expected_workspace_codes(org_role, plan, archived, role)


@PURE
@given(org_role=ORG_ROLES, plan=PLANS, archived=st.booleans(), role=workspace_roles)
def test_compute_access_for_people_grants_only_what_their_roles_grant(
    org_role, plan, archived, role
):
    access = access_for(org_role, plan, archived, role)
    check_invariants(access, org_role=org_role, plan=plan, archived=archived, role=role)
    assert access.org_role == org_role
    assert access.reason == (
        "org_admin"
        if org_role == "admin"
        else "not_workspace_member"
        if role is None
        else "plan"
        if plan != Plan.ENTERPRISE
        else "membership"
    )


@PURE
@given(
    plan=PLANS,
    archived=st.booleans(),
    role=st.one_of(system_roles, custom_roles, unknown_system_roles),
    org_permissions=SERVICE_KEY_ORG_PERMISSIONS,
)
def test_compute_access_for_service_keys_grants_only_the_keys_role(
    plan, archived, role, org_permissions
):
    access = access_for(None, plan, archived, role, org_permissions=org_permissions)
    check_invariants(
        access,
        org_role=None,
        plan=plan,
        archived=archived,
        role=role,
        org_permissions=org_permissions,
    )


@PURE
@given(org_role=ORG_ROLES, plan=PLANS, role=workspace_roles)
def test_archiving_and_demotion_never_add_a_permission(org_role, plan, role):
    def codes_for(org_role, archived):
        return access_for(org_role, plan, archived, role).permissions & WORKSPACE_PERMISSIONS

    for each in (org_role, "viewer"):
        assert codes_for(each, True) <= codes_for(each, False)
    assert codes_for("viewer", False) <= codes_for("member", False) <= codes_for("admin", False)


# The same rules through the database: real organizations, memberships, roles and keys.


def make_role(organization, role):
    if role is None:
        return None
    name, organization_id, codes = role
    if organization_id is None:
        return Role.objects.system(name) if name in SYSTEM_ROLE_PERMISSIONS else None
    # Stored as given, past the service's validation (which refuses system names and unknown
    # codes), as an old row or a hand edit could be: the resolver must not care.
    return Role.objects.create(organization=organization, name=name, permissions=codes)


@WITH_ROWS
@given(
    org_role=st.sampled_from([*sorted(ORG_ROLE_PERMISSIONS), "none"]),
    plan=PLANS,
    archived=st.booleans(),
    role=st.one_of(st.none(), system_roles, custom_roles),
    active=st.booleans(),
)
def test_resolve_access_and_keys_follow_the_rules_on_real_rows(
    db, org_role, plan, archived, role, active
):
    with rolled_back():
        org = OrganizationFactory(plan=Plan.ENTERPRISE)  # keys and roles are made on Enterprise
        workspace = WorkspaceFactory(organization=org)
        neighbour = WorkspaceFactory(organization=org)  # the user holds no role there
        user = UserFactory()
        db_role = make_role(org, role)
        token = None
        if org_role != "none":
            membership = OrganizationMembershipFactory(
                user=user, organization=org, org_role="member"
            )
            if db_role is not None:
                WorkspaceMembershipFactory(
                    org_membership=membership, workspace=workspace, role=db_role
                )
            # Made as a member; the org role, plan and archive flag change afterwards, and
            # the token must act with the user's *current* standing.
            token = create_personal_access_token(user=user, organization=org, name="pt")[1]
            membership.org_role = org_role
            membership.save(update_fields=["org_role"])
        service_key = None
        if db_role is not None:
            service_key = create_service_key(
                actor=actor_with(ALL_PERMISSIONS),
                organization=org,
                workspace=workspace,
                name="sk",
                role=db_role,
            )[1]
        org.plan = plan
        org.save(update_fields=["plan"])
        workspace.archived = archived
        workspace.save(update_fields=["archived"])
        if not active:
            user.is_active = False
            user.save(update_fields=["is_active"])

        access = resolve_access(user, org.pk, workspace)
        if org_role == "none" or not active:
            assert access.permissions == frozenset()
            assert effective_permissions(user, workspace) == frozenset()
        else:
            check_invariants(access, org_role=org_role, plan=plan, archived=archived, role=role)
            assert effective_permissions(user, workspace) == access.permissions
            assert resolve_access(user, org.pk).permissions == ORG_ROLE_PERMISSIONS[org_role]
            next_door = resolve_access(user, org.pk, neighbour).permissions
            assert next_door & WORKSPACE_PERMISSIONS == expected_workspace_codes(
                org_role, plan, False, None
            )

        if token is not None:
            if active:
                principal = authenticate(token, str(workspace.pk))
                assert principal.access.permissions == access.permissions
            else:
                with pytest.raises(KeyRejected) as refused:
                    authenticate(token, str(workspace.pk))
                assert refused.value.error == "revoked_api_key"

        if service_key is not None:
            principal = authenticate(service_key, None)
            check_invariants(
                principal.access,
                org_role=None,
                plan=plan,
                archived=archived,
                role=role,
                org_permissions=frozenset({ORG_READ}),  # a workspace key reads the org only
            )


# Key authentication


def _live_key(world, kind):
    if kind == keys.PERSONAL:
        token, raw = create_personal_access_token(
            user=world.workspace_admin, organization=world.org, name="prop"
        )
        return token, raw
    return create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=world.org,
        workspace=world.workspace,
        name="prop",
    )


def _revoke(key):
    if isinstance(key, authentication.ServiceKey):
        revoke_service_key(actor=SYSTEM, key=key)
    else:
        revoke_personal_access_token(actor=SYSTEM, token=key)


# Seconds from now: None (no expiry), in the past (or exactly now), or comfortably ahead.
EXPIRIES = st.one_of(
    st.none(),
    st.integers(min_value=-(10**8), max_value=0),
    st.integers(min_value=60, max_value=10**8),
)
KINDS = st.sampled_from([keys.PERSONAL, keys.SERVICE])


@WITH_ROWS
@given(kind=KINDS, expires_in=EXPIRIES, revoked=st.booleans(), warm_cache=st.booleans())
def test_a_key_authenticates_exactly_while_it_is_live(world, kind, expires_in, revoked, warm_cache):
    with rolled_back():
        key, raw = _live_key(world, kind)
        if warm_cache:
            assert authenticate(raw, None).key.pk == key.pk  # now cached per process
        if expires_in is not None:
            key.expires_at = timezone.now() + datetime.timedelta(seconds=expires_in)
            key.save(update_fields=["expires_at"])
        if revoked:
            _revoke(key)

        live = not revoked and (expires_in is None or expires_in > 0)
        if live:
            principal = authenticate(raw, None)
            assert principal.key.pk == key.pk
            assert principal.kind == (
                "personal_access_token" if kind == keys.PERSONAL else "service_key"
            )
        else:
            with pytest.raises(KeyRejected) as refused:
                authenticate(raw, None)
            assert refused.value.status == 401
            assert refused.value.error == ("revoked_api_key" if revoked else "expired_api_key")


@WITH_ROWS
@given(kind=KINDS, lifetime=st.integers(1, 10**6), elapsed=st.integers(0, 2 * 10**6))
def test_a_cached_key_stops_working_the_moment_it_expires(world, kind, lifetime, elapsed):
    with rolled_back():
        key, raw = _live_key(world, kind)
        start = timezone.now()
        key.expires_at = start + datetime.timedelta(seconds=lifetime)
        key.save(update_fields=["expires_at"])
        with mock.patch.object(authentication.timezone, "now", return_value=start):
            authenticate(raw, None)  # cached now, as a busy key would be
        later = start + datetime.timedelta(seconds=elapsed)
        with mock.patch.object(authentication.timezone, "now", return_value=later):
            if elapsed < lifetime:
                assert authenticate(raw, None).key.pk == key.pk
            else:
                with pytest.raises(KeyRejected) as refused:
                    authenticate(raw, None)
                assert refused.value.error == "expired_api_key"


KEYISH = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
    st.builds(
        lambda prefix, body: prefix + body,
        st.sampled_from(["lsv2_pt_", "lsv2_sk_", "ls__", "Bearer "]),
        st.text(alphabet=string.hexdigits + "_-", max_size=60),
    ),
)


@WITH_ROWS
@given(raw=KEYISH)
def test_random_strings_never_authenticate(world, raw):
    with rolled_back():
        _live_key(world, keys.SERVICE)  # a real key exists; nothing random may reach it
        with pytest.raises(KeyRejected) as refused:
            authenticate(raw, None)
        assert refused.value.status == 401
        assert refused.value.error in ("invalid_api_key", "legacy_api_key_sunset")


def _substitute(raw, i, c):
    return raw[:i] + c + raw[i + 1 :]


def _swap(raw, i):
    j = (i + 1) % len(raw)
    return _substitute(_substitute(raw, i, raw[j]), j, raw[i])


MUTATIONS = {
    "substitute": lambda raw, i, c: _substitute(raw, i, c),
    "insert": lambda raw, i, c: raw[:i] + c + raw[i:],
    "delete": lambda raw, i, c: raw[:i] + raw[i + 1 :],
    "swap": lambda raw, i, c: _substitute(
        _substitute(raw, i, raw[(i + 1) % len(raw)]), (i + 1) % len(raw), raw[i]
    ),
    "truncate": lambda raw, i, c: raw[:i],
    "upper": lambda raw, i, c: _substitute(raw, i, raw[i].upper()),
}


@WITH_ROWS
@given(
    kind=KINDS,
    mutation=st.sampled_from(sorted(MUTATIONS)),
    position=st.integers(0, 10**6),
    char=st.characters(codec="utf-8"),
)
def test_a_one_character_edit_of_a_real_key_is_refused_without_a_query(
    world, kind, mutation, position, char
):
    with rolled_back():
        _, raw = _live_key(world, kind)
        mutated = MUTATIONS[mutation](raw, position % len(raw), char)
        # parse() strips surrounding whitespace: a key with a trailing newline is that key.
        assume(mutated.strip() != raw)
        with CaptureQueriesContext(connection) as queries, pytest.raises(KeyRejected) as refused:
            authenticate(mutated, None)
        assert refused.value.error == "invalid_api_key"
        assert len(queries) == 0, [q["sql"] for q in queries]
