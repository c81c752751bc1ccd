import factory
from factory.django import DjangoModelFactory

from accesscontrol.accounts.models import User
from accesscontrol.organizations.models import Organization, OrganizationMembership, Plan
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ORG_ROLE_PERMISSIONS
from accesscontrol.rbac.resolver import Access
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership

PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    plan = Plan.ENTERPRISE


class OrganizationMembershipFactory(DjangoModelFactory):
    class Meta:
        model = OrganizationMembership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    org_role = "member"


class WorkspaceFactory(DjangoModelFactory):
    class Meta:
        model = Workspace

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"ws-{n}")


class RoleFactory(DjangoModelFactory):
    """A custom role; system roles come from the data migration (see `system_role`)."""

    class Meta:
        model = Role

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Custom role {n}")
    permissions = factory.LazyFunction(lambda: ["datasets:read"])


def system_role(name: str) -> Role:
    return Role.objects.system(name)


class WorkspaceMembershipFactory(DjangoModelFactory):
    class Meta:
        model = WorkspaceMembership

    workspace = factory.SubFactory(WorkspaceFactory)
    org_membership = factory.SubFactory(
        OrganizationMembershipFactory,
        organization=factory.SelfAttribute("..workspace.organization"),
    )
    role = factory.LazyFunction(lambda: system_role("Viewer"))


# Actors for service tests: the system, or someone holding exactly the permissions a test names.

SYSTEM = Actor.system("test")


class _FixedActor(Actor):
    def access_in(self, workspace):
        return self.access


def actor_with(permissions, person=None, *, key=None) -> Actor:
    """An actor (the person, or the key) that holds exactly `permissions` wherever it acts."""
    access = Access(frozenset(permissions), "member", None, "test")
    kind = "service_key" if key is not None else "user"
    return _FixedActor(kind, access=access, user=person, key=key)


def actor_of_key(key, workspace=None) -> Actor:
    """The actor a key is when it makes a request (in `workspace`, or its own)."""
    from accesscontrol.apikeys.authentication import (
        Principal,
        _pat_access,
        _pat_workspaces,
        service_key_access,
        service_key_org_permissions,
    )

    if key.audit_kind == "service_key":
        workspace = workspace or key.workspace
        access = (
            service_key_access(key, workspace)
            if workspace is not None
            else Access(service_key_org_permissions(key), None, key.role.name, "key_role")
        )
        kind, organization = "service_key", key.organization
    else:
        organization = key.org_membership.organization
        row = _pat_workspaces(key).filter(pk=workspace.pk).first() if workspace else None
        access = (
            _pat_access(key, row)
            if row is not None
            else Access(
                ORG_ROLE_PERMISSIONS[key.org_membership.org_role], key.org_membership.org_role
            )
        )
        kind = "personal_access_token"
    return Actor.for_principal(Principal(kind, key, organization, workspace, access))
