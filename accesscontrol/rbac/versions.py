"""Authorization versions: one token per organization that moves on every change to access.

Anything cached about who may do what in an organization is stored with the version it was
computed under and used only while the organization's version is unchanged. The version lives in
the Django cache (Redis in production), so a change made through any process is seen by every
process on its very next request (ASVS 8.3.2).

Versions are random tokens, not counters: if the cache loses one, the replacement can never equal
a version some process still holds.
"""

import uuid

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

PREFIX = "authz:version:"


def key(organization_id) -> str:
    return f"{PREFIX}{organization_id}"


def current(organization_id, known: str | None = None) -> str:
    """The organization's version; `known` is one already read in a batch with other keys."""
    version = known if known is not None else cache.get(key(organization_id))
    if version is None:
        cache.add(key(organization_id), uuid.uuid4().hex, None)
        version = cache.get(key(organization_id))
    return version


def bump(organization_id) -> None:
    if organization_id is None:
        return
    name = key(organization_id)
    cache.set(name, uuid.uuid4().hex, None)
    # Again once the change is committed: a request that read the old rows between the first
    # bump and the commit must not have its result trusted under the new version.
    transaction.on_commit(lambda: cache.set(name, uuid.uuid4().hex, None))


# Which organization each access-bearing row belongs to.


def _org_of(instance):
    from accesscontrol.apikeys.models import PersonalAccessToken
    from accesscontrol.organizations.models import Organization
    from accesscontrol.workspaces.models import WorkspaceMembership

    if isinstance(instance, Organization):
        return [instance.pk]
    if isinstance(instance, WorkspaceMembership):
        return [_membership_org(instance.org_membership_id)]
    if isinstance(instance, PersonalAccessToken):
        return [_membership_org(instance.org_membership_id)]
    return [instance.organization_id]


def _membership_org(org_membership_id):
    from accesscontrol.organizations.models import OrganizationMembership

    return (
        OrganizationMembership.objects.filter(pk=org_membership_id)
        .values_list("organization_id", flat=True)
        .first()
    )


def _orgs_of_user(user):
    from accesscontrol.organizations.models import OrganizationMembership

    return OrganizationMembership.objects.filter(user_id=user.pk).values_list(
        "organization_id", flat=True
    )


def _changed(sender, instance, **kwargs):
    for organization_id in _org_of(instance):
        bump(organization_id)


def _user_changed(sender, instance, created=False, update_fields=None, **kwargs):
    if created or (update_fields is not None and "is_active" not in update_fields):
        return  # only deactivation matters here (sign-ins save last_login on every login)
    for organization_id in _orgs_of_user(instance):
        bump(organization_id)


def connect() -> None:
    from django.contrib.auth import get_user_model

    from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
    from accesscontrol.organizations.models import Organization, OrganizationMembership
    from accesscontrol.rbac.models import Role
    from accesscontrol.workspaces.models import Workspace, WorkspaceMembership

    for model in (
        Organization,
        OrganizationMembership,
        Workspace,
        WorkspaceMembership,
        Role,
        PersonalAccessToken,
        ServiceKey,
    ):
        post_save.connect(_changed, sender=model, dispatch_uid=f"authz-version-{model.__name__}")
        post_delete.connect(
            _changed, sender=model, dispatch_uid=f"authz-version-del-{model.__name__}"
        )
    post_save.connect(_user_changed, sender=get_user_model(), dispatch_uid="authz-version-user")
