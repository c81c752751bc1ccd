from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    name = "accesscontrol.apikeys"
