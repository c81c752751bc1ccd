"""Console pages of a workspace's resources: projects and runs, datasets and examples, prompts,
annotation queues. Every page for every persona, every write, its form errors, tenancy, the
trace tree, escaping and pinned query counts."""

import datetime
import json
import re
import uuid
from functools import partial
from html import unescape
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accesscontrol.rbac.permissions import READ_PERMISSIONS, WORKSPACE_PERMISSIONS
from accesscontrol.resources import models, services
from tests.factories import ANNOTATOR_CODES, SYSTEM

WS = ("acme", "production")
T0 = timezone.now().replace(microsecond=0) - datetime.timedelta(hours=1)

# What each persona may do in acme/production (their roles, spelled out so a change to a
# role shows up here). The outsider is admin of another organization: acme does not exist.
PERSONA_CODES = {
    "org_admin": WORKSPACE_PERMISSIONS,
    "editor": frozenset(c for c in WORKSPACE_PERMISSIONS if not c.startswith("workspaces:manage")),
    "viewer": READ_PERMISSIONS,
    "annotator": frozenset(ANNOTATOR_CODES),
    "member_without_workspace": frozenset(),
}
PERSONAS = [*PERSONA_CODES, "outsider"]


def url(name, *args):
    return reverse(name, args=[*WS, *args])


def body(response) -> str:
    return response.content.decode()


def run_post(project, name, *, parent=None, trace=None, offset=0, **fields):
    """A run as the SDK posts it into `project`: started `offset` seconds after T0, 1.5 s long."""
    run_id = uuid.uuid4()
    return {
        "id": run_id,
        "trace_id": trace or run_id,
        "parent_run_id": parent,
        "session_id": project.pk,
        "name": name,
        "run_type": fields.pop("run_type", "chain"),
        "start_time": T0 + datetime.timedelta(seconds=offset),
        "end_time": T0 + datetime.timedelta(seconds=offset, milliseconds=1500),
        **fields,
    }


def make_run(workspace, project, name, *, under=None, parent=None, trace=None, offset=0, **fields):
    """A run ingested into `project`, `offset` seconds after T0: a root, or a child `under` a run
    (or given its `parent` id and `trace` id outright, existing or not)."""
    if under is not None:
        parent, trace = under.pk, under.trace_id
    post = run_post(project, name, parent=parent, trace=trace, offset=offset, **fields)
    services.ingest_runs(actor=SYSTEM, workspace=workspace, posts=[post])
    return models.Run.objects.get(pk=post["id"])


class Resources:
    """One of each resource in a workspace: a three-level trace, a dataset with examples,
    a prompt with two versions, a queue holding the trace's root run."""

    def __init__(self, workspace, tag):
        self.project = services.create_project(
            actor=SYSTEM, workspace=workspace, name=f"{tag}-chatbot"
        )
        run = partial(make_run, workspace, self.project)
        self.root = run(
            f"{tag}-agent",
            inputs={"question": "<script>alert('x')</script>", "lang": "en"},
            outputs={"answer": "Paris"},
            extra={"metadata": {"user": "u-1"}},
            tags=["prod"],
        )
        slow_down = "RateLimitError: slow down"
        self.child = run(
            f"{tag}-llm-call", under=self.root, offset=1, run_type="llm", error=slow_down
        )
        self.grandchild = run(f"{tag}-tokenizer", under=self.child, offset=2, run_type="tool")
        self.dataset = services.create_dataset(
            actor=SYSTEM, workspace=workspace, name=f"{tag}-golden"
        )
        self.examples = services.create_examples(
            actor=SYSTEM,
            workspace=workspace,
            examples=[
                {"dataset_id": self.dataset.pk, "inputs": {"q": f"question {n}"}} for n in range(2)
            ],
        )
        self.prompt = services.create_prompt(
            actor=SYSTEM, workspace=workspace, name=f"{tag}-greeting", template="Hello {name}"
        )
        services.commit_prompt(
            actor=SYSTEM, prompt=self.prompt, template="Hi {name}!", message="friendlier"
        )
        self.queue = services.create_annotation_queue(
            actor=SYSTEM, workspace=workspace, name=f"{tag}-review"
        )
        services.queue_runs(actor=SYSTEM, queue=self.queue, run_ids=[self.root.pk])


@pytest.fixture
def res(world):
    return Resources(world.workspace, "prod")


@pytest.fixture
def elsewhere(world):
    """The same resources in acme's other workspace (staging)."""
    return Resources(world.other_workspace, "staging")


def login(client, world, persona):
    client.force_login(world.persona(persona))
    return client


# --- every page, every persona -----------------------------------------------------------


def read_pages(r):
    """(url name, args, permission codes the page needs)."""
    p, run, d, pr, q = r.project, r.root, r.dataset, r.prompt, r.queue
    return [
        ("projects", (), {"projects:read"}),
        ("project", (p.pk,), {"projects:read", "runs:read"}),
        ("run", (p.pk, run.pk), {"runs:read"}),
        ("datasets", (), {"datasets:read"}),
        ("dataset", (d.pk,), {"datasets:read"}),
        ("prompts", (), {"prompts:read"}),
        ("prompt", (pr.pk,), {"prompts:read"}),
        ("annotation-queues", (), {"annotation-queues:read"}),
        ("annotation-queue", (q.pk,), {"annotation-queues:read"}),
    ]


def edit_pages(name, obj, resource):
    """The create form, and `obj`'s edit form and delete confirmation: each needs the permission
    of its name."""
    return [
        (f"{name}-create", (), f"{resource}:create"),
        (f"{name}-edit", (obj.pk,), f"{resource}:update"),
        (f"{name}-delete", (obj.pk,), f"{resource}:delete"),
    ]


def form_pages(r):
    """The GET side of each write: a form or a confirmation."""
    p, d, e, pr, q, run = r.project, r.dataset, r.examples[0], r.prompt, r.queue, r.root
    return [
        *edit_pages("project", p, "projects"),
        *edit_pages("dataset", d, "datasets"),
        # Examples are part of their dataset: changing them is updating it.
        ("example-create", (d.pk,), "datasets:update"),
        ("example-edit", (d.pk, e.pk), "datasets:update"),
        ("example-delete", (d.pk, e.pk), "datasets:update"),
        *edit_pages("prompt", pr, "prompts"),
        *edit_pages("annotation-queue", q, "annotation-queues"),
        ("annotation-queue-run-remove", (q.pk, run.pk), "annotation-queues:update"),
    ]


def expected_status(persona, codes):
    if persona == "outsider":
        return 404
    return 200 if set(codes) <= PERSONA_CODES[persona] else 403


@pytest.mark.parametrize("persona", PERSONAS)
def test_read_pages_for_each_persona(client, world, res, persona):
    login(client, world, persona)
    for name, args, codes in read_pages(res):
        response = client.get(url(name, *args))
        assert response.status_code == expected_status(persona, codes), (name, persona)
        if response.status_code == 403:
            assert set(response["X-Required-Permission"].split(", ")) <= codes


@pytest.mark.parametrize("persona", PERSONAS)
def test_form_and_confirmation_pages_for_each_persona(client, world, res, persona):
    login(client, world, persona)
    for name, args, code in form_pages(res):
        response = client.get(url(name, *args))
        assert response.status_code == expected_status(persona, {code}), (name, persona)
        if response.status_code == 403:
            assert response["X-Required-Permission"] == code


def test_anonymous_visitors_are_sent_to_sign_in(client, world, res):
    for name, args, _ in read_pages(res):
        response = client.get(url(name, *args))
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_viewer_pages_show_no_write_controls(client, world, res):
    login(client, world, "viewer")
    for name, args, _ in read_pages(res):
        html = body(client.get(url(name, *args)))
        for write_name, write_args, _ in form_pages(res):
            assert url(write_name, *write_args) not in html, (name, write_name)
        assert '<form method="post" action="/o/' not in html, name
        assert "Add feedback" not in html and "Add to queue" not in html


def test_editor_pages_show_the_controls_their_role_allows(client, world, res):
    login(client, world, "editor")
    html = body(client.get(url("projects")))
    assert url("project-create") in html and url("project-delete", res.project.pk) in html
    html = body(client.get(url("dataset", res.dataset.pk)))
    for name, args in [
        ("example-create", (res.dataset.pk,)),
        ("dataset-edit", (res.dataset.pk,)),
        ("dataset-delete", (res.dataset.pk,)),
        ("example-delete", (res.dataset.pk, res.examples[0].pk)),
    ]:
        assert url(name, *args) in html
    html = body(client.get(url("run", res.project.pk, res.root.pk)))
    assert url("run-feedback-add", res.project.pk, res.root.pk) in html
    assert url("run-queue-add", res.project.pk, res.root.pk) in html


def test_annotator_may_annotate_but_not_edit_data(client, world, res):
    login(client, world, "annotator")
    html = body(client.get(url("run", res.project.pk, res.root.pk)))
    assert "Add feedback" in html and "Add to queue" in html
    html = body(client.get(url("dataset", res.dataset.pk)))
    assert url("example-create", res.dataset.pk) not in html
    html = body(client.get(url("annotation-queues")))
    assert url("annotation-queue-create") in html
    assert url("annotation-queue-delete", res.queue.pk) not in html  # no annotation-queues:delete


# --- forged writes change nothing --------------------------------------------------------


def write_posts(r, other_queue_id=None):
    """(url name, args, valid POST data, permission code)."""
    p, run, d, e, pr, q = r.project, r.root, r.dataset, r.examples[0], r.prompt, r.queue
    return [
        ("project-create", (), {"name": "new-project"}, "projects:create"),
        ("project-edit", (p.pk,), {"name": "renamed"}, "projects:update"),
        ("project-delete", (p.pk,), {}, "projects:delete"),
        (
            "run-feedback-add",
            (p.pk, run.pk),
            {"key": "correctness", "score": "1"},
            "feedback:create",
        ),
        ("run-queue-add", (p.pk, run.pk), {"queue": str(q.pk)}, "annotation-queues:update"),
        ("dataset-create", (), {"name": "new-ds", "data_type": "kv"}, "datasets:create"),
        ("dataset-edit", (d.pk,), {"name": "renamed-ds"}, "datasets:update"),
        ("dataset-delete", (d.pk,), {}, "datasets:delete"),
        ("example-create", (d.pk,), {"inputs": '{"q": 1}'}, "datasets:update"),
        ("example-edit", (d.pk, e.pk), {"inputs": '{"q": 2}'}, "datasets:update"),
        ("example-delete", (d.pk, e.pk), {}, "datasets:update"),
        ("prompt-create", (), {"name": "new-prompt", "template": "x"}, "prompts:create"),
        ("prompt-commit", (pr.pk,), {"template": "forged"}, "prompts:update"),
        ("prompt-edit", (pr.pk,), {"name": "renamed-prompt"}, "prompts:update"),
        ("prompt-delete", (pr.pk,), {}, "prompts:delete"),
        ("annotation-queue-create", (), {"name": "new-queue"}, "annotation-queues:create"),
        ("annotation-queue-edit", (q.pk,), {"name": "renamed-queue"}, "annotation-queues:update"),
        ("annotation-queue-run-remove", (q.pk, run.pk), {}, "annotation-queues:update"),
        ("annotation-queue-delete", (q.pk,), {}, "annotation-queues:delete"),
    ]


def snapshot():
    """Everything a forged write could change."""
    return {
        "projects": sorted(models.Project.objects.values_list("name", flat=True)),
        "runs": models.Run.objects.count(),
        "feedback": models.Feedback.objects.count(),
        "datasets": sorted(models.Dataset.objects.values_list("name", "description")),
        "examples": sorted(str(e) for e in models.Example.objects.values_list("id", "inputs")),
        "prompts": sorted(models.Prompt.objects.values_list("name", flat=True)),
        "commits": models.PromptCommit.objects.count(),
        "queues": sorted(models.AnnotationQueue.objects.values_list("name", flat=True)),
        "queued": models.QueuedRun.objects.count(),
    }


@pytest.mark.parametrize("persona", ["viewer", "member_without_workspace", "outsider"])
def test_forged_writes_are_refused_and_change_nothing(client, world, res, persona):
    login(client, world, persona)
    before = snapshot()
    for name, args, data, code in write_posts(res):
        response = client.post(url(name, *args), data)
        assert response.status_code == expected_status(persona, {code}), (name, persona)
        assert response.status_code in (403, 404)
    assert snapshot() == before


def test_annotator_cannot_delete_a_queue_or_touch_datasets(client, world, res):
    login(client, world, "annotator")
    before = snapshot()
    for name, args, data, code in write_posts(res):
        if code in ANNOTATOR_CODES:
            continue
        response = client.post(url(name, *args), data)
        assert response.status_code == 403, name
        assert response["X-Required-Permission"] == code
    assert snapshot() == before


def test_writes_need_post(client, world, res):
    login(client, world, "editor")
    assert client.get(url("run-feedback-add", res.project.pk, res.root.pk)).status_code == 405
    assert client.get(url("run-queue-add", res.project.pk, res.root.pk)).status_code == 405
    assert client.get(url("prompt-commit", res.prompt.pk)).status_code == 405
    assert client.post(url("projects")).status_code == 405


# --- another workspace's objects do not exist here ---------------------------------------


def test_objects_of_another_workspace_are_not_found(client, world, res, elsewhere):
    login(client, world, "org_admin")  # admin of both workspaces: only the URL's counts
    for name, args, _ in read_pages(elsewhere):
        if args:
            assert client.get(url(name, *args)).status_code == 404, name
    for name, args, _ in form_pages(elsewhere):
        if args:
            assert client.get(url(name, *args)).status_code == 404, name
    before = snapshot()
    for name, args, data, _ in write_posts(elsewhere):
        if args:
            assert client.post(url(name, *args), data).status_code == 404, name
    assert snapshot() == before


def test_a_run_or_example_reached_through_the_wrong_parent_is_not_found(client, world, res):
    other_project = services.create_project(actor=SYSTEM, workspace=world.workspace, name="other")
    other_dataset = services.create_dataset(actor=SYSTEM, workspace=world.workspace, name="other")
    login(client, world, "editor")
    assert client.get(url("run", other_project.pk, res.root.pk)).status_code == 404
    example = res.examples[0]
    assert client.get(url("example-edit", other_dataset.pk, example.pk)).status_code == 404
    assert client.post(url("example-delete", other_dataset.pk, example.pk)).status_code == 404
    assert models.Example.objects.filter(pk=example.pk).exists()


def test_a_queue_of_another_workspace_cannot_be_chosen(client, world, res, elsewhere):
    login(client, world, "org_admin")
    response = client.post(
        url("run-queue-add", res.project.pk, res.root.pk), {"queue": str(elsewhere.queue.pk)}
    )
    assert response.status_code == 422
    assert "Select a valid choice" in body(response)
    assert not models.QueuedRun.objects.filter(queue=elsewhere.queue, run=res.root).exists()


def test_unknown_ids_and_workspaces_are_not_found(client, world, res):
    login(client, world, "editor")
    assert client.get(url("project", uuid.uuid4())).status_code == 404
    assert client.get(url("dataset", uuid.uuid4())).status_code == 404
    assert client.get("/o/acme/w/production/projects/not-a-uuid/").status_code == 404
    assert client.get(reverse("projects", args=["acme", "nope"])).status_code == 404


# --- tracing projects ----------------------------------------------------------------------


def test_projects_list_shows_run_and_error_counts(client, world, res):
    login(client, world, "viewer")
    html = body(client.get(url("projects")))
    row = re.search(rf'<tr id="project-{res.project.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "prod-chatbot" in row
    assert re.findall(r'<td class="num">(?:<span class="error-count">)?(\d+)', row) == ["3", "1"]


def test_projects_search_and_htmx_fragment(client, world, res):
    services.create_project(actor=SYSTEM, workspace=world.workspace, name="billing-agent")
    login(client, world, "viewer")
    html = body(client.get(url("projects"), {"q": "BILLING"}))
    assert "billing-agent" in html and "prod-chatbot" not in html
    fragment = client.get(url("projects"), {"q": "chat"}, headers={"HX-Request": "true"})
    text = body(fragment)
    assert text.lstrip().startswith('<div id="rows">')
    assert "prod-chatbot" in text and "<html" not in text
    empty = body(client.get(url("projects"), {"q": "zzz"}))
    assert "No project matches “zzz”." in empty


def test_search_with_a_nul_character_is_harmless(client, world, res):
    # Refused with a 400 before the view (accesscontrol.storable.RefuseNulInQuery), never a 500.
    login(client, world, "viewer")
    for name in ("projects", "datasets", "prompts", "annotation-queues"):
        assert client.get(url(name), {"q": "a\x00b"}).status_code == 400
    assert client.get(url("project", res.project.pk), {"q": "\x00"}).status_code == 400


def test_projects_paginate_by_50(client, world):
    for n in range(60):
        services.create_project(actor=SYSTEM, workspace=world.workspace, name=f"p-{n:03d}")
    login(client, world, "viewer")
    first = body(client.get(url("projects")))
    assert first.count('<tr id="project-') == 50
    assert "Page 1 of 2 · 60 in all" in first
    second = body(client.get(url("projects"), {"page": 2}))
    assert second.count('<tr id="project-') == 10
    assert body(client.get(url("projects"), {"page": "x"})).count('<tr id="project-') == 50


def test_empty_states(client, world):
    login(client, world, "editor")
    assert "No tracing projects yet." in body(client.get(url("projects")))
    assert "No datasets yet." in body(client.get(url("datasets")))
    assert "No prompts yet." in body(client.get(url("prompts")))
    assert "No annotation queues yet." in body(client.get(url("annotation-queues")))
    project = services.create_project(actor=SYSTEM, workspace=world.workspace, name="quiet")
    assert "No runs in this project yet." in body(client.get(url("project", project.pk)))
    dataset = services.create_dataset(actor=SYSTEM, workspace=world.workspace, name="empty")
    assert "This dataset has no examples yet." in body(client.get(url("dataset", dataset.pk)))
    queue = services.create_annotation_queue(actor=SYSTEM, workspace=world.workspace, name="q")
    assert "No runs in this queue." in body(client.get(url("annotation-queue", queue.pk)))


def test_project_page_lists_root_runs_newest_first_with_status_and_latency(client, world, res):
    later = make_run(world.workspace, res.project, "later-run", offset=100)
    login(client, world, "viewer")
    html = body(client.get(url("project", res.project.pk)))
    rows = re.findall(r'<tr id="run-([0-9a-f-]+)">', html)
    assert rows == [str(later.pk), str(res.root.pk)]  # children are in the trace, not here
    assert "1.50 s" in html
    assert "run-status-success" in html
    searched = body(client.get(url("project", res.project.pk), {"q": "later"}))
    assert re.findall(r'<tr id="run-([0-9a-f-]+)">', searched) == [str(later.pk)]


def test_project_page_shows_the_error_badge_of_a_failed_root(client, world, res):
    make_run(world.workspace, res.project, "broken", offset=50, error="ValueError: <bad>")
    login(client, world, "viewer")
    html = body(client.get(url("project", res.project.pk)))
    assert "run-status-error" in html
    assert "ValueError: &lt;bad&gt;" in html


# Each resource model's prefix in the console's URL names ("project-create", "project"...).
URL_NAME = {
    models.Project: "project",
    models.Dataset: "dataset",
    models.Prompt: "prompt",
    models.AnnotationQueue: "annotation-queue",
}


def create_in_console(client, world, persona, model, form):
    """`persona` fills in the create form of a `model`; it redirects to the new object's page.
    The object, read back from the database."""
    login(client, world, persona)
    response = client.post(url(f"{URL_NAME[model]}-create"), form)
    made = model.objects.in_workspace(world.workspace).get(name=form["name"])
    assert response.status_code == 302
    assert response["Location"] == url(URL_NAME[model], made.pk)
    return made


def test_create_project(client, world):
    project = create_in_console(
        client, world, "editor", models.Project, {"name": "support-bot", "description": "d"}
    )
    assert project.description == "d"


CREATE_ERRORS = [
    ("project-create", "Project", {"name": ""}, "This field is required."),
    (
        "project-create",
        "Project",
        {"name": "prod-chatbot"},
        "A project named &#x27;prod-chatbot&#x27; already exists",
    ),
    ("project-create", "Project", {"name": "x" * 256}, "at most 255 characters"),
    ("dataset-create", "Dataset", {"name": "", "data_type": "kv"}, "This field is required."),
    (
        "dataset-create",
        "Dataset",
        {"name": "prod-golden", "data_type": "kv"},
        "already exists in this workspace",
    ),
    ("dataset-create", "Dataset", {"name": "new", "data_type": "xml"}, "Select a valid choice."),
    ("prompt-create", "Prompt", {"name": "prod-greeting", "template": "x"}, "A prompt named"),
    ("prompt-create", "Prompt", {"name": "new", "template": ""}, "This field is required."),
    ("prompt-create", "Prompt", {"name": "new", "template": "   "}, "This field is required."),
    ("prompt-create", "Prompt", {"name": "", "template": "x"}, "This field is required."),
    ("annotation-queue-create", "AnnotationQueue", {"name": ""}, "This field is required."),
]


@pytest.mark.parametrize(("page", "model", "data", "message"), CREATE_ERRORS)
def test_create_errors_are_422_with_messages_and_create_nothing(
    client, world, res, page, model, data, message
):
    login(client, world, "editor")
    rows = getattr(models, model).objects
    before = rows.count()
    response = client.post(url(page), data)
    assert response.status_code == 422
    assert message in body(response)
    assert rows.count() == before


def test_create_project_in_a_dialog_with_htmx(client, world):
    login(client, world, "editor")
    hx = {"HX-Request": "true"}
    form = client.get(url("project-create"), headers=hx)
    assert body(form).lstrip().startswith("<form") and "<html" not in body(form)
    invalid = client.post(url("project-create"), {"name": ""}, headers=hx)
    assert invalid.status_code == 422 and body(invalid).lstrip().startswith("<form")
    done = client.post(url("project-create"), {"name": "dialog-made"}, headers=hx)
    project = models.Project.objects.get(name="dialog-made")
    assert done.status_code == 204
    assert done["HX-Redirect"] == url("project", project.pk)


@pytest.mark.parametrize("kind", ["project", "dataset"])
def test_edit_name_and_description(client, world, res, kind):
    edited = getattr(res, kind)
    login(client, world, "editor")
    edit = url(f"{kind}-edit", edited.pk)
    response = client.post(edit, {"name": "renamed", "description": "x"})
    assert response.status_code == 302
    edited.refresh_from_db()
    assert (edited.name, edited.description) == ("renamed", "x")
    assert client.post(edit, {"name": ""}).status_code == 422


def test_a_project_cannot_take_a_name_in_use(client, world, res):
    login(client, world, "editor")
    other = services.create_project(actor=SYSTEM, workspace=world.workspace, name="taken")
    response = client.post(url("project-edit", other.pk), {"name": res.project.name})
    assert response.status_code == 422


def test_delete_project_confirms_with_the_run_count_then_deletes_its_runs(client, world, res):
    login(client, world, "editor")
    confirm = client.get(url("project-delete", res.project.pk))
    assert confirm.status_code == 200
    assert "Its 3 runs are deleted with it." in body(confirm)
    response = client.post(url("project-delete", res.project.pk))
    assert response.status_code == 302 and response["Location"] == url("projects")
    assert not models.Project.objects.filter(pk=res.project.pk).exists()
    assert not models.Run.objects.filter(project_id=res.project.pk).exists()
    assert not models.QueuedRun.objects.filter(queue=res.queue).exists()


# --- runs ---------------------------------------------------------------------------------


class TraceParser(HTMLParser):
    """The trace tree: each run link's name with the depth of <ul> it sits in."""

    def __init__(self):
        super().__init__()
        self.in_tree = False
        self.depth = 0
        self.nodes = []  # (depth, name, current)
        self._link = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "ul" and "trace-tree" in (attrs.get("class") or ""):
            self.in_tree = True
        if not self.in_tree:
            return
        if tag == "ul":
            self.depth += 1
        elif tag == "a" and "trace-link" in (attrs.get("class") or ""):
            self._link = [self.depth, "", attrs.get("aria-current") == "page"]
        elif tag == "span" and self._link is not None and attrs.get("class") == "trace-name":
            self._link.append("name")

    def handle_endtag(self, tag):
        if not self.in_tree:
            return
        if tag == "ul":
            self.depth -= 1
            if self.depth == 0:
                self.in_tree = False
        elif tag == "a" and self._link is not None:
            self.nodes.append((self._link[0], self._link[1].strip(), self._link[2]))
            self._link = None

    def handle_data(self, data):
        if self._link is not None and len(self._link) == 4:
            self._link[1] += data
            self._link.pop()


def trace_of(html):
    parser = TraceParser()
    parser.feed(html)
    return parser.nodes


def test_run_page_draws_the_trace_tree_nested(client, world, res):
    sibling = make_run(world.workspace, res.project, "prod-retriever", under=res.root, offset=5)
    login(client, world, "viewer")
    html = body(client.get(url("run", res.project.pk, res.child.pk)))
    assert trace_of(html) == [
        (1, "prod-agent", False),
        (2, "prod-llm-call", True),  # the run shown is marked current
        (3, "prod-tokenizer", False),
        (2, sibling.name, False),
    ]
    assert "4 runs" in html


def test_trace_tree_is_one_query_however_many_runs(client, world, res):
    login(client, world, "viewer")
    page = url("run", res.project.pk, res.root.pk)
    client.get(page)  # both measured warm: the user's access is then kept (console_access)
    with CaptureQueriesContext(connection) as small:
        client.get(page)
    parent = res.grandchild.pk
    for n in range(40):  # a deep chain and a wide fan
        parent = make_run(
            world.workspace, res.project, f"deep-{n}", parent=parent, trace=res.root.pk, offset=n
        ).pk
        make_run(world.workspace, res.project, f"wide-{n}", under=res.root)
    with CaptureQueriesContext(connection) as large:
        html = body(client.get(page))
    assert len(large) == len(small)
    nodes = trace_of(html)
    assert len(nodes) == 83
    assert max(depth for depth, _, _ in nodes) == 43


def test_trace_with_a_missing_parent_or_a_cycle_still_renders(client, world, res):
    orphan = make_run(
        world.workspace, res.project, "orphan", parent=uuid.uuid4(), trace=res.root.pk, offset=9
    )
    a, b = uuid.uuid4(), uuid.uuid4()
    in_the_trace = {"trace_id": res.root.pk, "session_id": res.project.pk, "run_type": "chain"}
    loop = [
        {**in_the_trace, "id": a, "parent_run_id": b, "name": "loop-a"},
        {**in_the_trace, "id": b, "parent_run_id": a, "name": "loop-b"},
    ]
    services.ingest_runs(actor=SYSTEM, workspace=world.workspace, posts=loop)
    login(client, world, "viewer")
    response = client.get(url("run", res.project.pk, orphan.pk))
    assert response.status_code == 200
    names = [name for _, name, _ in trace_of(body(response))]
    assert "orphan" in names and "prod-agent" in names
    assert client.get(url("run", res.project.pk, a)).status_code == 200


def test_run_page_shows_inputs_and_outputs_as_escaped_pretty_json(client, world, res):
    login(client, world, "viewer")
    html = body(client.get(url("run", res.project.pk, res.root.pk)))
    assert "<script>alert" not in html
    inputs = re.search(r'<pre class="json-block" id="run-inputs">(.*?)</pre>', html, re.S).group(1)
    # Pretty-printed (PostgreSQL's jsonb orders keys its own way), every character escaped.
    assert inputs.startswith("{\n  &quot;") and inputs.endswith("\n}")
    assert (
        "  &quot;question&quot;: &quot;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;"
        in inputs
    )
    assert json.loads(unescape(inputs)) == res.root.inputs
    outputs = re.search(r'id="run-outputs">(.*?)</pre>', html, re.S).group(1)
    assert "&quot;answer&quot;: &quot;Paris&quot;" in outputs
    metadata = re.search(r'id="run-metadata">(.*?)</pre>', html, re.S).group(1)
    assert "&quot;user&quot;: &quot;u-1&quot;" in metadata
    assert 'class="chip chip-sm">prod</span>' in html


def test_run_page_shows_the_error(client, world, res):
    login(client, world, "viewer")
    html = body(client.get(url("run", res.project.pk, res.child.pk)))
    assert "RateLimitError: slow down" in html
    assert "run-status-error" in html


def test_feedback_is_listed_and_added(client, world, res):
    services.add_feedback(
        actor=SYSTEM, run=res.root, key="helpfulness", score=0.5, comment="<b>meh</b>"
    )
    login(client, world, "annotator")
    page = url("run", res.project.pk, res.root.pk)
    html = body(client.get(page))
    assert "helpfulness" in html and "&lt;b&gt;meh&lt;/b&gt;" in html
    response = client.post(
        url("run-feedback-add", res.project.pk, res.root.pk),
        {"key": "correctness", "score": "1", "comment": "right"},
    )
    assert response.status_code == 302 and response["Location"] == page + "#feedback"
    feedback = models.Feedback.objects.get(key="correctness")
    assert (feedback.run_id, feedback.trace_id, feedback.project_id) == (
        res.root.pk,
        res.root.trace_id,
        res.project.pk,
    )
    assert (feedback.score, feedback.comment, feedback.workspace) == (1.0, "right", world.workspace)
    assert feedback.feedback_source["user"] == world.annotator.email


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"key": "", "score": "1"}, "This field is required."),
        ({"key": "k", "score": "high"}, "Enter a number."),
        ({"key": "k", "score": "nan"}, "Enter a number."),
        ({"key": "k" * 256}, "Ensure this value has at most 255 characters"),
    ],
)
def test_feedback_form_errors_are_422(client, world, res, data, message):
    login(client, world, "annotator")
    response = client.post(url("run-feedback-add", res.project.pk, res.root.pk), data)
    assert response.status_code == 422
    assert message in body(response)
    assert "prod-agent" in body(response)  # the run page again, with the form's errors
    assert not models.Feedback.objects.exists()


def test_a_viewer_sees_feedback_without_the_form(client, world, res):
    services.add_feedback(actor=SYSTEM, run=res.root, key="helpfulness", score=1)
    login(client, world, "viewer")
    html = body(client.get(url("run", res.project.pk, res.root.pk)))
    assert "helpfulness" in html and "Add feedback" not in html


def test_add_a_run_to_an_annotation_queue(client, world, res):
    queue = services.create_annotation_queue(actor=SYSTEM, workspace=world.workspace, name="second")
    login(client, world, "annotator")
    page = url("run", res.project.pk, res.child.pk)
    assert "This run is in no annotation queue." in body(client.get(page))
    response = client.post(url("run-queue-add", res.project.pk, res.child.pk), {"queue": queue.pk})
    assert response.status_code == 302 and response["Location"] == page
    assert models.QueuedRun.objects.filter(queue=queue, run=res.child).exists()
    html = body(client.get(page))
    assert url("annotation-queue", queue.pk) in html
    again = client.post(url("run-queue-add", res.project.pk, res.child.pk), {"queue": queue.pk})
    assert again.status_code == 302  # already there: nothing to do
    assert models.QueuedRun.objects.filter(queue=queue, run=res.child).count() == 1


@pytest.mark.parametrize("value", ["", "not-a-uuid", "0b5c2f0e-58f4-4a07-9d5e-3d1f3c0c1a11"])
def test_add_to_queue_with_a_bad_choice_is_422(client, world, res, value):
    login(client, world, "annotator")
    response = client.post(url("run-queue-add", res.project.pk, res.root.pk), {"queue": value})
    assert response.status_code == 422
    assert "field-error" in body(response)
    assert models.QueuedRun.objects.count() == 1


# --- datasets and examples ---------------------------------------------------------------


def test_datasets_list_shows_example_counts_and_searches(client, world, res):
    services.create_dataset(actor=SYSTEM, workspace=world.workspace, name="other-set")
    login(client, world, "viewer")
    html = body(client.get(url("datasets")))
    row = re.search(rf'<tr id="dataset-{res.dataset.pk}">(.*?)</tr>', html, re.S).group(1)
    assert '<td class="num">2</td>' in row
    searched = body(client.get(url("datasets"), {"q": "GOLD"}))
    assert "prod-golden" in searched and "other-set" not in searched


def test_create_dataset(client, world):
    form = {"name": "qa", "description": "questions", "data_type": "chat"}
    dataset = create_in_console(client, world, "editor", models.Dataset, form)
    assert (dataset.description, dataset.data_type) == ("questions", "chat")


def test_delete_dataset_says_how_many_examples_go_with_it(client, world, res):
    login(client, world, "editor")
    confirm = body(client.get(url("dataset-delete", res.dataset.pk)))
    assert "Its 2 examples are deleted with it." in confirm
    response = client.post(url("dataset-delete", res.dataset.pk))
    assert response["Location"] == url("datasets")
    assert not models.Dataset.objects.filter(pk=res.dataset.pk).exists()
    assert not models.Example.objects.filter(dataset_id=res.dataset.pk).exists()


def test_dataset_page_previews_examples_escaped(client, world, res):
    services.create_examples(
        actor=SYSTEM,
        workspace=world.workspace,
        examples=[
            {
                "dataset_id": res.dataset.pk,
                "inputs": {"html": "<img src=x onerror=1>"},
                "outputs": {"a": "b" * 500},
                "split": ["test"],
            }
        ],
    )
    login(client, world, "viewer")
    html = body(client.get(url("dataset", res.dataset.pk)))
    assert html.count('<tr id="example-') == 3
    assert "&lt;img src=x onerror=1&gt;" in html and "<img src=x" not in html
    assert "b" * 300 not in html and "…" in html  # previews are cut short
    assert 'class="chip chip-sm">test</span>' in html


def test_add_example(client, world, res):
    login(client, world, "editor")
    response = client.post(
        url("example-create", res.dataset.pk),
        {
            "inputs": '{"question": "2+2?"}',
            "outputs": '{"answer": 4}',
            "metadata": "",
            "split": "test, hard",
        },
    )
    assert response.status_code == 302 and response["Location"] == url("dataset", res.dataset.pk)
    example = models.Example.objects.get(inputs={"question": "2+2?"})
    assert (example.outputs, example.metadata, example.split) == (
        {"answer": 4},
        None,
        ["test", "hard"],
    )
    assert example.dataset_id == res.dataset.pk and example.workspace == world.workspace


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("", "This field is required."),
        ("{'q': 1}", "This is not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"q": 1', "This is not valid JSON"),
        ("[1, 2]", "Enter a JSON object"),
        ('"text"', "Enter a JSON object"),
        ('{"q": NaN}', "NaN is not JSON"),
        ('{"q": Infinity}', "Infinity is not JSON"),
        ('{"q": "\\u0000"}', "cannot contain the NUL character"),
        ('{"q": "\\ud800"}', "unpaired surrogate"),
        ('{"q": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
)
def test_bad_json_in_the_example_form_is_a_422_form_error(client, world, res, inputs, message):
    login(client, world, "editor")
    response = client.post(url("example-create", res.dataset.pk), {"inputs": inputs})
    assert response.status_code == 422
    html = body(response)
    assert message.replace("'", "&#x27;").replace('"', "&quot;") in html
    assert "field-error" in html
    assert models.Example.objects.filter(dataset=res.dataset).count() == 2


def test_bad_json_in_outputs_is_reported_on_that_field(client, world, res):
    login(client, world, "editor")
    response = client.post(
        url("example-create", res.dataset.pk),
        {"inputs": '{"ok": true}', "outputs": "{nope}"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    html = body(response)
    assert html.lstrip().startswith("<form")  # the dialog's form again
    outputs_field = re.search(r'<div class="field has-error">\s*<label for="id_outputs"', html)
    assert outputs_field is not None
    assert "{nope}" in html  # what was typed is kept


def test_edit_example(client, world, res):
    example = res.examples[0]
    login(client, world, "editor")
    form = body(client.get(url("example-edit", res.dataset.pk, example.pk)))
    assert "&quot;q&quot;: &quot;question 0&quot;" in form  # prefilled, pretty
    response = client.post(
        url("example-edit", res.dataset.pk, example.pk),
        {"inputs": '{"q": "edited"}', "outputs": '{"a": 1}', "split": "test"},
    )
    assert response.status_code == 302
    example.refresh_from_db()
    assert (example.inputs, example.outputs, example.split) == ({"q": "edited"}, {"a": 1}, ["test"])
    bad = client.post(url("example-edit", res.dataset.pk, example.pk), {"inputs": "nope"})
    assert bad.status_code == 422


def test_delete_example(client, world, res):
    example = res.examples[0]
    login(client, world, "editor")
    assert client.get(url("example-delete", res.dataset.pk, example.pk)).status_code == 200
    response = client.post(url("example-delete", res.dataset.pk, example.pk))
    assert response["Location"] == url("dataset", res.dataset.pk)
    assert not models.Example.objects.filter(pk=example.pk).exists()
    assert models.Example.objects.filter(pk=res.examples[1].pk).exists()


def test_examples_paginate(client, world, res):
    services.create_examples(
        actor=SYSTEM,
        workspace=world.workspace,
        examples=[{"dataset_id": res.dataset.pk, "inputs": {"n": n}} for n in range(60)],
    )
    login(client, world, "viewer")
    first = body(client.get(url("dataset", res.dataset.pk)))
    assert first.count('<tr id="example-') == 50 and "62 in all" in first
    assert (
        body(client.get(url("dataset", res.dataset.pk), {"page": 2})).count('<tr id="example-')
        == 12
    )


# --- prompts ----------------------------------------------------------------------------


def test_prompts_list_shows_the_current_version(client, world, res):
    login(client, world, "viewer")
    html = body(client.get(url("prompts")))
    latest = res.prompt.commits.order_by("-created_at").first()
    row = re.search(rf'<tr id="prompt-{res.prompt.pk}">(.*?)</tr>', html, re.S).group(1)
    assert f"<code>{latest.commit_hash}</code>" in row
    assert '<td class="num">2</td>' in row


def test_prompt_page_shows_the_template_and_history_newest_first(client, world, res):
    login(client, world, "viewer")
    html = body(client.get(url("prompt", res.prompt.pk)))
    current = re.search(r'id="current-template">(.*?)</pre>', html, re.S).group(1)
    assert current == "Hi {name}!"
    assert html.index("friendlier") < html.index("first version")
    assert "Save new version" not in html


def test_create_prompt_with_its_first_version(client, world):
    form = {"name": "summarize", "description": "", "template": "Sum {text}"}
    prompt = create_in_console(client, world, "editor", models.Prompt, form)
    commit = prompt.commits.get()
    assert (commit.template, commit.created_by) == ("Sum {text}", world.editor.email)


def test_save_a_new_prompt_version(client, world, res):
    login(client, world, "editor")
    page = body(client.get(url("prompt", res.prompt.pk)))
    assert "Save new version" in page
    assert re.search(r"<textarea[^>]*>\s*Hi \{name\}!</textarea>", page)  # prefilled
    response = client.post(
        url("prompt-commit", res.prompt.pk), {"template": "Hey {name}", "message": "casual"}
    )
    assert response["Location"] == url("prompt", res.prompt.pk)
    html = body(client.get(url("prompt", res.prompt.pk)))
    assert re.search(r'id="current-template">(.*?)</pre>', html, re.S).group(1) == "Hey {name}"
    assert res.prompt.commits.count() == 3


def test_an_empty_new_version_is_a_422(client, world, res):
    login(client, world, "editor")
    for template in ("", "   "):
        response = client.post(url("prompt-commit", res.prompt.pk), {"template": template})
        assert response.status_code == 422
        assert "field-error" in body(response) or "alert-error" in body(response)
    assert res.prompt.commits.count() == 2


def test_edit_and_delete_a_prompt(client, world, res):
    login(client, world, "editor")
    response = client.post(url("prompt-edit", res.prompt.pk), {"name": "hello", "description": "d"})
    assert response.status_code == 302
    res.prompt.refresh_from_db()
    assert res.prompt.name == "hello"
    confirm = body(client.get(url("prompt-delete", res.prompt.pk)))
    assert "All 2 versions are deleted with it." in confirm
    assert client.post(url("prompt-delete", res.prompt.pk))["Location"] == url("prompts")
    assert not models.Prompt.objects.exists() and not models.PromptCommit.objects.exists()


# --- annotation queues ------------------------------------------------------------------


def test_queue_page_shows_the_rubric_and_links_to_runs(client, world, res):
    services.update_annotation_queue(
        actor=SYSTEM,
        queue=res.queue,
        rubric_instructions="Check facts.",
        rubric_items=[{"feedback_key": "correctness", "description": "Is it right?"}, "odd"],
    )
    login(client, world, "viewer")
    html = body(client.get(url("annotation-queue", res.queue.pk)))
    assert "Check facts." in html and "<code>correctness</code>" in html and "Is it right?" in html
    assert url("run", res.project.pk, res.root.pk) in html
    assert url("annotation-queue-run-remove", res.queue.pk, res.root.pk) not in html


def test_queues_list_counts_runs(client, world, res):
    login(client, world, "viewer")
    html = body(client.get(url("annotation-queues")))
    row = re.search(rf'<tr id="queue-{res.queue.pk}">(.*?)</tr>', html, re.S).group(1)
    assert '<td class="num">1</td>' in row


def test_create_a_queue_with_a_rubric(client, world):
    form = {
        "name": "triage",
        "rubric_instructions": "Be kind.",
        "rubric_items": "correctness: right answer?\n\nhelpfulness\n",
    }
    queue = create_in_console(client, world, "annotator", models.AnnotationQueue, form)
    assert queue.rubric_items == [
        {"feedback_key": "correctness", "description": "right answer?"},
        {"feedback_key": "helpfulness", "description": ""},
    ]
    invalid = client.post(url("annotation-queue-create"), {"name": ""})
    assert invalid.status_code == 422 and "This field is required." in body(invalid)


def test_edit_a_queue(client, world, res):
    login(client, world, "annotator")
    form = body(client.get(url("annotation-queue-edit", res.queue.pk)))
    assert "prod-review" in form
    response = client.post(
        url("annotation-queue-edit", res.queue.pk), {"name": "renamed", "rubric_items": "k: v"}
    )
    assert response.status_code == 302
    res.queue.refresh_from_db()
    assert (res.queue.name, res.queue.rubric_items) == (
        "renamed",
        [{"feedback_key": "k", "description": "v"}],
    )


def test_editing_a_queue_keeps_rubric_items_it_cannot_show_as_lines(client, world, res):
    items = [{"feedback_key": "k", "description": "v"}, {"key": "sdk-shape", "min": 0}]
    services.update_annotation_queue(actor=SYSTEM, queue=res.queue, rubric_items=items)
    login(client, world, "annotator")
    response = client.post(
        url("annotation-queue-edit", res.queue.pk), {"name": "renamed", "rubric_items": "k: v"}
    )
    assert response.status_code == 302
    res.queue.refresh_from_db()
    assert (res.queue.name, res.queue.rubric_items) == ("renamed", items)


def test_remove_a_run_from_a_queue(client, world, res):
    login(client, world, "annotator")
    confirm = client.get(url("annotation-queue-run-remove", res.queue.pk, res.root.pk))
    assert confirm.status_code == 200 and "The run itself and its feedback stay." in body(confirm)
    response = client.post(url("annotation-queue-run-remove", res.queue.pk, res.root.pk))
    assert response["Location"] == url("annotation-queue", res.queue.pk)
    assert not models.QueuedRun.objects.exists()
    assert models.Run.objects.filter(pk=res.root.pk).exists()
    gone = client.post(url("annotation-queue-run-remove", res.queue.pk, res.root.pk))
    assert gone.status_code == 404


def test_delete_a_queue_keeps_its_runs(client, world, res):
    login(client, world, "editor")
    assert "Its one queued run leaves it" in body(
        client.get(url("annotation-queue-delete", res.queue.pk))
    )
    response = client.post(url("annotation-queue-delete", res.queue.pk))
    assert response["Location"] == url("annotation-queues")
    assert not models.AnnotationQueue.objects.exists()
    assert models.Run.objects.count() == 3


def test_delete_through_htmx_redirects_the_page(client, world, res):
    login(client, world, "editor")
    hx = {"HX-Request": "true"}
    dialog = client.get(url("annotation-queue-delete", res.queue.pk), headers=hx)
    assert body(dialog).lstrip().startswith('<form method="post"')
    response = client.post(url("annotation-queue-delete", res.queue.pk), headers=hx)
    assert response.status_code == 204 and response["HX-Redirect"] == url("annotation-queues")


# --- markup and query budgets ------------------------------------------------------------


def test_pages_carry_no_inline_script_or_style(client, world, res):
    login(client, world, "editor")
    pages = [url(name, *args) for name, args, _ in read_pages(res)]
    pages += [url(name, *args) for name, args, _ in form_pages(res)]
    for page in pages:
        html = body(client.get(page))
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), page
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), page
        for textarea in re.findall(r"<textarea[^>]*>", html):
            assert 'id="' in textarea  # every field has a label pointing at it
        for field_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="(id_[^"]+)"', html):
            assert f'for="{field_id}"' in html, (page, field_id)


def add_rows(world, kind, count):
    ws = world.workspace
    if kind == "projects":
        for n in range(count):
            project = services.create_project(actor=SYSTEM, workspace=ws, name=f"bulk-{n:04d}")
            make_run(ws, project, "r")
    elif kind == "datasets":
        for n in range(count):
            dataset = services.create_dataset(actor=SYSTEM, workspace=ws, name=f"bulk-{n:04d}")
            services.create_examples(
                actor=SYSTEM, workspace=ws, examples=[{"dataset_id": dataset.pk, "inputs": {}}]
            )
    elif kind == "project-runs":
        project = services.create_project(actor=SYSTEM, workspace=ws, name="bulk")
        posts = [run_post(project, f"r{n}", offset=n, tags=["a", "b"]) for n in range(count)]
        services.ingest_runs(actor=SYSTEM, workspace=ws, posts=posts)
        return url("project", project.pk)
    elif kind == "examples":
        dataset = services.create_dataset(actor=SYSTEM, workspace=ws, name="bulk")
        services.create_examples(
            actor=SYSTEM,
            workspace=ws,
            examples=[
                {"dataset_id": dataset.pk, "inputs": {"n": n}, "outputs": {"o": n}}
                for n in range(count)
            ],
        )
        return url("dataset", dataset.pk)
    elif kind == "prompts":
        for n in range(count):
            services.create_prompt(actor=SYSTEM, workspace=ws, name=f"bulk-{n:04d}", template="t")
    elif kind == "annotation-queues":
        for n in range(count):
            services.create_annotation_queue(actor=SYSTEM, workspace=ws, name=f"bulk-{n:04d}")
    elif kind == "queue-runs":
        project = services.create_project(actor=SYSTEM, workspace=ws, name="bulk")
        queue = services.create_annotation_queue(actor=SYSTEM, workspace=ws, name="bulk")
        ids = [uuid.uuid4() for _ in range(count)]
        services.ingest_runs(
            actor=SYSTEM,
            workspace=ws,
            posts=[
                {"id": i, "session_id": project.pk, "name": "r", "run_type": "llm"} for i in ids
            ],
        )
        services.queue_runs(actor=SYSTEM, queue=queue, run_ids=ids)
        return url("annotation-queue", queue.pk)
    return url(kind)


# Queries per page, whatever the number of rows: session, user, workspace, access (gate);
# the sidebar's organizations and workspaces; then the page's own (count + rows, plus the
# object for detail pages).
LIST_QUERIES = {
    "projects": 8,
    "datasets": 8,
    "project-runs": 9,
    "examples": 9,
    "prompts": 8,
    "annotation-queues": 8,
    "queue-runs": 9,
}


@pytest.mark.parametrize("kind", list(LIST_QUERIES))
@pytest.mark.parametrize("rows", [10, 200])
def test_list_pages_use_a_constant_number_of_queries(client, world, kind, rows):
    page = add_rows(world, kind, rows)
    login(client, world, "editor")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(page)
    assert response.status_code == 200
    assert body(response).count("<tr id=") == min(rows, 50)
    assert len(queries) == LIST_QUERIES[kind], "\n".join(q["sql"] for q in queries.captured_queries)


def test_a_run_page_shows_feedback_whatever_shape_its_source_has(client, world):
    """The SDK sends feedback_source as it likes: {}, {"user": ...}, no "type" at all."""
    import uuid

    from django.utils import timezone

    project = models.Project.objects.create(workspace=world.workspace, name="p")
    run_id = uuid.uuid4()
    run = models.Run.objects.create(
        id=run_id,
        trace_id=run_id,
        workspace=world.workspace,
        project=project,
        name="r",
        run_type="llm",
        start_time=timezone.now(),
    )
    for source in ({}, {"user": "bob"}, {"type": "app"}, {"type": None}):
        models.Feedback.objects.create(
            workspace=world.workspace, run_id=run.pk, key=f"k{len(source)}", feedback_source=source
        )
    client.force_login(world.viewer)
    response = client.get(f"/o/acme/w/production/projects/{project.pk}/runs/{run.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "bob" in body and "app" in body
