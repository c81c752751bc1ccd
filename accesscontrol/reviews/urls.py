from django.urls import path

from accesscontrol.reviews import views

urlpatterns = [
    path("", views.campaigns, name="campaigns"),
    path("<uuid:campaign_id>/", views.campaign_detail, name="campaign"),
    path("<uuid:campaign_id>/decide/", views.campaign_decide, name="campaign-decide"),
    path("<uuid:campaign_id>/complete/", views.campaign_complete, name="campaign-complete"),
]
