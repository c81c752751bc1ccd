"""The benchmark's data: principals made through the project's services, bulk rows through COPY.

Principals that are measured (an organization, a workspace, a member with a role, a personal
access token, a service key) are made by the same services the console and API use. The rows
that only make the database big (members, keys, roles, audit events, datasets by the thousand)
go in with PostgreSQL's COPY, which is what makes 100,000 of each take seconds.
"""

import datetime
import hashlib
import itertools
import json
import uuid

from django.db import connection
from django.db.models import AutoField, BigAutoField
from django.utils import timezone

from accesscontrol.accounts.models import User
from accesscontrol.apikeys import services as key_services
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations import services as org_services
from accesscontrol.organizations.models import OrganizationMembership, Plan
from accesscontrol.rbac import services as role_services
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import READ_PERMISSIONS
from accesscontrol.resources.models import Dataset
from accesscontrol.workspaces import services as workspace_services
from accesscontrol.workspaces.models import WorkspaceMembership


class Tenant:
    """An enterprise organization with one workspace, its admin, and one member in it."""

    def __init__(self, slug, member_role="Editor", custom_role=False):
        self.admin = new_user(f"admin@{slug}.bench")
        self.org = org_services.create_organization(
            creator=self.admin, name=slug, slug=slug, plan=Plan.ENTERPRISE
        )
        self.workspace = workspace_services.create_workspace(
            actor=self.admin, organization=self.org, name="main", slug="main"
        )
        if custom_role:
            self.role = role_services.create_role(
                actor=self.admin,
                organization=self.org,
                name="Bench annotator",
                permissions=sorted(READ_PERMISSIONS | {"feedback:create"}),
            )
        else:
            self.role = Role.objects.system(member_role)
        self.member = new_user(f"member@{slug}.bench")
        org_services.add_org_member(actor=self.admin, organization=self.org, user=self.member)
        workspace_services.add_workspace_member(
            actor=self.admin, workspace=self.workspace, user=self.member, role=self.role
        )

    def personal_token(self) -> str:
        return key_services.create_personal_access_token(
            user=self.member, organization=self.org, name="bench token"
        )[1]

    def service_key(self, role_name="Editor") -> str:
        return key_services.create_service_key(
            actor=Actor.system("bench"),
            organization=self.org,
            workspace=self.workspace,
            name=f"bench {role_name.lower()} key",
            role=Role.objects.system(role_name),
        )[1]


def new_user(email):
    return User.objects.create_user(email, None)  # no password: no slow hasher, force_login only


def drf_api_key() -> str:
    from rest_framework_api_key.models import APIKey

    return APIKey.objects.create_key(name="bench")[1]


# Bulk rows


def copy_rows(model, rows, **same) -> int:
    """COPY `rows` into `model`: each row a dict of field name to value (every row the same
    names, in the same order), and `same` the fields whose value is the same in every row.

    Refuses to run if the model has a required column the caller does not fill: a model that
    grew a column must be taught here rather than fail inside PostgreSQL.
    """
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    columns = [model._meta.get_field(name).column for name in [*first, *same]]
    required = {
        f.column
        for f in model._meta.concrete_fields
        if not f.null and not f.has_db_default() and not isinstance(f, AutoField | BigAutoField)
    }
    missing = required - set(columns)
    if missing:
        raise SystemExit(
            f"bench: {model.__name__} has required columns bench/data.py does not fill: "
            f"{sorted(missing)}"
        )
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    constant = tuple(same.values())
    count = 0
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in itertools.chain([first], rows):
            copy.write_row((*row.values(), *constant))
            count += 1
    return count


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def add_members(org, workspace, count, prefix, roles):
    """`count` users, each an org member and a member of `workspace` with one of `roles`.

    Returns the new org memberships' ids (for personal access tokens)."""
    now = timezone.now()
    emails = [f"{prefix}-{i}@fill.bench" for i in range(count)]
    copy_rows(
        User,
        ({"email": email, "full_name": f"Filler {i}"} for i, email in enumerate(emails)),
        password="!",
        is_superuser=False,
        is_active=True,
        is_staff=False,
        date_joined=now,
    )
    user_ids = dict(
        User.objects.filter(email__startswith=f"{prefix}-", email__endswith="@fill.bench")
        .values_list("email", "id")
        .iterator(chunk_size=10_000)
    )
    membership_ids = [uuid.uuid4() for _ in emails]
    copy_rows(
        OrganizationMembership,
        (
            {"id": mid, "user": user_ids[email]}
            for mid, email in zip(membership_ids, emails, strict=True)
        ),
        organization=org.pk,
        org_role="member",
        created_at=now,
        source="manual",
    )
    copy_rows(
        WorkspaceMembership,
        (
            {"id": uuid.uuid4(), "org_membership": mid, "role": roles[i % len(roles)]}
            for i, mid in enumerate(membership_ids)
        ),
        workspace=workspace.pk,
        created_at=now,
        source="manual",
    )
    return membership_ids


def add_roles(org, count, prefix) -> list:
    ids = [uuid.uuid4() for _ in range(count)]
    copy_rows(
        Role,
        ({"id": rid, "name": f"{prefix} role {i}"} for i, rid in enumerate(ids)),
        organization=org.pk,
        description="",
        permissions=json.dumps(["datasets:read"]),
        created_at=timezone.now(),
    )
    return ids


# A key's revocation reason and leak report (apikeys/leaks.py): empty for keys never revoked.
NOT_REPORTED = dict.fromkeys(("revoked_reason", "leak_reported_by", "leak_url", "leak_source"), "")


def add_service_keys(org, workspace, count, prefix, role_id) -> None:
    copy_rows(
        ServiceKey,
        (
            {"id": uuid.uuid4(), "name": f"{prefix} key {i}", "digest": _digest(f"{prefix}-sk-{i}")}
            for i in range(count)
        ),
        hint="lsv2_sk_…fill",
        created_at=timezone.now(),
        organization=org.pk,
        workspace=workspace.pk,
        role=role_id,
        created_by_label="bench",
        legacy=False,
        ip_allow_list="[]",
        **NOT_REPORTED,
    )


def add_personal_tokens(membership_ids, prefix) -> None:
    copy_rows(
        PersonalAccessToken,
        (
            {"id": uuid.uuid4(), "digest": _digest(f"{prefix}-pt-{i}"), "org_membership": mid}
            for i, mid in enumerate(membership_ids)
        ),
        name="filler token",
        hint="lsv2_pt_…fill",
        created_at=timezone.now(),
        **NOT_REPORTED,
    )


def add_audit_events(org, workspace, count) -> None:
    """`count` events of a member added by the system, one a second back from now."""
    now = timezone.now()
    copy_rows(
        AuditEvent,
        (
            {
                "created_at": now - datetime.timedelta(seconds=i),
                "target_id": str(uuid.uuid4()),
                "target_label": f"filler-{i}@fill.bench",
            }
            for i in range(count)
        ),
        organization=org.pk,
        workspace=workspace.pk,
        actor_kind="system",
        actor_id="",
        actor_label="system",
        action="workspace_member.added",
        target_type="workspacemembership",
        changes=json.dumps({"after": {"role": "Viewer"}}),
        user_agent="",
        request_id="",
    )


def add_datasets(workspace, count) -> None:
    now = timezone.now()
    copy_rows(
        Dataset,
        ({"id": uuid.uuid4(), "name": f"dataset {i}"} for i in range(count)),
        workspace=workspace.pk,
        description="filler",
        data_type="kv",
        created_at=now,
        modified_at=now,
    )


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def remove_members_keys_roles(prefix) -> None:
    """Delete what add_members, add_personal_tokens, add_service_keys and add_roles made under
    `prefix`, then VACUUM ANALYZE: the database is back to its earlier size."""

    def table(model):
        return connection.ops.quote_name(model._meta.db_table)

    # Table names come from the models; the only values (the patterns) are parameters.
    users = f"SELECT id FROM {table(User)} WHERE email LIKE %s"  # noqa: S608
    memberships = f"SELECT id FROM {table(OrganizationMembership)} WHERE user_id IN ({users})"  # noqa: S608
    emails = f"{prefix}-%@fill.bench"
    deletes = [
        (PersonalAccessToken, f"org_membership_id IN ({memberships})", emails),
        (WorkspaceMembership, f"org_membership_id IN ({memberships})", emails),
        (OrganizationMembership, f"user_id IN ({users})", emails),
        (User, "email LIKE %s", emails),
        (ServiceKey, "name LIKE %s", f"{prefix} key %"),
        (Role, "name LIKE %s", f"{prefix} role %"),
    ]
    with connection.cursor() as cursor:
        for model, condition, pattern in deletes:
            cursor.execute(f"DELETE FROM {table(model)} WHERE {condition}", [pattern])  # noqa: S608
        cursor.execute("VACUUM ANALYZE")


# Runs for the run filter section: generated inside PostgreSQL (INSERT ... SELECT over
# generate_series), so a million rows cost no Python and no network round trip per row.

RUNS_SQL = """
INSERT INTO resources_run (
    id, workspace_id, project_id, trace_id, parent_run_id, dotted_order, name, run_type,
    inputs, outputs, error, start_time, end_time, tags, extra, events, created_at,
    prompt_tokens, completion_tokens, total_tokens
)
SELECT
    CASE WHEN k = 0 THEN root ELSE md5(%(salt)s || g || '-' || k)::uuid END,
    %(workspace)s,
    (%(projects)s::uuid[])[1 + g %% cardinality(%(projects)s::uuid[])],
    root,
    CASE WHEN k = 0 THEN NULL ELSE root END,
    '',
    (ARRAY['agent', 'ChatModel', 'search', 'retriever'])[k + 1],
    (ARRAY['chain', 'llm', 'tool', 'retriever'])[k + 1],
    jsonb_build_object('question', 'question number ' || g),
    jsonb_build_object('answer', 'answer number ' || g),
    CASE WHEN k = 2 AND g %% 50 = 0 THEN 'ToolError: the search timed out' END,
    started,
    started + CASE WHEN k = 1 THEN (g * 7919 %% 20000) ELSE (g * 31 %% 3000) END
        * interval '1 millisecond',
    CASE WHEN k = 0 AND g %% 10 = 0 THEN '["beta"]'::jsonb
         WHEN k = 0 THEN '["prod"]'::jsonb ELSE '[]'::jsonb END,
    jsonb_build_object('metadata', jsonb_build_object(
        'user', 'u' || (g %% 20000), 'env', CASE WHEN g %% 10 = 0 THEN 'beta' ELSE 'prod' END
    )),
    '[]'::jsonb,
    now(),
    CASE WHEN k = 1 THEN g %% 3000 END,
    CASE WHEN k = 1 THEN g %% 500 END,
    CASE WHEN k = 1 THEN g %% 3000 + g %% 500 END
FROM generate_series(%(first)s, %(last)s) AS g
CROSS JOIN generate_series(0, 3) AS k
CROSS JOIN LATERAL (
    SELECT md5(%(salt)s || g)::uuid AS root,
           %(t0)s::timestamptz + g * interval '1 second' + k * interval '10 milliseconds'
               AS started
) AS made
"""

FEEDBACK_SQL = """
INSERT INTO resources_feedback (
    id, workspace_id, run_id, trace_id, key, score, comment, feedback_source, created_at,
    modified_at
)
SELECT md5('feedback' || %(salt)s || g)::uuid, %(workspace)s, md5(%(salt)s || g)::uuid,
       md5(%(salt)s || g)::uuid, 'correctness', (g / 20 %% 100) / 100.0, '', '{}', now(), now()
FROM generate_series(%(first)s, %(last)s) AS g
WHERE g %% 20 = 0
"""

RUNS_PER_TRACE = 4


def add_traces(workspace, project_ids, traces, *, salt="bench", chunk=50_000, say=print) -> int:
    """`traces` traces of four runs each (an agent chain calling an LLM, a tool and a retriever)
    in `workspace`, spread over `project_ids`, one per second from 2030-01-01; the metadata user
    is one of 20,000; 1 trace in 10 is tagged beta, the rest prod; 1 tool call in 50 fails;
    1 trace in 20 has correctness feedback on its root. Returns the number of runs."""
    params = {
        "workspace": workspace.pk,
        "projects": [str(p) for p in project_ids],
        "salt": salt,
        "t0": "2030-01-01T00:00:00Z",
    }
    with connection.cursor() as cursor:
        for first in range(1, traces + 1, chunk):
            last = min(traces, first + chunk - 1)
            cursor.execute(RUNS_SQL, {**params, "first": first, "last": last})
            cursor.execute(FEEDBACK_SQL, {**params, "first": first, "last": last})
            say(f"  runs: {last * RUNS_PER_TRACE:,} of {traces * RUNS_PER_TRACE:,}")
    return traces * RUNS_PER_TRACE
