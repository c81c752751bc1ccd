"""Console pages of a workspace's resources, included under /o/<org>/w/<workspace>/.

Reads and writes have separate URLs, so each view declares exactly the permission it needs.
The sidebar (templates/base.html) links to the four list pages by name.
"""

from django.urls import path

from accesscontrol.resources import views

PROJECT = "projects/<uuid:project_id>/"
RUN = PROJECT + "runs/<uuid:run_id>/"
DATASET = "datasets/<uuid:dataset_id>/"
EXAMPLE = DATASET + "examples/<uuid:example_id>/"
PROMPT = "prompts/<uuid:prompt_id>/"
QUEUE = "annotation-queues/<uuid:queue_id>/"

urlpatterns = [
    # Tracing projects and their runs
    path("projects/", views.projects, name="projects"),
    path("projects/new/", views.project_create, name="project-create"),
    path(PROJECT, views.project_detail, name="project"),
    path(PROJECT + "edit/", views.project_edit, name="project-edit"),
    path(PROJECT + "delete/", views.project_delete, name="project-delete"),
    path(RUN, views.run_detail, name="run"),
    path(RUN + "feedback/", views.run_feedback_add, name="run-feedback-add"),
    path(RUN + "queue/", views.run_queue_add, name="run-queue-add"),
    # Datasets and examples
    path("datasets/", views.datasets, name="datasets"),
    path("datasets/new/", views.dataset_create, name="dataset-create"),
    path(DATASET, views.dataset_detail, name="dataset"),
    path(DATASET + "edit/", views.dataset_edit, name="dataset-edit"),
    path(DATASET + "delete/", views.dataset_delete, name="dataset-delete"),
    path(DATASET + "examples/new/", views.example_create, name="example-create"),
    path(EXAMPLE + "edit/", views.example_edit, name="example-edit"),
    path(EXAMPLE + "delete/", views.example_delete, name="example-delete"),
    # Prompts
    path("prompts/", views.prompts, name="prompts"),
    path("prompts/new/", views.prompt_create, name="prompt-create"),
    path(PROMPT, views.prompt_detail, name="prompt"),
    path(PROMPT + "versions/", views.prompt_commit, name="prompt-commit"),
    path(PROMPT + "edit/", views.prompt_edit, name="prompt-edit"),
    path(PROMPT + "delete/", views.prompt_delete, name="prompt-delete"),
    # Annotation queues
    path("annotation-queues/", views.annotation_queues, name="annotation-queues"),
    path("annotation-queues/new/", views.queue_create, name="annotation-queue-create"),
    path(QUEUE, views.queue_detail, name="annotation-queue"),
    path(QUEUE + "edit/", views.queue_edit, name="annotation-queue-edit"),
    path(QUEUE + "delete/", views.queue_delete, name="annotation-queue-delete"),
    path(
        QUEUE + "runs/<uuid:run_id>/remove/",
        views.queue_run_remove,
        name="annotation-queue-run-remove",
    ),
]
