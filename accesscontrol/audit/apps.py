from django.apps import AppConfig
from django.db.models.signals import post_migrate


def make_partitions_ahead(sender, using, **kwargs):
    """Every `migrate` (so every deploy) makes the coming months' audit partitions."""
    from django.conf import settings

    from accesscontrol.audit import partitions

    if using == "default":
        partitions.ensure(ahead=settings.AUDIT_PARTITIONS_AHEAD)


class AuditConfig(AppConfig):
    name = "accesscontrol.audit"

    def ready(self):
        post_migrate.connect(make_partitions_ahead, sender=self)
