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


# What moves a version. Each app registers its own access-bearing models in its AppConfig.ready
# (this module imports no app), saying which organization(s) a row belongs to.


def track(model, organizations_of, *, when=None) -> None:
    """Saving or deleting a `model` row moves the version of each organization it belongs to.

    `organizations_of(instance)` returns organization ids; `when(instance, **signal kwargs)`,
    if given, says whether a save matters at all (a sign-in saves last_login, not access).
    """

    def changed(sender, instance, **kwargs):
        if when is not None and not when(instance, **kwargs):
            return
        for organization_id in organizations_of(instance):
            bump(organization_id)

    uid = f"authz-version-{model._meta.label}"
    post_save.connect(changed, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(changed, sender=model, dispatch_uid=f"{uid}-deleted", weak=False)
