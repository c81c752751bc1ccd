"""The intersection rule of narrowed personal access tokens, as properties (issue #17, item 5).

A narrowed token never holds a permission its user lacks or its limits exclude; it holds
exactly what both allow; outside its workspace limit it holds no workspace permission and an
X-Tenant-Id there is refused; it never holds organization:manage or organization:pats:create.
Stated here from the catalog (tests/factories.py), checked first on `narrow` alone for arbitrary
access, then on real rows through `authenticate` across random role changes, with the principal
cache kept warm between changes (a demotion must narrow the token on the very next request).
"""

import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accesscontrol.apikeys.authentication import KeyRejected, authenticate
from accesscontrol.apikeys.limits import PRESETS, TokenLimits, narrow
from accesscontrol.apikeys.services import create_personal_access_token
from accesscontrol.rbac.resolver import Access, resolve_access
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import (
    ORG_MANAGE,
    ORG_PATS,
    ORG_READ,
    WS,
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    WorkspaceFactory,
    system_role,
)
from tests.support.db import rolled_back
from tests.support.examples import db_examples

# What a limit may name, and what no narrowed token ever holds, from first principles.
LIMITABLE = WS | {ORG_READ}
EVERY_CODE = WS | {ORG_READ, ORG_MANAGE, ORG_PATS}

codes = st.frozensets(st.sampled_from(sorted(EVERY_CODE)))
permission_limits = st.one_of(
    st.none(),
    st.sampled_from(sorted(PRESETS)).map(lambda name: PRESETS[name]),
    st.frozensets(st.sampled_from(sorted(LIMITABLE)), min_size=1),
)
WORKSPACE_NAMES = ("a", "b", "c")
workspace_limits = st.one_of(st.none(), st.frozensets(st.sampled_from(WORKSPACE_NAMES), min_size=1))


def expected(user_codes, permission_limit, workspace_limit, workspace_name) -> frozenset[str]:
    """The oracle: what the token holds, from what its user holds and its limits."""
    if permission_limit is None and workspace_limit is None:
        return frozenset(user_codes)
    allowed = LIMITABLE if permission_limit is None else permission_limit & LIMITABLE
    if workspace_limit is not None and workspace_name not in workspace_limit:
        allowed = allowed - WS
    return frozenset(user_codes) & allowed


def _workspace(name):
    """A stand-in workspace for `narrow`, which reads only its id."""
    return SimpleNamespace(pk=uuid.uuid5(uuid.NAMESPACE_URL, name))


@dataclass(frozen=True)
class Situation:
    """A token's limits and where it acts: as drawn (names) and as `narrow` takes them."""

    permission_limit: frozenset[str] | None
    workspace_limit: frozenset[str] | None
    where: str | None

    @property
    def limits(self) -> TokenLimits:
        workspaces = self.workspace_limit
        ids = tuple(str(_workspace(n).pk) for n in sorted(workspaces)) if workspaces else None
        return TokenLimits(self.permission_limit, ids)

    @property
    def workspace(self):
        return _workspace(self.where) if self.where is not None else None

    def expected(self, user_codes) -> frozenset[str]:
        return expected(user_codes, self.permission_limit, self.workspace_limit, self.where)


situations = st.builds(
    Situation, permission_limits, workspace_limits, st.sampled_from([None, *WORKSPACE_NAMES])
)
PURE = settings(max_examples=500, deadline=None, derandomize=True, database=None)


@PURE
@given(held=codes, grantable=codes, situation=situations)
def test_narrow_is_the_intersection_of_the_user_and_the_limits(held, grantable, situation):
    limits, permission_limit = situation.limits, situation.permission_limit
    access = Access(held, "member", "Editor", "membership", grantable=grantable)
    narrowed = narrow(access, limits, situation.workspace)

    assert narrowed.permissions == situation.expected(held)
    # Never anything the user lacks, nor anything the limits exclude.
    assert narrowed.permissions <= held
    if permission_limit is not None:
        assert narrowed.permissions <= permission_limit
    if limits.narrowed:
        assert not narrowed.permissions & {ORG_MANAGE, ORG_PATS}
        # What it may hand out (roles, keys) is narrowed the same way.
        assert narrowed.grantable <= grantable & (permission_limit or LIMITABLE)
    # What the limits withheld is exactly the rest of the user's, so a 403 can tell.
    assert narrowed.withheld == held - narrowed.permissions
    assert narrowed.role == access.role


@PURE
@given(before=codes, gained=codes, situation=situations)
def test_a_promotion_never_widens_a_token_beyond_its_limits(before, gained, situation):
    limits, workspace = situation.limits, situation.workspace
    low = narrow(Access(before, "member"), limits, workspace).permissions
    high = narrow(Access(before | gained, "member"), limits, workspace).permissions
    assert low <= high <= situation.expected(before | gained)
    if limits.narrowed:
        assert high <= situation.expected(EVERY_CODE)


# On real rows, through authentication, across random role changes.


ORG_ROLES = st.sampled_from(["admin", "member", "viewer"])
WORKSPACE_ROLES = st.sampled_from([None, "Admin", "Editor", "Viewer"])
changes = st.lists(
    st.one_of(
        st.tuples(st.just("org_role"), ORG_ROLES),
        st.tuples(st.just("workspace_role"), st.sampled_from(WORKSPACE_NAMES), WORKSPACE_ROLES),
    ),
    min_size=1,
    max_size=5,
)


def _set_workspace_role(membership, workspace, role_name):
    WorkspaceMembership.objects.filter(org_membership=membership, workspace=workspace).delete()
    if role_name is not None:
        WorkspaceMembership.objects.create(
            org_membership=membership, workspace=workspace, role=system_role(role_name)
        )


@db_examples(30, derandomize=True)
@given(
    permission_limit=permission_limits,
    workspace_limit=workspace_limits,
    org_role=ORG_ROLES,
    initial=st.tuples(WORKSPACE_ROLES, WORKSPACE_ROLES, WORKSPACE_ROLES),
    steps=changes,
)
def test_an_authenticated_token_holds_exactly_its_users_current_access_within_its_limits(
    db, settings, permission_limit, workspace_limit, org_role, initial, steps
):
    settings.AUTHZ_CACHE = True
    with rolled_back():
        org = OrganizationFactory(plan="enterprise")
        workspaces = {n: WorkspaceFactory(organization=org, name=n, slug=n) for n in "abc"}
        user = UserFactory()
        membership = OrganizationMembershipFactory(user=user, organization=org, org_role="member")
        for name, role_name in zip(WORKSPACE_NAMES, initial, strict=True):
            _set_workspace_role(membership, workspaces[name], role_name)
        limited_to = (
            [workspaces[n] for n in sorted(workspace_limit)]
            if workspace_limit is not None
            else None
        )
        # Limits name only workspaces the user can act in when the token is made.
        for workspace in limited_to or ():
            if not WorkspaceMembership.objects.filter(
                org_membership=membership, workspace=workspace
            ).exists():
                _set_workspace_role(membership, workspace, "Viewer")
        raw = create_personal_access_token(
            user=user,
            organization=org,
            name="narrow",
            permissions=permission_limit,
            workspaces=limited_to,
        )[1]
        membership.org_role = org_role
        membership.save(update_fields=["org_role"])

        for step in [None, *steps]:
            if step is not None and step[0] == "org_role":
                membership.org_role = step[1]
                membership.save(update_fields=["org_role"])
            elif step is not None:
                _set_workspace_role(membership, workspaces[step[1]], step[2])
            for name in (None, *WORKSPACE_NAMES):
                tenant = str(workspaces[name].pk) if name else None
                if workspace_limit is not None and name and name not in workspace_limit:
                    with pytest.raises(KeyRejected) as refused:
                        authenticate(raw, tenant)
                    assert refused.value.error == "token_limit"
                    assert refused.value.status == 403
                    continue
                principal = authenticate(raw, tenant)
                where = principal.workspace
                if name is None and where is not None and workspace_limit is not None:
                    assert where.name in workspace_limit  # the default stays inside the limit
                user_access = resolve_access(user, org.pk, where)
                held = principal.access.permissions
                assert held == expected(
                    user_access.permissions,
                    permission_limit,
                    workspace_limit,
                    where.name if where is not None else None,
                )
                assert held <= user_access.permissions
                if permission_limit is not None:
                    assert held <= permission_limit
