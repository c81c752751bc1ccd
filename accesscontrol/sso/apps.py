from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "accesscontrol.sso"
    label = "sso"
    verbose_name = "Single sign-on"

    def ready(self):
        from accesscontrol.sso import signals  # noqa: F401  (connects the sign-in receiver)
