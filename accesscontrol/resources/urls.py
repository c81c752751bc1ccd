"""Console pages of a workspace's resources, included under /o/<org>/w/<workspace>/.

Reads and writes have separate URLs, so each view declares exactly the permission it needs.
The sidebar (templates/base.html) links to the four list pages by name.
"""

from django.urls import path

from accesscontrol.resources.views import datasets, pages, projects, prompts, queues

PROJECT = "projects/<uuid:project_id>/"
RUN = PROJECT + "runs/<uuid:run_id>/"
DATASET = "datasets/<uuid:dataset_id>/"
EXAMPLE = DATASET + "examples/<uuid:example_id>/"
PROMPT = "prompts/<uuid:prompt_id>/"
QUEUE = "annotation-queues/<uuid:queue_id>/"


def pages_of(kind, detail, edit=None):
    """A kind's list, "new", own, edit and delete pages, named as pages.Kind says: `detail` is
    its own page, `edit` its edit page when it has one of its own; pages.py makes the rest."""
    views = pages.views_of(kind)
    one = f"{kind.plural}/<uuid:{kind.id_param}>/"
    return [
        path(f"{kind.plural}/", views["listing"], name=kind.plural),
        path(f"{kind.plural}/new/", views["create"], name=f"{kind.name}-create"),
        path(one, detail, name=kind.name),
        path(one + "edit/", edit or views["edit"], name=f"{kind.name}-edit"),
        path(one + "delete/", views["delete"], name=f"{kind.name}-delete"),
    ]


urlpatterns = [
    # Tracing projects and their runs
    *pages_of(pages.PROJECTS, projects.project_detail),
    path(RUN, projects.run_detail, name="run"),
    path(RUN + "feedback/", projects.run_feedback_add, name="run-feedback-add"),
    path(RUN + "queue/", projects.run_queue_add, name="run-queue-add"),
    # Datasets and examples
    *pages_of(pages.DATASETS, datasets.dataset_detail),
    path(DATASET + "examples/new/", datasets.example_create, name="example-create"),
    path(EXAMPLE + "edit/", datasets.example_edit, name="example-edit"),
    path(EXAMPLE + "delete/", datasets.example_delete, name="example-delete"),
    # Prompts
    *pages_of(pages.PROMPTS, prompts.prompt_detail),
    path(PROMPT + "versions/", prompts.prompt_commit, name="prompt-commit"),
    # Annotation queues
    *pages_of(pages.QUEUES, queues.queue_detail, edit=queues.queue_edit),
    path(
        QUEUE + "runs/<uuid:run_id>/remove/",
        queues.queue_run_remove,
        name="annotation-queue-run-remove",
    ),
]
