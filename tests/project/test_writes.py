"""accesscontrol/writes.py: the shapes every service writes a change in, on real rows."""

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from accesscontrol import writes
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Organization, RequireMfa
from tests.factories import OrganizationFactory
from tests.support.db import audit_actions

pytestmark = pytest.mark.django_db


def test_a_duplicate_becomes_the_error_chosen_and_leaves_nothing_behind():
    taken = OrganizationFactory(slug="taken")
    with transaction.atomic():
        with (
            pytest.raises(ValidationError) as refused,
            writes.unique_or(ValidationError({"slug": "The slug is taken."})),
        ):
            writes.save(None, taken, "organization.renamed", {"name": "Renamed"})
            Organization.objects.create(name="Other", slug="taken")
        # Only the savepoint was rolled back: the caller's transaction goes on.
        assert Organization.objects.filter(slug="taken").count() == 1
    assert refused.value.message_dict == {"slug": ["The slug is taken."]}
    taken.refresh_from_db()
    assert taken.name != "Renamed"
    assert audit_actions() == []


def test_save_writes_the_fields_given_and_the_audit_row_together():
    org = OrganizationFactory(require_mfa=RequireMfa.OFF, name="Before")
    with transaction.atomic():
        org.name = "Not saved: not among the fields given"
        writes.save(None, org, "test.saved", {"require_mfa": RequireMfa.ADMINS}, organization=org)
    org = Organization.objects.get(pk=org.pk)
    assert (org.require_mfa, org.name) == (RequireMfa.ADMINS, "Before")
    event = AuditEvent.objects.get()
    assert (event.action, event.target_id, event.organization_id) == (
        "test.saved",
        str(org.pk),
        org.pk,
    )


def test_change_to_the_same_value_writes_nothing_and_checks_nothing():
    org = OrganizationFactory(require_mfa=RequireMfa.OFF)
    checked = []
    with transaction.atomic():
        changed = writes.change(
            None,
            org,
            "require_mfa",
            RequireMfa.OFF,
            "test.changed",
            check=lambda: checked.append(1),
        )
    assert (changed, checked, audit_actions()) == (False, [], [])


def test_a_refusing_check_writes_nothing():
    org = OrganizationFactory(require_mfa=RequireMfa.OFF)

    def refuse():
        raise ValidationError("No.")

    with pytest.raises(ValidationError), transaction.atomic():
        writes.change(None, org, "require_mfa", RequireMfa.EVERYONE, "test.changed", check=refuse)
    assert Organization.objects.get(pk=org.pk).require_mfa == RequireMfa.OFF
    assert audit_actions() == []


def test_change_audits_the_value_before_and_after_under_its_key():
    org = OrganizationFactory(require_mfa=RequireMfa.OFF)
    with transaction.atomic():
        changed = writes.change(
            None,
            org,
            "require_mfa",
            RequireMfa.EVERYONE,
            "test.changed",
            key="mfa",
            show=str.upper,
            organization=org,
        )
    assert changed is True
    assert Organization.objects.get(pk=org.pk).require_mfa == RequireMfa.EVERYONE
    event = AuditEvent.objects.get()
    assert event.changes == {"before": {"mfa": "OFF"}, "after": {"mfa": "EVERYONE"}}
