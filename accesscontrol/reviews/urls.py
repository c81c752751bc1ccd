from django.urls import path

from accesscontrol.reviews import views

urlpatterns = [
    path("", views.campaigns, name="reviews"),
    path("<uuid:campaign_id>/", views.campaign_detail, name="review"),
    path("<uuid:campaign_id>/decide/", views.campaign_decide, name="review-decide"),
    path("<uuid:campaign_id>/complete/", views.campaign_complete, name="review-complete"),
]
