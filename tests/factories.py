import factory
from factory.django import DjangoModelFactory

from accesscontrol.accounts.models import User
from accesscontrol.organizations.models import Organization, OrganizationMembership, Plan
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.models import Role
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


# Who arranges a test's resources: the system, so a fixture never depends on a persona's role.
SETUP = Actor.system("test setup")
