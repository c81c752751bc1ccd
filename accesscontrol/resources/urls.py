"""Console pages of a workspace's resources, under /o/<org>/w/<workspace>/.

The names below are used by the sidebar (templates/base.html); the views are built out in
accesscontrol/resources/views.py.
"""

from django.urls import path

from accesscontrol.resources import views

urlpatterns = [
    path("projects/", views.projects, name="projects"),
    path("datasets/", views.datasets, name="datasets"),
    path("prompts/", views.prompts, name="prompts"),
    path("annotation-queues/", views.annotation_queues, name="annotation-queues"),
]
