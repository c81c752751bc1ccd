from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accesscontrol.accounts"

    def ready(self):
        from accesscontrol.accounts import sudo  # noqa: F401  (grants sudo mode at sign-in)
