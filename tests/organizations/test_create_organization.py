"""The first organization of a new installation, from the command line."""

import pytest
from django.core.management import CommandError, call_command

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Organization, OrganizationMembership


@pytest.mark.django_db
def test_creates_the_org_its_admin_and_a_workspace(monkeypatch, capsys):
    monkeypatch.setenv("ADMIN_PASSWORD", "a-long-and-unusual-passphrase")
    call_command("create_organization", name="Initech", admin_email=" Bill@Initech.example ")
    org = Organization.objects.get(name="Initech")
    user = User.objects.get(email="bill@initech.example")
    assert user.check_password("a-long-and-unusual-passphrase")
    assert OrganizationMembership.objects.get(organization=org, user=user).org_role == "admin"
    assert [w.name for w in org.workspaces.all()] == ["Default"]
    assert org.plan == "enterprise"
    actions = set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert {"organization.created", "org_member.added", "workspace.created"} <= actions
    assert "bill@initech.example is its admin" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_weak_password_is_refused_and_nothing_is_created(monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "123")
    with pytest.raises(CommandError, match="too short"):
        call_command("create_organization", name="Initech", admin_email="bill@initech.example")
    assert not Organization.objects.exists()
    assert not User.objects.filter(email="bill@initech.example").exists()


@pytest.mark.django_db
def test_the_command_is_audited_as_the_system_naming_itself(monkeypatch):
    """An operator ran it; the admin it names did nothing (ARCHITECTURE §11: system work acts
    as an explicit, named system actor)."""
    monkeypatch.setenv("ADMIN_PASSWORD", "a-long-and-unusual-passphrase")
    call_command("create_organization", name="Initech", admin_email="bill@initech.example")
    org = Organization.objects.get(name="Initech")
    rows = AuditEvent.objects.filter(organization=org)
    actors = set(rows.values_list("actor_kind", "actor_label"))
    assert actors == {("system", "system: create_organization")}
