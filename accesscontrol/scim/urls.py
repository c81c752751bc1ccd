"""/scim/v2/ (RFC 7644 §3.2): the organization is the token's, never in the URL."""

from django.urls import path

from accesscontrol.scim import views

urlpatterns = [
    path("", views.root, name="scim-root"),
    path("ServiceProviderConfig", views.service_provider_config, name="scim-config"),
    path("ResourceTypes", views.resource_types, name="scim-resource-types"),
    path("ResourceTypes/<str:scim_id>", views.resource_type, name="scim-resource-type"),
    path("Schemas", views.schemas, name="scim-schemas"),
    path("Schemas/<str:scim_id>", views.schema, name="scim-schema"),
    path("Users", views.users, name="scim-users"),
    path("Users/<str:scim_id>", views.user, name="scim-user"),
    path("Groups", views.groups, name="scim-groups"),
    path("Groups/<str:scim_id>", views.group, name="scim-group"),
]
