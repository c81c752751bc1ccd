"""SCIM fixtures: an organization's SCIM token, a real SCIM client (scim2-client over httpx2)
pointed at a live server, and raw requests for the refusals a well-behaved client never sends."""

import json

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient

from accesscontrol.scim import services

SCIM_JSON = "application/scim+json"


@pytest.fixture
def scim_token(world) -> str:
    """acme's SCIM token, issued by its org admin."""
    return services.issue_token(actor=world.org_admin, organization=world.org)[1]


@pytest.fixture
def globex_token(world) -> str:
    """The other organization's SCIM token."""
    return services.issue_token(actor=world.outsider, organization=world.other_org)[1]


@pytest.fixture
def scim_client(live_server, scim_token):
    """A SCIM client as an identity provider runs one, discovering the server first."""
    http = httpx2.Client(
        base_url=f"{live_server.url}/scim/v2",
        headers={"Authorization": f"Bearer {scim_token}"},
        timeout=15,
    )
    client = SyncSCIMClient(http)
    client.discover()
    yield client
    http.close()


class Scim:
    """Requests to /scim/v2/ through Django's test client, with a token (or none)."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def __call__(self, method, path, body=None, *, token=..., raw=None, **headers):
        token = self.token if token is ... else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs = {"headers": headers}
        if method.upper() != "GET" and (raw is not None or body is not None):
            kwargs.update(data=raw if raw is not None else json.dumps(body), content_type=SCIM_JSON)
        return getattr(self.client, method.lower())(f"/scim/v2/{path}", **kwargs)


@pytest.fixture
def scim(client, scim_token):
    return Scim(client, scim_token)


def user_body(user_name, **extra):
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
        **extra,
    }


def group_body(name, *member_ids):
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": [{"value": str(i)} for i in member_ids],
    }


def patch_body(*operations):
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}


def snapshot():
    """What a refused request must leave as it was: the rows SCIM can touch, with their values."""
    from accesscontrol.accounts.models import User
    from accesscontrol.apikeys.models import PersonalAccessToken
    from accesscontrol.audit.models import AuditEvent
    from accesscontrol.organizations.models import OrganizationMembership
    from accesscontrol.scim.models import GroupMapping, ScimGroup, ScimUser
    from accesscontrol.workspaces.models import WorkspaceMembership

    models = (
        User,
        OrganizationMembership,
        WorkspaceMembership,
        PersonalAccessToken,
        ScimUser,
        ScimGroup,
        GroupMapping,
        AuditEvent,
    )
    return {
        model.__name__: sorted(map(repr, model.objects.values_list()))
        for model in models
        if model is not AuditEvent
    } | {
        "AuditEvent": AuditEvent.objects.count(),
        "members": sorted(map(repr, ScimGroup.members.through.objects.values_list())),
    }
