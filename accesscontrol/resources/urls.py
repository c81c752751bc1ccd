"""Console pages of a workspace's resources, included under /o/<org>/w/<workspace>/.

Reads and writes have separate URLs, so each view declares exactly the permission it needs.
The sidebar (templates/base.html) links to the four list pages by name.
"""

from django.urls import path

from accesscontrol.resources.views import datasets, projects, prompts, queues

PROJECT = "projects/<uuid:project_id>/"
RUN = PROJECT + "runs/<uuid:run_id>/"
DATASET = "datasets/<uuid:dataset_id>/"
EXAMPLE = DATASET + "examples/<uuid:example_id>/"
PROMPT = "prompts/<uuid:prompt_id>/"
QUEUE = "annotation-queues/<uuid:queue_id>/"

urlpatterns = [
    # Tracing projects and their runs
    path("projects/", projects.projects, name="projects"),
    path("projects/new/", projects.project_create, name="project-create"),
    path(PROJECT, projects.project_detail, name="project"),
    path(PROJECT + "edit/", projects.project_edit, name="project-edit"),
    path(PROJECT + "delete/", projects.project_delete, name="project-delete"),
    path(RUN, projects.run_detail, name="run"),
    path(RUN + "feedback/", projects.run_feedback_add, name="run-feedback-add"),
    path(RUN + "queue/", projects.run_queue_add, name="run-queue-add"),
    # Datasets and examples
    path("datasets/", datasets.datasets, name="datasets"),
    path("datasets/new/", datasets.dataset_create, name="dataset-create"),
    path(DATASET, datasets.dataset_detail, name="dataset"),
    path(DATASET + "edit/", datasets.dataset_edit, name="dataset-edit"),
    path(DATASET + "delete/", datasets.dataset_delete, name="dataset-delete"),
    path(DATASET + "examples/new/", datasets.example_create, name="example-create"),
    path(EXAMPLE + "edit/", datasets.example_edit, name="example-edit"),
    path(EXAMPLE + "delete/", datasets.example_delete, name="example-delete"),
    # Prompts
    path("prompts/", prompts.prompts, name="prompts"),
    path("prompts/new/", prompts.prompt_create, name="prompt-create"),
    path(PROMPT, prompts.prompt_detail, name="prompt"),
    path(PROMPT + "versions/", prompts.prompt_commit, name="prompt-commit"),
    path(PROMPT + "edit/", prompts.prompt_edit, name="prompt-edit"),
    path(PROMPT + "delete/", prompts.prompt_delete, name="prompt-delete"),
    # Annotation queues
    path("annotation-queues/", queues.annotation_queues, name="annotation-queues"),
    path("annotation-queues/new/", queues.queue_create, name="annotation-queue-create"),
    path(QUEUE, queues.queue_detail, name="annotation-queue"),
    path(QUEUE + "edit/", queues.queue_edit, name="annotation-queue-edit"),
    path(QUEUE + "delete/", queues.queue_delete, name="annotation-queue-delete"),
    path(
        QUEUE + "runs/<uuid:run_id>/remove/",
        queues.queue_run_remove,
        name="annotation-queue-run-remove",
    ),
]
