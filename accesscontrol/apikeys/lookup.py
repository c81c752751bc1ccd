"""The cold path of key authentication: one SQL statement per key, whatever its kind.

A service key is read with its organization, its role and the workspace it acts in (its own, or
the one X-Tenant-Id selects); a personal access token with its membership, user, organization,
the selected workspace (X-Tenant-Id, or the default one within the token's workspace limit) and
the user's role there; the token's limits are columns of its row. The statements are written
once per database vendor from the models' columns, so no request pays for ORM query
compilation; rows come back as tuples, go through the same converters the ORM would apply, and
are cut into model instances (the rest of the request works with models).
"""

import functools

from django.db import connection
from django.db.models import DateTimeField, UUIDField
from django.utils import timezone

from accesscontrol.accounts.models import User
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ADMIN_EVERYWHERE_ROLES
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership

_UUID = UUIDField()
_DATETIME = DateTimeField()


class _Select:
    """The columns of some models under table aliases, and how to turn a row back into them."""

    def __init__(self, vendor_connection, only=None, **models):
        """`models`: alias=Model, every column; `only`: {alias: fields} for fewer."""
        self.parts, self.columns, self.converters, self.tables = [], [], [], {}
        qn = vendor_connection.ops.quote_name
        for alias, model in models.items():
            self.tables[alias] = qn(model._meta.db_table)
            fields = (only or {}).get(alias) or model._meta.concrete_fields
            start = len(self.columns)
            for field in fields:
                self.columns.append(f"{alias}.{qn(field.column)}")
                col = field.get_col(alias)
                convs = vendor_connection.ops.get_db_converters(col) + col.get_db_converters(
                    vendor_connection
                )
                if convs:
                    self.converters.append((len(self.columns) - 1, convs, col))
            self.parts.append((model, slice(start, len(self.columns)), fields))

    def sql(self) -> str:
        return ", ".join(self.columns)

    def cut(self, row):
        """The row as one tuple of values per part, converted as the ORM would."""
        row = list(row)
        for position, convs, col in self.converters:
            value = row[position]
            for convert in convs:
                value = convert(value, col, connection)
            row[position] = value
        return [row[where] for _, where, _ in self.parts]


def _instance(model, values, db):
    return model.from_db(db, None, values) if values[0] is not None else None


@functools.cache
def _service_key_statement(vendor):
    select = _Select(connection, k=ServiceKey, o=Organization, w=Workspace, r=Role)
    t = select.tables
    # A workspace key acts in its own workspace; an organization key in the one X-Tenant-Id
    # selects, if it belongs to the key's organization.
    sql = (
        f"SELECT {select.sql()} FROM {t['k']} k "  # noqa: S608 (names from the models only)
        f"INNER JOIN {t['o']} o ON o.id = k.organization_id "
        f"LEFT OUTER JOIN {t['w']} w ON w.id = COALESCE(k.workspace_id, %s) "
        "AND w.organization_id = k.organization_id "
        f"LEFT OUTER JOIN {t['r']} r ON r.id = k.role_id "
        "WHERE k.digest = %s AND k.legacy = %s LIMIT 2"
    )
    return sql, select


# "The token's workspace limit holds the workspace `{column}`", as each supported database says
# it (the limit is a JSON list of workspace ids; SQLite stores UUIDs as 32 hex digits).
_IN_WORKSPACE_LIMIT = {
    "postgresql": "t.workspace_limit @> jsonb_build_array({column})",
    "sqlite": "EXISTS (SELECT 1 FROM json_each(t.workspace_limit) l "
    "WHERE replace(l.value, '-', '') = {column})",
}


@functools.cache
def _token_statement(vendor):
    role = [Role._meta.get_field(name) for name in ("name", "organization", "permissions")]
    select = _Select(
        connection,
        only={
            "r": role,
            "ra": role,
            "wm": [WorkspaceMembership._meta.get_field(f) for f in ("created_at", "expires_at")],
        },
        t=PersonalAccessToken,
        m=OrganizationMembership,
        u=User,
        o=Organization,
        w=Workspace,
        r=Role,
        wm=WorkspaceMembership,
        ra=Role,  # the role a temporary upgrade falls back to at its expiry
    )
    t = select.tables
    admins = ", ".join("%s" for _ in ADMIN_EVERYWHERE_ROLES) or "NULL"
    # Without X-Tenant-Id: the default workspace, the first one joined that is not archived
    # (any, for the organization's admins) and within the token's workspace limit, if it has
    # one, as authentication.py documents.
    in_limit = _IN_WORKSPACE_LIMIT[vendor].format(column="d.id")
    default_workspace = (
        f"SELECT d.id FROM {t['w']} d "  # noqa: S608 (names from the models only)
        f"LEFT OUTER JOIN {t['wm']} dm ON dm.workspace_id = d.id AND dm.org_membership_id = m.id "
        "WHERE d.organization_id = m.organization_id AND NOT d.archived "
        f"AND ((dm.id IS NOT NULL AND (dm.expires_at IS NULL OR dm.expires_at > %s "
        "OR dm.role_after_expiry_id IS NOT NULL)) "
        f"OR m.org_role IN ({admins})) "
        f"AND (t.workspace_limit IS NULL OR {in_limit}) "
        "ORDER BY dm.created_at ASC NULLS LAST, d.name ASC LIMIT 1"
    )
    sql = (
        f"SELECT {select.sql()} FROM {t['t']} t "  # noqa: S608 (names from the models only)
        f"INNER JOIN {t['m']} m ON m.id = t.org_membership_id "
        f"INNER JOIN {t['u']} u ON u.id = m.user_id "
        f"INNER JOIN {t['o']} o ON o.id = m.organization_id "
        f"LEFT OUTER JOIN {t['w']} w ON w.organization_id = m.organization_id "
        f"AND w.id = COALESCE(%s, ({default_workspace})) "
        f"LEFT OUTER JOIN {t['wm']} wm ON wm.workspace_id = w.id AND wm.org_membership_id = m.id "
        f"LEFT OUTER JOIN {t['r']} r ON r.id = wm.role_id "
        f"LEFT OUTER JOIN {t['r']} ra ON ra.id = wm.role_after_expiry_id "
        "WHERE t.digest = %s LIMIT 2"
    )
    return sql, select


def _one_row(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchmany(2)
    return rows[0] if len(rows) == 1 else None


def service_key(digest, tenant_id, legacy):
    """The key with .organization, .role and .workspace set (the workspace it acts in, if any:
    None when an organization key selected none or one outside its organization)."""
    sql, select = _service_key_statement(connection.vendor)
    row = _one_row(sql, [_UUID.get_db_prep_value(tenant_id, connection), digest, legacy])
    if row is None:
        return None, None
    db = connection.alias
    key_values, org_values, ws_values, role_values = select.cut(row)
    key = ServiceKey.from_db(db, None, key_values)
    key.organization = Organization.from_db(db, None, org_values)
    key.role = _instance(Role, role_values, db)
    workspace = _instance(Workspace, ws_values, db)
    if key.workspace_id is not None:
        key.workspace = workspace
    return key, workspace


def personal_access_token(digest, tenant_id):
    """The token with .org_membership (and its .user and .organization) set, and the workspace
    it acts in with the user's role there (role_name, role_org_id, role_codes, joined_at), as
    authentication._pat_workspaces annotates it; the workspace is None if there is none."""
    sql, select = _token_statement(connection.vendor)
    tenant = _UUID.get_db_prep_value(tenant_id, connection)
    now = _DATETIME.get_db_prep_value(timezone.now(), connection)
    row = _one_row(sql, [tenant, now, *ADMIN_EVERYWHERE_ROLES, digest])
    if row is None:
        return None, None
    db = connection.alias
    token_values, m_values, user_values, org_values, ws_values, role_values, joined, after = (
        select.cut(row)
    )
    token = PersonalAccessToken.from_db(db, None, token_values)
    membership = OrganizationMembership.from_db(db, None, m_values)
    membership.user = User.from_db(db, None, user_values)
    membership.organization = Organization.from_db(db, None, org_values)
    token.org_membership = membership
    workspace = _instance(Workspace, ws_values, db)
    if workspace is not None:
        workspace.role_name, workspace.role_org_id, workspace.role_codes = role_values
        workspace.joined_at, workspace.grant_expires_at = joined
        workspace.after_role_name, workspace.after_role_org_id, workspace.after_role_codes = after
    return token, workspace
