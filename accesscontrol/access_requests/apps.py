from django.apps import AppConfig


class AccessRequestsConfig(AppConfig):
    name = "accesscontrol.access_requests"
    label = "access_requests"
