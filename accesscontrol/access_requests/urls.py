from django.urls import path

from accesscontrol.access_requests import views

# Mounted under /o/<org_slug>/access-requests/.
urlpatterns = [
    path("", views.access_requests, name="access-requests"),
    path("new/", views.access_request_new, name="access-request-new"),
    path("mine/", views.my_access_requests, name="my-access-requests"),
    path("<uuid:request_id>/approve/", views.access_request_approve, name="access-request-approve"),
    path("<uuid:request_id>/deny/", views.access_request_deny, name="access-request-deny"),
]
