import uuid
from dataclasses import dataclass

import factory
from django.db import transaction
from factory.django import DjangoModelFactory

from accesscontrol.accounts.models import User
from accesscontrol.apikeys import keys
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


# The personas every test shares (tests/conftest.py puts them in the database once).

ANNOTATOR_CODES = [
    "projects:read",
    "runs:read",
    "datasets:read",
    "prompts:read",
    "annotation-queues:read",
    "feedback:read",
    "workspaces:read",
    "feedback:create",
    "feedback:update",
    "annotation-queues:create",
    "annotation-queues:update",
]


@dataclass
class World:
    org: Organization
    workspace: Workspace
    other_workspace: Workspace
    org_admin: User
    workspace_admin: User
    editor: User
    viewer: User
    annotator: User
    member_without_workspace: User
    org_viewer: User
    outsider: User
    other_org: Organization
    other_workspace_of_other_org: Workspace

    def persona(self, name: str) -> User:
        return getattr(self, name)


def add_member(org, workspace=None, role=None, org_role="member"):
    user = UserFactory()
    membership = OrganizationMembershipFactory(user=user, organization=org, org_role=org_role)
    if workspace is not None:
        WorkspaceMembershipFactory(org_membership=membership, workspace=workspace, role=role)
    return user


def build_world() -> World:
    """The personas, made by the factories (one query or two per row)."""
    org = OrganizationFactory(name="Acme", slug="acme", plan="enterprise")
    workspace = WorkspaceFactory(organization=org, name="production", slug="production")
    other_workspace = WorkspaceFactory(organization=org, name="staging", slug="staging")
    annotator_role = RoleFactory(organization=org, name="Annotator", permissions=ANNOTATOR_CODES)
    other_org = OrganizationFactory(name="Globex", slug="globex", plan="enterprise")
    other_ws = WorkspaceFactory(organization=other_org, name="default", slug="default")
    return World(
        org=org,
        workspace=workspace,
        other_workspace=other_workspace,
        org_admin=add_member(org, org_role="admin"),
        workspace_admin=add_member(org, workspace, system_role("Admin")),
        editor=add_member(org, workspace, system_role("Editor")),
        viewer=add_member(org, workspace, system_role("Viewer")),
        annotator=add_member(org, workspace, annotator_role),
        member_without_workspace=add_member(org),
        org_viewer=add_member(org, workspace, system_role("Editor"), org_role="viewer"),
        outsider=add_member(other_org, other_ws, system_role("Admin"), org_role="admin"),
        other_org=other_org,
        other_workspace_of_other_org=other_ws,
    )


PERSONAS = (
    "org_admin",
    "workspace_admin",
    "editor",
    "viewer",
    "annotator",
    "org_viewer",
    "member_without_workspace",
    "outsider",
)


def persona_statuses(*allowed) -> list[tuple[str, int]]:
    """(persona, status) for every persona: 200 for the `allowed`, 404 for the outsider (another
    organization's: not told the page exists), 403 for the rest."""
    return [(p, 200 if p in allowed else 404 if p == "outsider" else 403) for p in PERSONAS]


# API keys for the personas. Each returns the raw key, as a caller would hold it.


def pat_for(user, org, **kwargs) -> str:
    from accesscontrol.apikeys.services import create_personal_access_token

    return create_personal_access_token(user=user, organization=org, name="test token", **kwargs)[1]


def service_key_for(workspace, role_name="Admin", *, org_scoped=False, **kwargs) -> str:
    """A service key made by the system (no creator), so any role can be handed out."""
    from django.db.models import Q

    from accesscontrol.apikeys.services import create_service_key
    from accesscontrol.rbac.actor import Actor
    from accesscontrol.rbac.models import Role

    org = workspace.organization
    # Q(...) | Q(...), not organization__in=[None, org]: SQL IN never matches NULL.
    role = Role.objects.get(Q(organization=None) | Q(organization=org), name=role_name)
    return create_service_key(
        actor=Actor.system(),
        organization=org,
        workspace=None if org_scoped else workspace,
        name=f"{role_name} key",
        role=role,
        **kwargs,
    )[1]


def unknown_key() -> str:
    """Well-formed, right checksum, in no database: a guess."""
    return keys.generate(keys.SERVICE)


def secret_of(raw: str) -> str:
    """The secret part of a raw key (either format)."""
    return raw.split("_")[2] if raw.startswith("lsv2_") else raw[len("ls__") :]


def oidc_sso(world, *, issuer="https://idp.example.test", client_id="acme", **settings):
    """Acme's single sign-on through OpenID Connect, saved (created or replaced) by its org
    admin; `settings` as save_sso takes them. Without `oidc_client_secret` a re-save keeps the
    stored secret."""
    from accesscontrol.sso.services import save_sso

    return save_sso(
        actor=world.org_admin,
        organization=world.org,
        protocol="oidc",
        oidc_issuer=issuer,
        oidc_client_id=client_id,
        **settings,
    )


def require_sso(world, sso, required=True):
    """`sso` saved again with just-in-time provisioning and "require SSO" on (or off): members
    sign in through the identity provider, the org admin is the break-glass admin."""
    return oidc_sso(
        world,
        issuer=sso.oidc_issuer,
        client_id=sso.oidc_client_id,
        jit_provisioning=True,
        require_sso=required,
        break_glass_user=world.org_admin,
    )


def make_people_manager(world, user):
    """Gives `user` a custom role in production that manages members but holds only
    datasets:read, so it cannot grant a stronger role (Admin, or one with datasets:create)."""
    from accesscontrol.rbac.services import create_role

    managers = create_role(
        actor=world.org_admin,
        organization=world.org,
        name="People managers",
        permissions=["workspaces:read", "workspaces:manage-members", "datasets:read"],
    )
    WorkspaceMembership.objects.filter(org_membership__user=user, workspace=world.workspace).update(
        role=managers
    )


# Resources.


def run_and_example(workspace):
    """A run, ingested the way the API ingests one, and an example of a new dataset."""
    from accesscontrol.resources import services
    from accesscontrol.resources.models import Dataset, Example, Project, Run

    project = Project.objects.create(workspace=workspace, name="p")
    run_id = uuid.uuid4()
    post = {"id": run_id, "session_id": project.pk, "name": "r", "run_type": "chain"}
    services.ingest_runs(actor=SYSTEM, workspace=workspace, posts=[post])
    dataset = Dataset.objects.create(workspace=workspace, name="d")
    example = Example.objects.create(workspace=workspace, dataset=dataset, inputs={})
    return Run.objects.get(pk=run_id), example


def langchain_prompt(kind, **kwargs):
    """A LangChain prompt object serialized as the SDK pushes one to the prompt hub: `kind` is
    its class under langchain.prompts ("prompt.PromptTemplate"), `kwargs` its arguments."""
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "prompts", *kind.split(".")],
        "kwargs": kwargs,
    }


# A prompt template, the hub's commonest manifest.
PROMPT_MANIFEST = langchain_prompt(
    "prompt.PromptTemplate",
    input_variables=["question"],
    template="Answer briefly: {question}",
    template_format="f-string",
)


def ingested_run(workspace):
    """One run named "answer" in a new project "bot", ingested the way the API ingests one."""
    from accesscontrol.resources import services
    from accesscontrol.resources.models import Run

    project = services.create_project(actor=SYSTEM, workspace=workspace, name="bot")
    run_id = uuid.uuid4()
    post = {"id": run_id, "session_id": project.pk, "name": "answer", "run_type": "chain"}
    services.ingest_runs(actor=SYSTEM, workspace=workspace, posts=[post])
    return Run.objects.get(pk=run_id)


# Audit rows, recorded the way a service records them.


def campaign_of_people(actor, organization, people: int, **item):
    """A review of the whole organization with `people` made-up members to decide on (labelled
    person000@example.test ...), for pages that must page them."""
    from django.utils import timezone

    from accesscontrol.reviews import services as reviews
    from accesscontrol.reviews.models import Item

    campaign = reviews.start_campaign(
        actor=actor,
        organization=organization,
        name="Everyone",
        deadline=timezone.now() + timezone.timedelta(days=7),
    )
    Item.objects.bulk_create(
        Item(
            campaign=campaign,
            kind=Item.ORG_MEMBER,
            subject_id=uuid.uuid4(),
            label=f"person{i:03}@example.test",
            **{name: value(i) for name, value in item.items()},
        )
        for i in range(people)
    )
    return campaign


def audit_event(world, action="workspace.created", **kwargs):
    """One audit row by the org admin about 'production' (its own transaction, as audit needs)."""
    from accesscontrol.audit import services as audit

    with transaction.atomic():
        return audit.record(
            world.org_admin, action, world.workspace, workspace=world.workspace, **kwargs
        )


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


# API callers for the personas, and what each should be able to do in Acme's 'production'.
# The permission model is written from first principles (ARCHITECTURE §5), not imported from the
# code, so tests hold the code to it.

CATALOG = {
    "projects": ["read", "create", "update", "delete"],
    "runs": ["read", "create", "delete", "share"],
    "datasets": ["read", "create", "update", "delete", "share"],
    "prompts": ["read", "create", "update", "delete", "share"],
    "annotation-queues": ["read", "create", "update", "delete"],
    "feedback": ["read", "create", "update", "delete"],
    "workspaces": ["read", "manage", "manage-members"],
}
WS = frozenset(f"{resource}:{action}" for resource, acts in CATALOG.items() for action in acts)
READ = frozenset(code for code in WS if code.endswith(":read"))
EDITOR = frozenset(code for code in WS if not code.startswith("workspaces:manage"))
ANNOTATOR = frozenset(ANNOTATOR_CODES)
ORG_READ, ORG_MANAGE, ORG_PATS = (
    "organization:read",
    "organization:manage",
    "organization:pats:create",
)
ORG_ADMIN_CODES = frozenset({ORG_READ, ORG_MANAGE, ORG_PATS})
ORG_MEMBER_CODES = frozenset({ORG_READ, ORG_PATS})
ORG_VIEWER_CODES = frozenset({ORG_READ})


@dataclass(frozen=True)
class PrincipalSpec:
    """One caller and what it should be able to do, in the workspace 'production' of Acme."""

    name: str
    kind: str  # pat | sk | sk_org
    perms: frozenset[str]
    role: str | None
    persona: str | None = None  # PATs: whose token
    key_role: str | None = None  # service keys: the role given to the key
    tenant: bool = False  # send X-Tenant-Id: production
    has_workspace: bool = True
    # Permissions in 'production' when it is addressed by path (/workspaces/{id}); differs from
    # `perms` only for an org-scoped key that selected no workspace.
    perms_in_production: frozenset[str] | None = None

    @property
    def is_service_key(self):
        return self.kind != "pat"

    def perms_for(self, endpoint) -> frozenset[str]:
        if endpoint.workspace_param and self.perms_in_production is not None:
            return self.perms_in_production
        return self.perms


PRINCIPALS = [
    # PATs act with the user's permissions in their default workspace: 'production' for all of
    # them (the org admin's is the first by name; the others are members of 'production' only).
    PrincipalSpec("pat:org_admin", "pat", WS | ORG_ADMIN_CODES, "Admin", persona="org_admin"),
    PrincipalSpec(
        "pat:workspace_admin", "pat", WS | ORG_MEMBER_CODES, "Admin", persona="workspace_admin"
    ),
    PrincipalSpec("pat:editor", "pat", EDITOR | ORG_MEMBER_CODES, "Editor", persona="editor"),
    PrincipalSpec("pat:viewer", "pat", READ | ORG_MEMBER_CODES, "Viewer", persona="viewer"),
    PrincipalSpec(
        "pat:annotator", "pat", ANNOTATOR | ORG_MEMBER_CODES, "Annotator", persona="annotator"
    ),
    # An org viewer who is Editor in 'production' is read-only there, and cannot make PATs.
    PrincipalSpec("pat:org_viewer", "pat", READ | ORG_VIEWER_CODES, "Editor", persona="org_viewer"),
    PrincipalSpec("sk:Admin", "sk", WS | {ORG_READ}, "Admin", key_role="Admin"),
    PrincipalSpec("sk:Editor", "sk", EDITOR | {ORG_READ}, "Editor", key_role="Editor"),
    PrincipalSpec("sk:Viewer", "sk", READ | {ORG_READ}, "Viewer", key_role="Viewer"),
    PrincipalSpec("sk:Annotator", "sk", ANNOTATOR | {ORG_READ}, "Annotator", key_role="Annotator"),
    PrincipalSpec(
        "sk_org:Admin+tenant",
        "sk_org",
        WS | {ORG_READ, ORG_MANAGE},
        "Admin",
        key_role="Admin",
        tenant=True,
    ),
    PrincipalSpec(
        "sk_org:Admin-no-tenant",
        "sk_org",
        frozenset({ORG_READ, ORG_MANAGE}),
        "Admin",
        key_role="Admin",
        has_workspace=False,
        perms_in_production=WS | {ORG_READ, ORG_MANAGE},
    ),
]


@dataclass
class Caller:
    spec: PrincipalSpec
    key: str
    tenant: uuid.UUID | None
    label: str
    user: object | None


def as_member(user, org, make):
    """Run `make()`; an org viewer is briefly a member, as if demoted after making a token."""
    membership = OrganizationMembership.objects.get(user=user, organization=org)
    if membership.org_role != "viewer":
        return make()
    OrganizationMembership.objects.filter(pk=membership.pk).update(org_role="member")
    try:
        return make()
    finally:
        OrganizationMembership.objects.filter(pk=membership.pk).update(org_role="viewer")


def pat_of(user, org) -> str:
    return as_member(user, org, lambda: pat_for(user, org))


def make_caller(world, spec: PrincipalSpec) -> Caller:
    if spec.kind == "pat":
        user = world.persona(spec.persona)
        key = pat_of(user, world.org)
        label = f"personal access token 'test token' of {user.email}"
        return Caller(spec, key, None, label, user)
    key = service_key_for(world.workspace, spec.key_role, org_scoped=spec.kind == "sk_org")
    tenant = world.workspace.pk if spec.tenant else None
    return Caller(spec, key, tenant, f"service key '{spec.key_role} key'", None)
