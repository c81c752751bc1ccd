"""The resource services are the authority: each refuses an actor without its permission in the
resource's workspace (whoever calls it: console, API, a job), and deleting a whole resource is
audited with the actor, in the same transaction."""

import pytest
from django.core.exceptions import ValidationError

from accesscontrol.audit.models import AuditEvent
from accesscontrol.rbac.actor import Actor
from accesscontrol.resources import services
from accesscontrol.resources.models import Dataset, Project, Prompt, QueuedRun
from tests.factories import SYSTEM


class Made:
    """One of each resource in the world's workspace, made by the system."""

    def __init__(self, ws):
        self.project = services.create_project(actor=SYSTEM, workspace=ws, name="p")
        services.ingest_runs(
            actor=SYSTEM,
            workspace=ws,
            posts=[{"id": RUN_ID, "name": "r", "run_type": "chain", "session_id": self.project.pk}],
        )
        self.run = self.project.runs.get()
        self.dataset = services.create_dataset(actor=SYSTEM, workspace=ws, name="d")
        (self.example,) = services.create_examples(
            actor=SYSTEM, workspace=ws, examples=[{"dataset_id": self.dataset.pk, "inputs": {}}]
        )
        self.prompt = services.create_prompt(actor=SYSTEM, workspace=ws, name="pr", template="t")
        self.queue = services.create_annotation_queue(actor=SYSTEM, workspace=ws, name="q")
        services.queue_runs(actor=SYSTEM, queue=self.queue, run_ids=[self.run.pk])
        self.feedback = services.add_feedback(actor=SYSTEM, run=self.run, key="k", score=1)


RUN_ID = "6a0f1c9e-2f7d-4a51-9a7e-3f8f7d2c1b00"

# Each write, with what it needs; `m` is the Made, `ws` the workspace.
WRITES = {
    "create_project": lambda a, m, ws: services.create_project(actor=a, workspace=ws, name="x"),
    "update_project": lambda a, m, ws: services.update_project(actor=a, project=m.project),
    "ingest_runs": lambda a, m, ws: services.ingest_runs(actor=a, workspace=ws),
    "create_dataset": lambda a, m, ws: services.create_dataset(actor=a, workspace=ws, name="x"),
    "update_dataset": lambda a, m, ws: services.update_dataset(actor=a, dataset=m.dataset),
    "create_examples": lambda a, m, ws: services.create_examples(
        actor=a, workspace=ws, examples=[]
    ),
    "update_example": lambda a, m, ws: services.update_example(actor=a, example=m.example),
    "update_examples": lambda a, m, ws: services.update_examples(
        actor=a, workspace=ws, updates=[{"id": m.example.pk, "metadata": {"k": 1}}]
    ),
    "delete_examples": lambda a, m, ws: services.delete_examples(
        actor=a, workspace=ws, example_ids=[m.example.pk]
    ),
    "purge_examples": lambda a, m, ws: services.purge_examples(
        actor=a, workspace=ws, example_ids=[m.example.pk]
    ),
    "change_split": lambda a, m, ws: services.change_split(
        actor=a, dataset=m.dataset, split_name="test", example_ids=[m.example.pk]
    ),
    "change_example_metadata": lambda a, m, ws: services.change_example_metadata(
        actor=a,
        dataset=m.dataset,
        example_ids=[m.example.pk],
        operations=[{"key": "k", "operation": "SET", "value": 1}],
    ),
    "tag_version": lambda a, m, ws: services.tag_version(
        actor=a, dataset=m.dataset, as_of=m.dataset.versions.get().as_of, tag="prod"
    ),
    "upload_csv": lambda a, m, ws: services.upload_csv(
        actor=a,
        workspace=ws,
        content=b"q,a\nhi,there\n",
        input_keys=["q"],
        output_keys=["a"],
        name="csv",
    ),
    "create_prompt": lambda a, m, ws: services.create_prompt(actor=a, workspace=ws, name="x"),
    "update_prompt": lambda a, m, ws: services.update_prompt(actor=a, prompt=m.prompt),
    "commit_prompt": lambda a, m, ws: services.commit_prompt(
        actor=a, prompt=m.prompt, template="t2"
    ),
    "create_annotation_queue": lambda a, m, ws: services.create_annotation_queue(
        actor=a, workspace=ws, name="x"
    ),
    "update_annotation_queue": lambda a, m, ws: services.update_annotation_queue(
        actor=a, queue=m.queue
    ),
    "queue_runs": lambda a, m, ws: services.queue_runs(actor=a, queue=m.queue, run_ids=[]),
    "dequeue_run": lambda a, m, ws: services.dequeue_run(actor=a, queue=m.queue, run_id=m.run.pk),
    "add_feedback": lambda a, m, ws: services.add_feedback(actor=a, run=m.run, key="k"),
    "record_feedback": lambda a, m, ws: services.record_feedback(
        actor=a, workspace=ws, run_id=None, trace_id=None, project_id=None, key="k"
    ),
    "update_feedback": lambda a, m, ws: services.update_feedback(
        actor=a, feedback=m.feedback, changes={}
    ),
    **{
        f"delete_resource({kind})": (
            lambda kind: (
                lambda a, m, ws: services.delete_resource(actor=a, resource=getattr(m, kind))
            )
        )(kind)
        for kind in ("project", "dataset", "example", "prompt", "queue", "feedback")
    },
}


def test_every_public_write_is_in_the_table():
    public = {
        name
        for name in dir(services)
        if callable(getattr(services, name))
        and getattr(getattr(services, name), "__module__", "") == services.__name__
        and not name.startswith("_")
    }
    assert public == {name.split("(")[0] for name in WRITES}


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
@pytest.mark.parametrize("who", ["viewer", "outsider"])
def test_a_write_refuses_an_actor_without_its_permission(world, write, who):
    made = Made(world.workspace)
    user = world.persona(who)
    org = world.org if who == "viewer" else world.other_org
    actor = Actor.for_user(user, org, world.workspace if who == "viewer" else None)
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        WRITES[write](actor, made, world.workspace)
    assert refused.value.code == "permission"
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_a_write_is_allowed_to_a_workspace_admin(world, write):
    made = Made(world.workspace)
    actor = Actor.for_user(world.workspace_admin, world.org, world.workspace)
    WRITES[write](actor, made, world.workspace)


@pytest.mark.parametrize(
    "kind,action",
    [
        ("project", "project.deleted"),
        ("dataset", "dataset.deleted"),
        ("prompt", "prompt.deleted"),
        ("queue", "annotation_queue.deleted"),
        ("example", None),
        ("feedback", None),
    ],
)
def test_deleting_a_whole_resource_is_audited_with_its_actor(world, kind, action):
    made = Made(world.workspace)
    resource = getattr(made, kind)
    target_id = str(resource.pk)
    actor = Actor.for_user(world.workspace_admin, world.org, world.workspace)
    services.delete_resource(actor=actor, resource=resource)
    events = list(AuditEvent.objects.filter(target_id=target_id))
    if action is None:
        assert events == []
        return
    (event,) = events
    assert (event.action, event.actor_label, event.workspace_id) == (
        action,
        world.workspace_admin.email,
        world.workspace.pk,
    )
    assert event.target_label == resource.name


def test_a_blank_template_creates_no_prompt(world):
    with pytest.raises(ValidationError):
        services.create_prompt(actor=SYSTEM, workspace=world.workspace, name="x", template="  ")
    assert not Prompt.objects.filter(name="x").exists()


def test_dequeue_touches_the_queue_only_when_a_run_left(world):
    made = Made(world.workspace)
    stamp = made.queue.updated_at
    assert services.dequeue_run(actor=SYSTEM, queue=made.queue, run_id=made.run.pk) == 1
    made.queue.refresh_from_db()
    assert made.queue.updated_at > stamp
    assert not QueuedRun.objects.filter(queue=made.queue).exists()
    assert Project.objects.filter(pk=made.project.pk).exists()
    assert Dataset.objects.filter(pk=made.dataset.pk).exists()


def test_a_child_posted_without_its_trace_joins_its_parents_trace(world):
    """The SDK's create_run sends a child's parent_run_id but no trace_id: the child is in the
    parent's trace, whether the parent is in the same batch or stored before."""
    import uuid

    from accesscontrol.resources.models import Run

    root, child, grandchild, late = (uuid.uuid4() for _ in range(4))
    run = {"name": "r", "run_type": "chain", "session_name": "p"}
    services.ingest_runs(
        actor=SYSTEM,
        workspace=world.workspace,
        posts=[
            {**run, "id": grandchild, "parent_run_id": child},  # before its parent in the batch
            {**run, "id": child, "parent_run_id": root},
            {**run, "id": root},
        ],
    )
    services.ingest_runs(
        actor=SYSTEM, workspace=world.workspace, posts=[{**run, "id": late, "parent_run_id": child}]
    )
    traces = dict(Run.objects.values_list("id", "trace_id"))
    assert traces == {root: root, child: root, grandchild: root, late: root}
