from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "accesscontrol.api"
