"""Roles in words: a custom role is summarised against the closest system role, by the one
function every page uses (rbac.permissions.describe_permissions, Role.summary)."""

import pytest
from django.urls import reverse

from accesscontrol.rbac.permissions import (
    READ_PERMISSIONS,
    SYSTEM_ROLE_PERMISSIONS,
    describe_permissions,
)
from tests.factories import ANNOTATOR_CODES, RoleFactory


@pytest.mark.parametrize(
    ("codes", "words"),
    [
        (
            READ_PERMISSIONS
            | {"feedback:create"}
            | {f"annotation-queues:{a}" for a in ("create", "update", "delete")},
            "Viewer + manage annotation queues, create feedback",
        ),
        (SYSTEM_ROLE_PERMISSIONS["Editor"], "Same as Editor"),
        ({"runs:read"}, "Only read runs"),
        (
            SYSTEM_ROLE_PERMISSIONS["Editor"] - {"prompts:delete"} | {"workspaces:manage-members"},
            "Editor + manage members, but not delete prompts",
        ),
        (READ_PERMISSIONS - {"prompts:read"}, "Viewer but not read prompts"),
        (set(), "No permissions"),
    ],
)
def test_permissions_in_words(codes, words):
    assert describe_permissions(codes) == words


def test_annotator_reads_as_viewer_plus():
    assert describe_permissions(ANNOTATOR_CODES).startswith("Viewer + ")
    assert ":" not in describe_permissions(ANNOTATOR_CODES)


@pytest.mark.django_db
def test_roles_page_describes_custom_roles_in_words(client, world):
    RoleFactory(
        organization=world.org,
        name="Queue keeper",
        permissions=sorted(READ_PERMISSIONS | {"annotation-queues:create", "feedback:create"}),
    )
    client.force_login(world.org_admin)
    body = client.get(reverse("roles", args=["acme"])).content.decode()
    assert "Viewer + create annotation queues, create feedback" in body
    # The codes are still there for who wants them, folded away.
    assert "9 permission codes</summary>" in body


@pytest.mark.django_db
def test_who_has_access_describes_every_principal_in_words(client, world):
    client.force_login(world.org_admin)
    body = client.get(reverse("workspace-access", args=["acme", "production"])).content.decode()
    assert "Same as Viewer" in body and "Same as Editor" in body
    assert "Viewer + " in body  # the annotator
