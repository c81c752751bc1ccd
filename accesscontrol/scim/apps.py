from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "accesscontrol.scim"
    label = "scim"
