"""The audit log reads as sentences: who did what to whom, where, from what to what; no raw
action codes, model names or Python dicts on the page."""

import re

import pytest
from django.db import transaction

from accesscontrol.audit.models import AuditEvent
from accesscontrol.audit.sentences import SENTENCES, action_label, describe
from accesscontrol.workspaces import services as workspaces
from tests.factories import system_role

PAGE = "/o/acme/audit/"


@pytest.fixture
def admin(client, world):
    client.force_login(world.org_admin)
    return client


def named(world):
    world.org_admin.full_name = "Ada Admin"
    world.org_admin.save(update_fields=["full_name"])
    world.editor.full_name = "Ed Editor"
    world.editor.save(update_fields=["full_name"])


def test_a_role_change_is_one_sentence_with_from_and_to(admin, world):
    named(world)
    membership = world.workspace.memberships.get(org_membership__user=world.editor)
    actor = admin_actor(world)
    with transaction.atomic():
        workspaces.change_workspace_role(
            actor=actor, membership=membership, role=system_role("Viewer")
        )
    body = admin.get(PAGE).content.decode()
    assert "Ada Admin changed Ed Editor&#x27;s role in production from Editor to Viewer." in body
    shown = re.sub(r"<[^>]+>", " ", body)  # the text people read, not attribute values
    for raw in ("workspace_member.role_changed", "workspacemembership", "{&#x27;"):
        assert raw not in shown


def admin_actor(world):
    from accesscontrol.rbac.actor import Actor

    return Actor.for_user(world.org_admin, world.org, world.workspace)


def by_ada(action, target_label, **fields):
    """An event Ada (ada@acme.test, a person) recorded, not saved: describe() reads it as is."""
    return AuditEvent(
        actor_kind="user",
        actor_label="ada@acme.test",
        action=action,
        target_label=target_label,
        **fields,
    )


def test_several_changed_fields_read_as_a_diff(world):
    event = by_ada(
        "organization.settings_changed",
        "Acme",
        organization=world.org,
        changes={
            "before": {"max_key_lifetime_days": None, "allow_personal_access_tokens": True},
            "after": {"max_key_lifetime_days": 90, "allow_personal_access_tokens": False},
        },
    )
    d = describe(event, {"ada@acme.test": "Ada Admin"})
    assert d.sentence == "Ada Admin changed the organization's settings."
    assert [(c.field, c.before, c.after) for c in d.changes] == [
        ("longest key lifetime (days)", "none", "90"),
        ("personal access tokens allowed", "yes", "no"),
    ]


def test_a_key_as_actor_and_an_unknown_action_still_read_as_words(world):
    event = AuditEvent(
        actor_kind="service_key",
        actor_label="service key 'ci'",
        action="dataset.shared",
        target_label="golden set",
        changes={"after": {"with": ["a", "b"]}},
    )
    d = describe(event, {})
    assert d.sentence == "Service key 'ci': dataset shared (golden set)."
    assert [(c.field, c.before, c.after) for c in d.changes] == [("with", None, "a, b")]


def test_every_recorded_action_has_a_sentence():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "accesscontrol"
    recorded = set()
    for path in root.rglob("*.py"):
        for match in re.finditer(
            r'audit\.record\(\s*[^,]+,\s*"([a-z_]+\.[a-z_]+)"', path.read_text()
        ):
            recorded.add(match.group(1))
    assert recorded, "found no audit.record calls"
    # Recorded with an f-string: f"access_request.{status}".
    recorded |= {"access_request.approved", "access_request.denied"}
    assert recorded - SENTENCES.keys() == set()


def test_action_filter_offers_words():
    assert action_label("workspace_member.role_changed") == "Workspace member role changed"


def test_keys_are_named_once_and_role_permissions_in_words(world):
    event = by_ada("service_key.created", "service key 'ci'")
    assert describe(event, {}).sentence == "ada@acme.test created the service key 'ci'."
    role = by_ada(
        "role.created",
        "Reader",
        changes={"after": {"name": "Reader", "permissions": ["runs:read"]}},
    )
    assert [c.after for c in describe(role, {}).changes] == ["Reader", "Only read runs"]
