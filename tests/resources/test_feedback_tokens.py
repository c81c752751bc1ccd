"""Presigned feedback tokens (issue 18 §5): feedback:create makes them, the token alone uses them.

Made one at a time or in a batch, with the SDK's default expiry or a chosen one; each records
one piece of feedback on its run (single-use), refuses once expired, is stored only as a digest,
and its creation is audited. A viewer cannot make one.
"""

import datetime
import hashlib
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from accesscontrol.audit.models import AuditEvent
from accesscontrol.resources import models, sharing
from tests.factories import actor_with, ingested_run, service_key_for
from tests.support.api import api_call


@pytest.fixture
def run(world):
    return ingested_run(world.workspace)


def make(client, key, body, **kwargs):
    return api_call(client, "POST", "/feedback/tokens", key, json=body, **kwargs)


def use(token_url, body=None):
    """POST to the token's URL with no key, as a browser would."""
    path = token_url.removeprefix("http://testserver")
    return Client().post(path, body or {}, content_type="application/json")


def test_a_token_records_one_feedback_without_a_key(client, world, editor_key, run):
    feedback_id = uuid.uuid4()
    before = timezone.now()
    made = make(
        client,
        editor_key,
        {
            "run_id": str(run.pk),
            "feedback_key": "thumbs",
            "id": str(feedback_id),
            "expires_in": {"days": 0, "hours": 3, "minutes": 0},
        },
    )
    assert made.status_code == 201, made.content
    token = made.json()
    assert token["url"] == f"http://testserver/api/v1/feedback/tokens/{token['id']}"
    expires = datetime.datetime.fromisoformat(token["expires_at"])
    assert (
        before + datetime.timedelta(hours=3)
        <= expires
        <= timezone.now() + datetime.timedelta(hours=3)
    )
    row = models.FeedbackToken.objects.get()
    assert row.digest == hashlib.sha256(uuid.UUID(token["id"]).bytes).hexdigest()
    assert token["id"] not in str(models.FeedbackToken.objects.values().get())  # digest only
    event = AuditEvent.objects.get(action="feedback_token.created")
    assert event.changes["after"]["feedback_key"] == "thumbs" and token["id"] not in str(
        event.changes
    )

    used = use(token["url"], {"score": 1, "comment": "great", "metadata": {"page": "chat"}})
    assert used.status_code == 201, used.content
    feedback = models.Feedback.objects.get()
    assert (feedback.pk, feedback.key, feedback.score, feedback.comment) == (
        feedback_id,
        "thumbs",
        1.0,
        "great",
    )
    assert (feedback.run_id, feedback.project_id, feedback.workspace_id) == (
        run.pk,
        run.project_id,
        world.workspace.pk,
    )
    assert feedback.feedback_source == {"type": "presigned_url", "metadata": {"page": "chat"}}

    again = use(token["url"], {"score": 0})
    assert again.status_code == 410 and again.json()["error"] == "token_used"
    assert models.Feedback.objects.count() == 1


def test_a_batch_of_tokens_and_the_link_form(client, world, editor_key, run):
    made = make(
        client,
        editor_key,
        [
            {"run_id": str(run.pk), "feedback_key": "thumbs"},
            {"run_id": str(run.pk), "feedback_key": "helpful"},
        ],
    )
    assert made.status_code == 201, made.content
    tokens = made.json()
    assert [t["feedback_key"] for t in tokens] == ["thumbs", "helpful"]
    assert len({t["id"] for t in tokens}) == 2
    # The URL opened as a link (GET): the simple fields in the query string.
    path = tokens[1]["url"].removeprefix("http://testserver")
    got = Client().get(path, {"score": "0.5", "comment": "ok"})
    assert got.status_code == 200, got.content
    assert models.Feedback.objects.get().key == "helpful"
    assert models.Feedback.objects.get().score == 0.5


def test_an_expired_token_is_refused(client, editor_key, run):
    token = make(client, editor_key, {"run_id": str(run.pk), "feedback_key": "thumbs"}).json()
    models.FeedbackToken.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    resp = use(token["url"], {"score": 1})
    assert resp.status_code == 410 and resp.json()["error"] == "token_expired"
    assert not models.Feedback.objects.exists()
    assert models.FeedbackToken.objects.get().used_at is None


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"expires_in": {"days": 400}}, "expires_in"),
        ({"expires_in": {"hours": 1}, "expires_at": "2999-01-01T00:00:00+00:00"}, "expires_at"),
        ({"feedback_kye": "typo"}, "feedback_kye"),
    ],
)
def test_bad_requests_make_no_token(client, editor_key, run, extra, field):
    resp = make(client, editor_key, {"run_id": str(run.pk), "feedback_key": "k", **extra})
    assert resp.status_code == 422, resp.content
    assert field in str(resp.json())
    assert not models.FeedbackToken.objects.exists()
    assert not AuditEvent.objects.filter(action="feedback_token.created").exists()


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_token_for_a_blank_feedback_key_is_refused(client, world, editor_key, run, blank):
    # Its feedback would be refused (_check_feedback_key, as every feedback write is), so the
    # token could never be used: refused when asked for, alone or in a batch, nothing written.
    for body in (
        {"run_id": str(run.pk), "feedback_key": blank},
        [
            {"run_id": str(run.pk), "feedback_key": "thumbs"},
            {"run_id": str(run.pk), "feedback_key": blank},
        ],
    ):
        resp = make(client, editor_key, body)
        assert resp.status_code == 422, resp.content
        assert {"error", "detail"} <= set(resp.json()) and "feedback_key" in str(resp.json())
    with pytest.raises(ValidationError) as exc:
        sharing.create_feedback_tokens(
            actor=actor_with({"feedback:create"}, world.editor),
            workspace=world.workspace,
            requests=[{"run_id": run.pk, "feedback_key": blank, "expires_at": timezone.now()}],
        )
    assert list(exc.value.message_dict) == ["feedback_key"]
    assert not models.FeedbackToken.objects.exists()
    assert not AuditEvent.objects.filter(action="feedback_token.created").exists()


def test_bad_feedback_through_a_token_uses_it_not(client, editor_key, run):
    token = make(client, editor_key, {"run_id": str(run.pk), "feedback_key": "k"}).json()
    resp = use(token["url"], {"score": "high", "run_id": "x"})
    assert resp.status_code == 422
    assert models.FeedbackToken.objects.get().used_at is None
    assert use(token["url"], {"score": True}).status_code == 201


def test_unknown_tokens_are_not_found(db):
    resp = Client().post(
        f"/api/v1/feedback/tokens/{uuid.uuid4()}", {}, content_type="application/json"
    )
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"


def test_a_viewer_cannot_make_tokens(client, world, run):
    viewer = service_key_for(world.workspace, "Viewer")
    resp = make(client, viewer, {"run_id": str(run.pk), "feedback_key": "k"})
    assert resp.status_code == 403 and resp.json()["required"] == "feedback:create"
    assert not models.FeedbackToken.objects.exists()


def test_a_token_of_an_archived_workspace_is_dead(client, world, editor_key, run):
    token = make(client, editor_key, {"run_id": str(run.pk), "feedback_key": "k"}).json()
    type(world.workspace).objects.filter(pk=world.workspace.pk).update(archived=True)
    assert use(token["url"], {"score": 1}).status_code == 404
    assert not models.Feedback.objects.exists()


def test_at_the_sdk_root_the_url_is_at_the_root(client, editor_key, run):
    resp = make(client, editor_key, {"run_id": str(run.pk), "feedback_key": "k"}, root=True)
    assert resp.status_code == 201, resp.content
    assert resp.json()["url"] == f"http://testserver/feedback/tokens/{resp.json()['id']}"
    assert use(resp.json()["url"], {"score": 1}).status_code == 201
